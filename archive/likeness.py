"""When two images are one meme: the rule that groups reposts, shared by indexing and search.

A repost is rarely the same file: it is re-encoded, resized, cropped by a few percent or framed
with a border and a watermark. Its perceptual hash stays near the original's (a border is
trimmed before hashing; a 6% crop moves the hash by up to ~24 bits of 64), but memes made from
one template sit just as near each other (median 8 bits, many at 0), so the picture alone cannot
tell a repost from a sibling. What the meme says can: a repost carries the same caption, read
by OCR with a few slips, while siblings carry different ones. Measured on rendered real memes
(bench/repost_groups.py), these thresholds join altered copies and keep siblings apart.
"""
from __future__ import annotations

import re

import numpy as np

MAX_DISTANCE = 26  # bits of 64 between perceptual hashes, for memes whose captions agree
MAX_DISTANCE_NO_TEXT = 4  # bits of 64, for memes with too little text to compare
MIN_CAPTION_SIMILARITY = 0.5  # trigram Jaccard overlap of the two OCR texts
MIN_TRIGRAMS = 8  # fewer than this, and a text is too short to tell memes apart

_WORD = re.compile(r"[a-z0-9]+")


def hamming(phash: str, others: np.ndarray) -> np.ndarray:
    """Bit distances between one 64-bit hash (hex) and an array of them (uint64)."""
    x = np.bitwise_xor(others, np.uint64(int(phash, 16)))
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1, dtype=np.int64)


def hash_array(phashes: list[str]) -> np.ndarray:
    return np.array([int(h, 16) for h in phashes], dtype=np.uint64)


def trigrams(text: str) -> frozenset[str]:
    """Character trigrams of a text's words run together: OCR slips cost a few, not a word."""
    joined = "".join(_WORD.findall(text.lower()))
    return frozenset(joined[i:i + 3] for i in range(len(joined) - 2))


def text_similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Overlap of two trigram sets (Jaccard), 0 when either is empty."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def same_meme(distance: int, a: frozenset[str], b: frozenset[str]) -> bool:
    """Whether two images with hashes `distance` bits apart and these OCR trigrams are one meme."""
    if len(a) < MIN_TRIGRAMS or len(b) < MIN_TRIGRAMS:
        return distance <= MAX_DISTANCE_NO_TEXT and len(a) < MIN_TRIGRAMS and len(b) < MIN_TRIGRAMS
    return distance <= MAX_DISTANCE and text_similarity(a, b) >= MIN_CAPTION_SIMILARITY


class Likeness:
    """The memes of an archive as the rule sees them (id, hash, trigrams); finds the one a new
    image repeats. Memes are added as they are saved, so copies within one run join too."""

    def __init__(self, memes: list[tuple[str, str, str]]):
        self.ids = [m[0] for m in memes]
        self._hashes = hash_array([m[1] for m in memes] + ["0"] * max(16, len(memes)))
        self.grams = [trigrams(m[2]) for m in memes]

    def add(self, meme_id: str, phash: str, text: str) -> None:
        if len(self.ids) == len(self._hashes):  # room for as many again: adding stays cheap
            self._hashes = np.concatenate([self._hashes, np.zeros(len(self._hashes), dtype=np.uint64)])
        self._hashes[len(self.ids)] = np.uint64(int(phash, 16))
        self.ids.append(meme_id)
        self.grams.append(trigrams(text))

    def find(self, phashes: list[str], text: str) -> str | None:
        """The meme an image with these hashes (whole, unframed) and OCR text repeats, if any."""
        if not self.ids or not phashes:
            return None
        hashes = self._hashes[:len(self.ids)]
        distance = np.min([hamming(p, hashes) for p in phashes], axis=0)
        grams = trigrams(text)
        best: tuple[float, int] | None = None
        for i in np.nonzero(distance <= MAX_DISTANCE)[0]:
            if same_meme(int(distance[i]), grams, self.grams[i]):
                score = (text_similarity(grams, self.grams[i]), -int(distance[i]))
                if best is None or score > best[0]:
                    best = (score, int(i))
        return self.ids[best[1]] if best else None
