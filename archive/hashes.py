"""Distances between 64-bit perceptual hashes (hex), one against many at once."""
from __future__ import annotations

import numpy as np


def hamming(phash: str, others: np.ndarray) -> np.ndarray:
    """Bit distances between one 64-bit hash (hex) and an array of them (uint64)."""
    x = np.bitwise_xor(others, np.uint64(int(phash, 16)))
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1, dtype=np.int64)


def nearest_distances(phashes: list[str], others: np.ndarray) -> np.ndarray:
    """For each of `others`, its bit distance to the nearest of `phashes` (one picture's hashes)."""
    return np.min([hamming(p, others) for p in phashes], axis=0)


def hash_array(phashes: list[str]) -> np.ndarray:
    return np.array([int(h, 16) for h in phashes], dtype=np.uint64)
