"""When two images are one meme: the rule that groups reposts, shared by indexing and search.

A repost is rarely the same file: it is re-encoded, resized, cropped by a few percent or framed
with a border and a watermark. Its perceptual hash stays near the original's (a border is
trimmed before hashing; a 6% crop moves the hash by up to ~24 bits of 64), but memes made from
one template sit just as near each other (median 8 bits, many at 0), so the picture alone cannot
tell a repost from a sibling. What the meme says can: a repost carries the same caption, read
by OCR with a few slips, while siblings carry different ones. But OCR is noisy (two readings
of one caption can share under a fifth of their trigrams), so the deciding test, where it can be
made, is the pixels: the two pictures aligned, how much differs in strokes of letters
(`indexer.alignment`). The hash and the text only choose which memes are worth aligning.
Measured with bench/repost_groups.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

MAX_DISTANCE = 26  # bits of 64 between perceptual hashes: beyond, another picture (a 6% crop moves ~24)
NEAR_DISTANCE = 10  # bits of 64: near enough to align whatever the texts say
CANDIDATE_SIMILARITY = 0.05  # trigram overlap that makes a farther look-alike worth aligning
CANDIDATES = 12  # at most this many of each kind are aligned
# How much two aligned pictures differ (`indexer.alignment.difference`: the share of differing
# pixels in the patch where most differ): under this, one picture. On 1,007 rendered real memes
# all 4,032 altered copies (JPEG q35, half size, 6% crop, border with a watermark) measured 0,
# 289 pairs of one template with other captions at least 0.196 (the 27 such pairs an earlier
# measure joined, many a word apart, included), and captions a short word apart in small type
# (made with data/make_evalset.py) at least 0.22. Half the smallest sibling, far above any copy.
MAX_PIXEL_DIFFERENCE = 0.1
# Without pixels to compare (no alignment possible, or no image at hand: search-side groups):
MAX_DISTANCE_NO_TEXT = 4  # bits of 64, for memes with too little text to compare
MIN_CAPTION_SIMILARITY = 0.5  # trigram Jaccard overlap of the two OCR texts
MIN_TRIGRAMS = 8  # fewer than this, and a text is too short to tell memes apart
# A word of one caption counts as said by the other when some stretch of the other's letters
# (run together, so glued and split readings agree) is this alike (rapidfuzz partial_ratio):
# OCR slips ("MORMING" for "MORNING") stay above it, another word falls far below.
WORD_FOUND = 70
WORD_LETTERS = 4  # shorter words are too easily made by OCR out of texture
WORD_RANK = 50_000  # a word must be among this many of the commonest English words to be trusted

_WORD = re.compile(r"[a-z0-9]+")
_TOKEN = re.compile(r"[a-z]+|[0-9]+")


def hamming(phash: str, others: np.ndarray) -> np.ndarray:
    """Bit distances between one 64-bit hash (hex) and an array of them (uint64)."""
    x = np.bitwise_xor(others, np.uint64(int(phash, 16)))
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1, dtype=np.int64)


def nearest_distances(phashes: list[str], others: np.ndarray) -> np.ndarray:
    """For each of `others`, its bit distance to the nearest of `phashes` (one picture's hashes)."""
    return np.min([hamming(p, others) for p in phashes], axis=0)


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


@lru_cache(maxsize=1)
def _common_words() -> frozenset[str]:
    """The WORD_RANK commonest English words (wordninja's frequency list, already used by OCR)."""
    import wordninja

    ranked = sorted(wordninja.DEFAULT_LANGUAGE_MODEL._wordcost.items(), key=lambda item: item[1])
    return frozenset(word for word, _ in ranked[:WORD_RANK])


@dataclass(frozen=True)
class Caption:
    """What OCR read on an image, as the rule compares it: trigrams of every reading, and the
    words of the first (the primary engine's) that can be trusted: common English words of
    WORD_LETTERS or more, and numbers. A second engine's reading of texture adds noise words."""

    grams: frozenset[str]
    words: frozenset[str]
    letters: str  # every reading's letters and digits run together
    tokens: frozenset[str]

    @classmethod
    def of(cls, readings: str | Sequence[str]) -> "Caption":
        readings = [readings] if isinstance(readings, str) else list(readings)
        text = "\n".join(r for r in readings if r)
        primary = _TOKEN.findall(readings[0].lower()) if readings else []
        common = _common_words()
        words = frozenset(w for w in primary if w.isdigit() or (len(w) >= WORD_LETTERS and w in common))
        return cls(trigrams(text), words, "".join(_WORD.findall(text.lower())),
                   frozenset(_TOKEN.findall(text.lower())))

    def lacks(self, word: str) -> bool:
        """Whether this caption does not say `word` (a number must be read as it is)."""
        if word.isdigit():
            return word not in self.tokens
        from rapidfuzz import fuzz

        return fuzz.partial_ratio(word, self.letters) < WORD_FOUND

    def disagrees(self, other: "Caption") -> bool:
        """Whether each caption says a word the other lacks: two memes, however alike their
        pictures (one word changed, a number). Words on one side only are a repost's
        watermark or border line, or a word the other reading missed."""
        return any(other.lacks(w) for w in self.words) and any(self.lacks(w) for w in other.words)


def same_meme(distance: int, a: Caption, b: Caption, pixels: float | None = None) -> bool:
    """Whether two images with hashes `distance` bits apart, these OCR captions and (if they
    could be aligned) this difference of their pixels (`indexer.alignment.difference`) are one meme."""
    if distance > MAX_DISTANCE or a.disagrees(b):
        return False
    if pixels is not None:
        return pixels < MAX_PIXEL_DIFFERENCE
    if len(a.grams) < MIN_TRIGRAMS or len(b.grams) < MIN_TRIGRAMS:
        return distance <= MAX_DISTANCE_NO_TEXT and len(a.grams) < MIN_TRIGRAMS and len(b.grams) < MIN_TRIGRAMS
    return distance <= MAX_DISTANCE and text_similarity(a.grams, b.grams) >= MIN_CAPTION_SIMILARITY


class Likeness:
    """The memes of an archive as the rule sees them (id, hash, trigrams); finds the one a new
    image repeats. Memes are added as they are saved, so copies within one run join too."""

    def __init__(self, memes: list[tuple[str, str, str | Sequence[str]]]):
        self.ids = [m[0] for m in memes]
        self.pictures = list(self.ids)  # which picture each row is: a meme's own, or a copy's
        self._hashes = hash_array([m[1] for m in memes] + ["0"] * max(16, len(memes)))
        self.captions = [Caption.of(m[2]) for m in memes]

    def add(self, meme_id: str, phash: str, readings: str | Sequence[str], picture: str | None = None) -> None:
        """A meme's picture, or (`picture` naming it) another picture of it: a copy joined to it
        is compared with later images too, so that a copy of a copy still finds its meme."""
        if len(self.ids) == len(self._hashes):  # room for as many again: adding stays cheap
            self._hashes = np.concatenate([self._hashes, np.zeros(len(self._hashes), dtype=np.uint64)])
        self._hashes[len(self.ids)] = np.uint64(int(phash, 16))
        self.ids.append(meme_id)
        self.pictures.append(picture or meme_id)
        self.captions.append(Caption.of(readings))

    def candidates(self, phashes: list[str], caption: Caption) -> list[tuple[int, int, float]]:
        """Memes worth comparing with an image: (index, hash distance, text similarity), the nearest
        pictures and the farther ones whose captions overlap, at most CANDIDATES of each."""
        if not self.ids or not phashes:
            return []
        hashes = self._hashes[:len(self.ids)]
        distance = nearest_distances(phashes, hashes)
        within = np.nonzero(distance <= MAX_DISTANCE)[0]
        scored = [(int(i), int(distance[i]), text_similarity(caption.grams, self.captions[i].grams)) for i in within]
        near = sorted((c for c in scored if c[1] <= NEAR_DISTANCE), key=lambda c: (c[1], -c[2]))[:CANDIDATES]
        worded = sorted((c for c in scored if c[2] >= CANDIDATE_SIMILARITY), key=lambda c: -c[2])[:CANDIDATES]
        return list({c[0]: c for c in near + worded}.values())  # (a meme may have several rows)

    def find(self, phashes: list[str], readings: str | Sequence[str], pixels=None) -> str | None:
        """The meme an image with these hashes (whole, unframed) and OCR readings repeats, if any.
        `pixels(picture)` gives how much the pictures differ once aligned, or None."""
        caption = Caption.of(readings)
        best: tuple[tuple, str] | None = None
        for i, distance, similarity in self.candidates(phashes, caption):
            meme_id = self.ids[i]
            if caption.disagrees(self.captions[i]):
                continue  # no need to compare the pixels
            difference = pixels(self.pictures[i]) if pixels is not None else None
            if same_meme(distance, caption, self.captions[i], difference):
                rank = (difference if difference is not None else 1.0, -similarity, distance)
                if best is None or rank < best[0]:
                    best = (rank, meme_id)
        return best[1] if best else None
