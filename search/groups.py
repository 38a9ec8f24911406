"""Near-duplicate groups: memes that are the same picture saying the same thing.

A repost is rarely the same file: it is re-encoded, resized, cropped or framed. Its perceptual
hash stays near the original's, but so does the hash of every other meme made from the same
template; what tells a repost from a sibling is the text on it. So two memes are look-alikes
when their hashes are close *and* their OCR texts share most of their words (or neither has
text, and the hashes are closer still). Groups are the connected look-alikes.

Cost: one pass of XOR-and-count over every pair of hashes, done in blocks with numpy
(about a second for 10,000 memes).
"""
from __future__ import annotations

import re

import numpy as np

from archive.catalog import Catalog

from .engine import hamming

MAX_DISTANCE = 10  # bits of 64, hashes with text on them
MAX_DISTANCE_NO_TEXT = 4  # bits of 64, hashes with no text to tell siblings apart
MIN_SHARED_WORDS = 0.5  # Jaccard overlap of the two texts' word sets
_WORD = re.compile(r"[a-z0-9]{2,}")


def words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def same_words(a: frozenset[str], b: frozenset[str]) -> bool | None:
    """Whether two texts say the same thing; None when neither has words enough to tell."""
    if len(a) < 2 and len(b) < 2:
        return None
    return len(a & b) / max(1, len(a | b)) >= MIN_SHARED_WORDS


def lookalike_groups(catalog: Catalog, block: int = 1024) -> list[list[str]]:
    """Groups of two or more memes that look alike and say the same, oldest group first."""
    pairs = catalog.phashes()
    if len(pairs) < 2:
        return []
    ids = [i for i, _ in pairs]
    hashes = np.array([int(h, 16) for _, h in pairs], dtype=np.uint64)
    texts = catalog.ocr_texts()
    vocab = [words(texts.get(i, "")) for i in ids]
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(ids)):
        start = i + 1
        for lo in range(start, len(ids), block):
            dist = hamming(pairs[i][1], hashes[lo:lo + block])
            for j in np.nonzero(dist <= MAX_DISTANCE)[0] + lo:
                agree = same_words(vocab[i], vocab[j])
                if agree or (agree is None and hamming(pairs[i][1], hashes[j:j + 1])[0] <= MAX_DISTANCE_NO_TEXT):
                    parent[root(int(j))] = root(i)
    groups: dict[int, list[str]] = {}
    for i, meme_id in enumerate(ids):
        groups.setdefault(root(i), []).append(meme_id)
    return [g for g in groups.values() if len(g) > 1]
