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
# A reading that says at most this share of the letters another says over a stretch of words lost
# it (a line's start cut): misreads of a word in it are not another word there ("ycat" 18 letters
# for the 27 of "cat grumpy cat grumpy cat sleepy"; siblings' slips say as much, "clever gose" 10
# for "clever banana" 12)
LOST_STRETCH = 0.75
WORD_RANK = 50_000  # a word must be among this many of the commonest English words to be trusted
_WORD = re.compile(r"[a-z0-9]+")  # "HELL0" stays one (misread) word, not a word and a number
# OCR reads a zero after digits as the letter O ("35O" for "350" in a JPEG copy): an O that
# follows a digit and ends its word is a zero, and so is a split form of nothing but O after one
# ending in a digit (word splitting made "35 o" of it). "4o" and "h2o" compare as "40" and "h20".
_O_FOR_ZERO = re.compile(r"(?<=[0-9])o+$")


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
    places: tuple[int, ...] = ()  # for each word, its place among the tokens
    # every word of every reading, split forms too, and numbers read in parts joined ("9:41": "941")
    vocabulary: frozenset[str] = frozenset()

    @classmethod
    def of(cls, readings: str | Sequence[str]) -> "Caption":
        readings = [readings] if isinstance(readings, str) else list(readings)
        text = "\n".join(r for r in readings if r)
        tokens, glued = _tokens(readings[0]) if readings else ((), ())
        common = _common_words()
        places = tuple(i for i, w in enumerate(tokens) if w.isdigit() or (len(w) >= WORD_LETTERS and w in common))
        words = tuple(tokens[i] for i in places)
        every = [_zeros(w) for w in _WORD.findall(text.lower())]
        return cls(trigrams(text), words, "".join(every), tokens, glued, places,
                   frozenset(every) | frozenset(tokens) | frozenset(_joined(every)) | frozenset(_joined(tokens)))

    @property
    def said(self) -> int:
        """How many letters and digits the primary reading holds (split forms not counted)."""
        return sum(len(t) for t, g in zip(self.tokens, self.glued) if not g)

    def lacks(self, word: str, glued: bool = False, whole: bool = False) -> bool:
        """Whether this caption does not say `word`: nowhere in its letters run together (so
        glued and split readings agree) for a number, nothing 70% alike there for a word. A
        `glued` run of words ("nervouspigeonhidesaballoon") must be alike but for GLUED_SLIPS
        letters: 70% of a long run leaves room for another word in it. `whole` (where every word
        counts, the pixels barely telling two pictures apart): a word or number shorter than
        WORD_LETTERS is said only as a word of its own, or inside a glued run (`_said_short`):
        "ha" is not said by "that", nor "1" by "2021" (elsewhere a number read in part, "7" of a
        cut "73", is said)."""
        if whole and len(word) < WORD_LETTERS:
            return not _said_short(word, self.vocabulary)
        return not _found(word, self.letters, glued)

    def _lacked_by(self, other: "Caption", every_word: bool) -> set[str]:
        """This caption's words that `other` lacks; `every_word`, its tokens, a split form of a
        glued token only where the glued token is lacking too."""
        if not every_word:
            return {w for w in self.words if other.lacks(w)}
        # a number read in parts counts as lacking only where the whole number is ("941" of "9:41")
        return {t for t, g, n in zip(self.tokens, self.glued, _joined(self.tokens))
                if other.lacks(t, whole=True) and (n == t or other.lacks(n, whole=True))
                and (not g or other.lacks(g, glued=True))}

    def _between(self, start: int, end: int, every_word: bool) -> list[str]:
        """The tokens this caption reads from its `start`th word (token, `every_word`) up to its
        `end`th, and the untrusted ones on either side up to the words next to them, glued runs
        left out (their split forms stand for them)."""
        if every_word:
            first, last = start, end
        else:
            first = self.places[start - 1] + 1 if start > 0 else 0
            last = self.places[end] if end < len(self.places) else len(self.tokens)
        runs = set(self.glued)
        return [t for t in self.tokens[first:last] if t not in runs]

    def _reads_less(self, other: "Caption", ours: tuple[int, int], theirs: tuple[int, int], every_word: bool,
                    lacking: set) -> bool:
        """Whether `other`, over its words `theirs` (start, end), reads at most LOST_STRETCH of the
        letters this caption reads over its words `ours`, and only what this caption says there
        but for the words `lacking` in `other` (a short word as a whole token): a reading that lost
        a stretch, not one that says another word there."""
        said = (other.tokens if every_word else other.words)[theirs[0]:theirs[1]]
        stretch = self._between(*ours, every_word)
        there = [t for t in stretch if t not in lacking]
        letters = "".join(there)
        return (_length(other._between(*theirs, every_word)) <= LOST_STRETCH * _length(stretch)
                and all(w in there if w.isalpha() and len(w) < WORD_LETTERS else _found(w, letters) for w in said))

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
        ours, theirs = (self.tokens, other.tokens) if every_word else (self.words, other.words)
        mine, yours = self._lacked_by(other, every_word), other._lacked_by(self, every_word)
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
        # a word put in place of another, unless one reading lost that stretch (`_reads_less`: a
        # line's start cut, "ycat" for "grumpy cat sleepy", "ghosts" for "tiny ghost nervous
        # goose"), as where it read nothing of a word; not where what it says is in a word it
        # lacks ("safe", "unsafe"), nor where it says as much ("bilds the wizard", "builds the bus")
        return any(op == "replace" and (every_word or 0 < n < len(blocks) - 1) and (
            (mine & set(ours[i1:i2]) and not self._reads_less(other, (i1, i2), (j1, j2), every_word, mine))
            or (yours & set(theirs[j1:j2]) and not other._reads_less(self, (j1, j2), (i1, i2), every_word, yours)))
            for n, (op, i1, i2, j1, j2) in enumerate(blocks))


def _found(word: str, letters: str, glued: bool = False) -> bool:
    """Whether `word` is said in `letters` (`Caption.lacks`)."""
    if word.isdigit() or len(word) < WORD_LETTERS:
        return word in letters
    if word in letters:  # said as it is (what partial_ratio would score 100), at once
        return True
    if len(letters) < len(word):  # partial_ratio would look for the letters in the word
        return False
    from rapidfuzz import fuzz

    found = max(WORD_FOUND, 100 - 100 * GLUED_SLIPS / len(word)) if glued else WORD_FOUND
    return fuzz.partial_ratio(word, letters) >= found


def _joined(words: Sequence[str]) -> list[str]:
    """Each of `words`, a number joined with the numbers next to it ("9", "41": "941", "941")."""
    joined: list[str] = []
    start = 0
    for end, word in enumerate([*words, ""]):
        if not word.isdigit():
            number = "".join(words[start:end])
            joined += [number] * (end - start) + ([word] if end < len(words) else [])
            start = end + 1
    return joined


def _said_short(word: str, vocabulary: frozenset[str]) -> bool:
    """Whether a short word or number is among these words, or inside one that is neither a
    common word nor a number (a run OCR glued, "thatis", "day2"): a short word inside another
    word ("he" in "the", "1" in "2021") is not said."""
    if word in vocabulary:
        return True
    common = _common_words()
    return any(word in t for t in vocabulary if len(t) > len(word) and not t.isdigit() and t not in common)


def _length(tokens: Sequence[str]) -> int:
    return sum(map(len, tokens))


def _blocks(ours: Sequence[str], theirs: Sequence[str]) -> list[tuple]:
    """How one sequence of words becomes the other (difflib's opcodes)."""
    from difflib import SequenceMatcher

    return SequenceMatcher(None, ours, theirs, autojunk=False).get_opcodes()


def _tokens(reading: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The words of a reading, and for each the glued token it is a split form of ("" if none)."""
    tokens: list[str] = []
    glued: list[str] = []
    for token, pieces in as_read(reading):
        words = [_zeros(w) for w in _WORD.findall(token.lower())]
        tokens += words
        glued += [""] * len(words)
        split: list[str] = []
        for word in (w for piece in pieces for w in _WORD.findall(piece)):
            if split and split[-1][-1].isdigit() and not word.strip("o"):
                split[-1] += "0" * len(word)  # "35 o": the split of "35O"
            else:
                split.append(word)
        tokens += split
        glued += [_zeros(letters_of(token))] * len(split)
    return tuple(tokens), tuple(glued)


def _zeros(word: str) -> str:
    """`word` with an O read for a zero after its digits made a zero (`_O_FOR_ZERO`)."""
    return _O_FOR_ZERO.sub(lambda found: "0" * len(found.group()), word)
