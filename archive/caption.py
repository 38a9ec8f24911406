"""What OCR read on an image, as the identity rule (`archive.likeness`) compares it: the words
that can be trusted, and whether two captions say different things, OCR slips, glued runs of
words and words cut by a crop allowed for."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from .readings import as_read, letters_of, words_by_frequency

# A word of one caption counts as said by the other when some stretch of the other's letters
# (run together, so glued and split readings agree) is this alike (rapidfuzz partial_ratio):
# OCR slips ("MORMING" for "MORNING") stay above it, another word falls far below.
WORD_FOUND = 70
GLUED_SLIPS = 3  # letters OCR may misread in a glued run of words that another reading splits
WORD_LETTERS = 4  # shorter words are too easily made by OCR out of texture
# A crop cuts its lines at the edges, and OCR misreads what is left there ("in inner a" where a line
# was cut to "he rain"): a part saying this many trusted words of the other may say one it lacks.
PART_SLIP_AMONG = 6
WORD_RANK = 50_000  # a word must be among this many of the commonest English words to be trusted
_WORD = re.compile(r"[a-z0-9]+")  # "HELL0" stays one (misread) word, not a word and a number


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
    return frozenset(words_by_frequency()[:WORD_RANK])


@dataclass(frozen=True)
class Caption:
    """What OCR read on an image, as the rule compares it: trigrams of every reading, and the
    words of the first (the primary engine's) that can be trusted, in reading order: common
    English words of WORD_LETTERS or more, and numbers. A second engine's reading of texture
    adds noise words."""

    grams: frozenset[str]
    words: tuple[str, ...]
    letters: str  # every reading's letters and digits run together
    tokens: tuple[str, ...] = ()  # every word of the primary reading, trusted or not
    # for each token, the glued token it is a split form of (indexing adds them: "walnus7" ->
    # "wal nus 7"), or "" for a token as read
    glued: tuple[str, ...] = ()

    @classmethod
    def of(cls, readings: str | Sequence[str]) -> "Caption":
        readings = [readings] if isinstance(readings, str) else list(readings)
        text = "\n".join(r for r in readings if r)
        tokens, glued = _tokens(readings[0]) if readings else ((), ())
        common = _common_words()
        words = tuple(w for w in tokens if w.isdigit() or (len(w) >= WORD_LETTERS and w in common))
        return cls(trigrams(text), words, "".join(_WORD.findall(text.lower())), tokens, glued)

    @property
    def said(self) -> int:
        """How many letters and digits the primary reading holds (split forms not counted)."""
        return sum(len(t) for t, g in zip(self.tokens, self.glued) if not g)

    def lacks(self, word: str, glued: bool = False) -> bool:
        """Whether this caption does not say `word`: nowhere in its letters run together (so
        glued and split readings agree) for a number, nothing 70% alike there for a word. A
        `glued` run of words ("nervouspigeonhidesaballoon") must be alike but for GLUED_SLIPS
        letters: 70% of a long run leaves room for another word in it."""
        if word.isdigit() or len(word) < WORD_LETTERS:
            return word not in self.letters
        if word in self.letters:  # said as it is (what partial_ratio would score 100), at once
            return False
        from rapidfuzz import fuzz

        found = max(WORD_FOUND, 100 - 100 * GLUED_SLIPS / len(word)) if glued else WORD_FOUND
        return fuzz.partial_ratio(word, self.letters) < found

    def disagrees(self, other: "Caption", every_word: bool = False, part: bool = False) -> bool:
        """Whether the two say different things: each says a word the other lacks (a number,
        "wizard" for "teapot"), or one puts a word the other lacks where the other has another
        word, between words both say ("hides" for "finds" where "finds" is said later too).
        Words added before or after all the others (a watermark, a border's line) or a word the
        other reading missed do not make another meme. Only trusted words count, unless
        `every_word` (where the pictures cannot tell: "at" for "cat", "gym" for "robot" as the
        last word), and then a word replaced first or last counts too; a split form of a glued
        token counts only where the glued token is lacking too (a misread "walnus7" splits into
        "wal nus", which no reading of "walrus" says). `part`: this picture shows only a part of
        the other (a crop), which may have cut the other's words, whole or in part ("41" of
        "9:41", "alm" of "calm", at every line's start): only the words it says count, and each
        must be in the other (where OCR read words there at all), but for one trusted word the
        other lacks that is put in, not in place of one of the other's words, where the part says
        PART_SLIP_AMONG the other says too (a misread at a cut line's edge, "homework inner rain"
        for "homework in the rain": the pixels decide)."""
        if every_word:
            ours, theirs = self.tokens, other.tokens
            mine = {w for w, g in zip(ours, self.glued) if other.lacks(w) and (not g or other.lacks(g, glued=True))}
            yours = {w for w, g in zip(theirs, other.glued) if self.lacks(w) and (not g or self.lacks(g, glued=True))}
        else:
            ours, theirs = self.words, other.words
            mine = {w for w in ours if other.lacks(w)}
            yours = {w for w in theirs if self.lacks(w)}
        if part:  # every word it says is in the other, where OCR read the other at all
            if not (mine and theirs):
                return False
            if every_word or len(mine) > 1 or len(set(ours) - mine) < PART_SLIP_AMONG:
                return True
            # one word among many: a misread at a line's cut edge is put in, not for a word of the other
            return any(op == "replace" and mine & set(ours[i1:i2]) for op, i1, i2, _, _ in _blocks(ours, theirs))
        if not every_word and mine and yours:
            return True
        if not (mine or yours):
            return False
        blocks = _blocks(ours, theirs)
        return any(op == "replace" and (every_word or 0 < n < len(blocks) - 1)
                   and (mine & set(ours[i1:i2]) or yours & set(theirs[j1:j2]))
                   for n, (op, i1, i2, j1, j2) in enumerate(blocks))


def _blocks(ours: Sequence[str], theirs: Sequence[str]) -> list[tuple]:
    """How one sequence of words becomes the other (difflib's opcodes)."""
    from difflib import SequenceMatcher

    return SequenceMatcher(None, ours, theirs, autojunk=False).get_opcodes()


def _tokens(reading: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The words of a reading, and for each the glued token it is a split form of ("" if none)."""
    tokens: list[str] = []
    glued: list[str] = []
    for token, pieces in as_read(reading):
        words = _WORD.findall(token.lower())
        tokens += words
        glued += [""] * len(words)
        split = [w for piece in pieces for w in _WORD.findall(piece)]
        tokens += split
        glued += [letters_of(token)] * len(split)
    return tuple(tokens), tuple(glued)
