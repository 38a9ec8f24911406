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
The pixels vouch only for what both pictures show: a crop that cut off a caption's line matches
each of the template's siblings where it overlaps them, so where one picture shows only a part
of the other and the other says words it does not, neither joins the other at once: the part
joins, at the end of a run, only the one meme that matches it, and a whole picture joins a meme
through a part of it only where that part matches no other whole (a framed copy met before its
original). Where the pixels barely tell two pictures apart (a half-size copy of a small meme),
every word counts (so it does where only pictures made from their own pixels match: `resampled`);
what differs in a corner (a site's mark, or a caption's last word) is left to the words.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import numpy as np

from .caption import Caption, text_similarity
from .hashes import hash_array, nearest_distances

MAX_DISTANCE = 26  # bits of 64 between perceptual hashes: beyond, another picture (a 6% crop moves ~24)
NEAR_DISTANCE = 10  # bits of 64: near enough to align whatever the texts say
CANDIDATE_SIMILARITY = 0.05  # trigram overlap that makes a farther look-alike worth aligning
CANDIDATES = 12  # at most this many of each kind are aligned
NEXT_PICTURES = 4  # where a meme's picture cannot be aligned with an image, at most this many more of it are
# How much two aligned pictures differ (`indexer.alignment.difference`: the share of differing
# pixels in the patch where most differ): under this, one picture. On 1,007 rendered real memes
# all 4,032 altered copies measured 0, siblings (other captions) at least 0.196, captions a short
# word apart in small type at least 0.22. With stop 37's finer limits, on 144 real-template memes:
# JPEG copies up to 0.042, crops 0.023, framed 0.052; siblings at least 0.535 (README: stop 37).
MAX_PIXEL_DIFFERENCE = 0.1
# Pictures compared at a low resolution (a half-size copy of a small meme) may differ by half as
# much where a short word differs ("rain" for "calm": 0.07) as where nothing does (copies up to
# 0.094): from this much on, the pixels do not vouch for a word either picture lacks, nor for
# a picture without words to compare, nor for one that covers only part of the other (what
# differs may be what is left of a line it cut: crops of siblings' small memes cut through their
# bottom lines differed by 0.07, `cut_short`); such a picture may join the one meme that matches
# it, at a run's end.
BARELY = 0.05
# A picture compared at this many times the resolution of another outweighs it: a half-size copy
# of a small meme (half the resolution) shows its words in a few pixels each.
SHARPER = 1.5
ALIKE = 0.9  # resolutions this near are about the same (one crop's comparisons vary by the other's size)
MAX_DISTANCE_NO_TEXT = 4  # bits of 64, without pixels (none aligned, search-side groups) or text to compare
MIN_CAPTION_SIMILARITY = 0.5  # trigram Jaccard overlap of the two OCR texts
MIN_TRIGRAMS = 8  # fewer than this, and a text is too short to tell memes apart
CROPPED = (0.6, 0.99)  # the share of a picture's pixels a crop of it may have kept
COVERED = 0.97  # share of a picture another must cover to vouch for its words (a 3% crop covers 0.94-0.97)
MARK_LETTERS = 16  # what a site's mark says (imgflip.com, reddit.com/r/memes): more letters are a caption
# Pictures compared at under this resolution (`indexer.alignment`: the coarser one's pixels per pixel of
# its 640-pixel grid; a 320-pixel meme's half-size copy is 0.25) show a small caption a few pixels tall,
# and OCR misses whole lines of it: where one shows only a part of the other, what the other says
# beyond that part is not known, so the part does not vouch for it (a crop through one meme's caption
# matches a sibling's half-size copy whose OCR read only the line they share).
LEGIBLE = 0.3
GRID = 640  # pixels: the side `indexer.alignment` enlarges smaller pictures to (its MIN_SIDE)
SHARP_AREA = round(LEGIBLE * GRID) ** 2  # pixels (192 x 192): a picture this large is compared at LEGIBLE or finer

def same_meme(distance: int, a: Caption, b: Caption, pixels: float | None = None) -> bool:
    """Whether two images with hashes `distance` bits apart, these OCR captions and (if they
    could be aligned) this difference of their pixels (`indexer.alignment.difference`) are one meme."""
    return verdict(distance, a, b, pixels) == SAME


SAME, UNVOUCHED, DIFFERENT = "same", "unvouched", "different"


def verdict(distance: int, a: Caption, b: Caption, pixels: float | None = None) -> str:
    """`same_meme`'s answer, and UNVOUCHED where the two may be one meme, but one picture may show
    only a part of the other, without words the other says (`vouched`, `shows_part`)."""
    if distance > MAX_DISTANCE or words_differ(a, b, pixels):
        return DIFFERENT
    if pixels is not None:
        if in_corner(pixels) and not corner_explained(a, b):
            return DIFFERENT  # what differs is in a corner, where a site's mark goes, but so does a word
        if pixels >= MAX_PIXEL_DIFFERENCE and not (resampled(pixels) and a.words and b.words):
            return DIFFERENT
        if pixels >= BARELY:  # the pixels barely tell these apart: every word counts, as without them
            if words_differ(a, b, pixels, every_word=True):
                return DIFFERENT
            if not (a.words and b.words):
                return UNVOUCHED  # and there are no words on one side to count
            if cut_short(pixels, min(covers(pixels))):
                return UNVOUCHED
        return SAME if vouched(a, b, pixels) else UNVOUCHED
    if a.disagrees(b, every_word=True):
        return DIFFERENT  # no pixels vouch for a word the trusted ones leave out (short, or last)
    if len(a.grams) < MIN_TRIGRAMS or len(b.grams) < MIN_TRIGRAMS:
        alike = distance <= MAX_DISTANCE_NO_TEXT and len(a.grams) < MIN_TRIGRAMS and len(b.grams) < MIN_TRIGRAMS
    else:
        alike = text_similarity(a.grams, b.grams) >= MIN_CAPTION_SIMILARITY
    if not alike:
        return DIFFERENT
    # where one says words the other does not, it may be a crop of the other through its caption
    # (or the other a sibling the crop matches as well): no pixels say which part each shows
    return UNVOUCHED if shows_part(a, b, 0.0) or shows_part(b, a, 0.0) else SAME


def may_be_crop(area: int, other: int) -> bool:
    """Whether one of two pictures with these pixel counts may be a crop of the other: it keeps
    a share of the other's pixels within CROPPED (8% cut from each edge leaves 71%; half, 25%)."""
    return 0 < min(area, other) and CROPPED[0] <= min(area, other) / max(area, other) < CROPPED[1]


def words_differ(a: Caption, b: Caption, pixels, every_word: bool = False) -> bool:
    """`Caption.disagrees`, where a picture that the aligned pixels show to be a part of the
    other (a crop: it covers less than COVERED of the other, which covers all of it) counts only
    the words it says, and each of them must be in the other: the crop may have cut the other's."""
    share_a, share_b = covers(pixels) if pixels is not None else (1.0, 1.0)
    if share_b < COVERED <= share_a:
        return a.disagrees(b, every_word, part=True)
    if share_a < COVERED <= share_b:
        return b.disagrees(a, every_word, part=True)
    return a.disagrees(b, every_word)


def corner_explained(a: Caption, b: Caption) -> bool:
    """Whether what differs in a corner of two pictures can be a site's mark: the words agree,
    every word counted, and where OCR read nothing on one picture (a crop through its caption,
    type too small), the other says no more than a mark would; otherwise the words that could
    tell a mark from a changed caption word are not there to tell."""
    if a.disagrees(b, every_word=True):
        return False
    if bool(a.tokens) != bool(b.tokens):
        return max(a.said, b.said) <= MARK_LETTERS
    return True


def vouched(a: Caption, b: Caption, pixels) -> bool:
    """Whether the pixels compared all that the words could tell: neither picture shows only a
    part of the other that leaves out words the other says (`shows_part`: a crop through a
    caption has lost the words that would tell it from a sibling's crop, or from a sibling).
    Where neither has words, each must cover all of the other (a crop may be the template's
    picture with any caption cut off, and a whole picture shows what the crop cut off); so must
    one of them where neither covers all of the other (two crops, each cut where the other was
    not: both may have cut the line telling two siblings apart, and what they cut is not known)."""
    overlap = covers(pixels)
    if max(overlap) < COVERED:
        return False
    if not (a.words or b.words):
        return min(overlap) >= COVERED
    sharp = legible(pixels)
    return not (shows_part(a, b, overlap[1], sharp) or shows_part(b, a, overlap[0], sharp))


def resampled(pixels) -> bool:
    """Whether pictures compared at a small one's resolution differ only as resamplers draw them:
    made from their own pixels under BARELY, from the grids under half (copies: up to 0.48)."""
    own = getattr(pixels, "own", None)
    return own is not None and own < BARELY and pixels < 5 * MAX_PIXEL_DIFFERENCE


def covers(pixels) -> tuple[float, float]:
    """The share of the first aligned picture the second covers, and of the second the first
    (none known without pixels)."""
    return (0.0, 0.0) if pixels is None else getattr(pixels, "overlap", (1.0, 1.0))


def shows_part(a: Caption, b: Caption, covered: float, sharp: bool = True) -> bool:
    """Whether a picture with caption `a`, covering this share of one with caption `b`, shows only
    part of it, and `b` says words `a` does not (or, not `sharp`, may say words OCR did not read):
    they may be where `a` does not reach, and there a sibling's would differ."""
    if covered >= COVERED:
        return False
    return not sharp or (bool(b.words) and (not a.words or any(a.lacks(w) for w in b.words)))


def legible(pixels) -> bool:
    """Whether two aligned pictures were compared at a resolution at which OCR reads a small
    caption (`LEGIBLE`; without pixels, none is known to be less)."""
    return getattr(pixels, "detail", 1.0) >= LEGIBLE


def barely(a: Caption, pixels) -> bool:
    """Whether a picture with caption `a`, without words, matches another only as closely as
    pictures that differ in a short word may (`BARELY`)."""
    return not a.words and pixels is not None and pixels >= BARELY


def cut_short(pixels, covered: float) -> bool:
    """Whether a picture covering this share of another, differing from it by `pixels`, may be a
    crop through a line of its caption that kept what is left of the letters (it covers under
    COVERED, they differ by BARELY or more): OCR reads none of that line to tell a sibling's."""
    return covered < COVERED and pixels is not None and pixels >= BARELY


def in_corner(pixels) -> bool:
    """Whether two aligned pictures match only with a corner left out (`indexer.alignment`:
    the corner differs more than the rest, and more than a copy's pixels may)."""
    return float(getattr(pixels, "corner", 0.0)) >= MAX_PIXEL_DIFFERENCE


class Likeness:
    """The memes of an archive as the rule sees them (id, hash, trigrams); finds the one a new
    image repeats. Memes are added as they are saved, so copies within one run join too."""

    def __init__(self, memes: list[tuple]):
        """`memes`: (id, perceptual hash, OCR readings[, pixel count of the picture])."""
        self.ids = [m[0] for m in memes]
        self.pictures = list(self.ids)  # which picture each row is: a meme's own, or a copy's
        self._hashes = hash_array([m[1] for m in memes] + ["0"] * max(16, len(memes)))
        self.captions = [Caption.of(m[2]) for m in memes]
        self.areas = [(m[3] if len(m) > 3 else None) or 0 for m in memes]
        self._rows: dict[str, list[int]] = {}  # a meme's pictures' rows
        for row, meme_id in enumerate(self.ids):
            self._rows.setdefault(meme_id, []).append(row)

    def add(self, meme_id: str, phash: str, readings: str | Sequence[str], picture: str | None = None,
            area: int = 0) -> None:
        """A meme's picture, or (`picture` naming it) another picture of it: a copy joined to it
        is compared with later images too, so that a copy of a copy still finds its meme."""
        if len(self.ids) == len(self._hashes):  # room for as many again: adding stays cheap
            self._hashes = np.concatenate([self._hashes, np.zeros(len(self._hashes), dtype=np.uint64)])
        self._hashes[len(self.ids)] = np.uint64(int(phash, 16))
        self._rows.setdefault(meme_id, []).append(len(self.ids))
        self.ids.append(meme_id)
        self.pictures.append(picture or meme_id)
        self.captions.append(Caption.of(readings))
        self.areas.append(area)

    def relabel(self, meme_id: str, into: str) -> None:
        """Meme `meme_id`'s pictures are pictures of meme `into` now (the two were folded)."""
        self.ids = [into if i == meme_id else i for i in self.ids]
        if into != meme_id:
            self._rows.setdefault(into, []).extend(self._rows.pop(meme_id, []))

    def candidates(self, phashes: list[str], caption: Caption, area: int = 0, after: int = 0,
                   sole: bool = False) -> list[tuple[int, int, float]]:
        """Pictures worth comparing with an image: (row, hash distance, text similarity), the
        nearest and the farther ones whose captions overlap, at most CANDIDATES of each, among
        those whose words do not already tell them apart (siblings of one template are as near
        as copies, and would crowd the copies out); only rows from `after` on, and with `sole`
        the earlier ones too that say words the image does not or lack words it says (one may
        be a part of the other)."""
        if not phashes or (len(self.ids) <= after and not sole):
            return []
        start = 0 if sole else after
        distance = nearest_distances(phashes, self._hashes[start:len(self.ids)])
        rows = (int(i) + start for i in np.nonzero(distance <= MAX_DISTANCE)[0])
        rows = (row for row in rows if row >= after or self._says_other(caption, row))
        scored = [(row, int(distance[row - start]), text_similarity(caption.grams, self.captions[row].grams))
                  for row in rows if self._may_be(caption, area, row)]
        near = self._of_memes(sorted((c for c in scored if c[1] <= NEAR_DISTANCE), key=lambda c: (c[1], -c[2])))
        worded = self._of_memes(sorted((c for c in scored if c[2] >= CANDIDATE_SIMILARITY), key=lambda c: -c[2]))
        far = []
        if area >= SHARP_AREA:
            # an image without words to choose by (a crop through its caption) has its hash only, and
            # a crop's moves up to ~24 bits: the nearest picture of each farther meme (a small one's
            # pixels could not tell the siblings that would come with it apart); so has a crop with
            # words of a picture without (1-pixel type OCR did not read on the original)
            beyond = (c for c in scored if c[1] > NEAR_DISTANCE and (not caption.words or (
                not self.captions[c[0]].words and may_be_crop(area, self.areas[c[0]]) and area < self.areas[c[0]])))
            far = self._of_memes(sorted(beyond, key=lambda c: c[1]), each=1)
        return list({c[0]: c for c in near + worded + far}.values())

    def _of_memes(self, ranked: list[tuple[int, int, float]], each: int = 2) -> list[tuple[int, int, float]]:
        """The first of `ranked` that are pictures of CANDIDATES memes at most (a meme's copies
        would crowd other memes out), and at most `each` times as many pictures (with `each` 1,
        one of each meme)."""
        memes: set[str] = set()
        kept = []
        for c in ranked:
            seen = self.ids[c[0]] in memes
            if (seen and each == 1) or (not seen and len(memes) == CANDIDATES):
                continue
            memes.add(self.ids[c[0]])
            kept.append(c)
            if len(kept) == each * CANDIDATES:
                break
        return kept

    def _says_other(self, caption: Caption, row: int) -> bool:
        """Whether the picture of `row` says words the image does not, or lacks words it says."""
        other = self.captions[row]
        return any(caption.lacks(w) for w in other.words) or any(other.lacks(w) for w in caption.words)

    def _may_be(self, caption: Caption, area: int, row: int) -> bool:
        """Whether the words allow the image to be the picture of `row` (the pixels decide)."""
        other = self.captions[row]
        # the smaller picture may be a crop of the other (the pixels will tell): its words count
        smaller, larger = (caption, other) if area < self.areas[row] else (other, caption)
        if smaller.disagrees(larger, part=may_be_crop(area, self.areas[row])):
            return False
        # A smaller picture whose words OCR could not read cannot vouch for a larger one whose
        # words it did: at that size, captions a word apart look alike.
        return not (caption.words and not other.words and 0 < self.areas[row] < area)

    def find(self, phashes: list[str], readings: str | Sequence[str], pixels=None, area: int = 0,
             exclude: set | frozenset = frozenset(), after: int = 0, sole: bool = False) -> str | None:
        """The meme an image with these hashes (whole, unframed), OCR readings and pixel count
        repeats, if any, other than those in `exclude`, among the pictures from row `after` on.
        `pixels(picture)` gives how much the pictures differ once aligned, or None. `sole`: every
        picture it could be is known (a run's end): `Match.settled`, the earlier rows whose words
        differ from its own looked at too."""
        found = self.match(phashes, Caption.of(readings), pixels, area, exclude, after, sole)
        return found.settled if sole else found.meme

    def match(self, phashes: list[str], caption: Caption, pixels=None, area: int = 0,
              exclude: set | frozenset = frozenset(), after: int = 0, sole: bool = False) -> "Match":
        """What `find` sees: the meme the image repeats, if any, and the memes whose pictures
        match it only where one is a part of the other (with `sole`, earlier rows that say other
        words than the image are looked at too)."""
        found = Match()
        best: tuple | None = None
        # the likeliest first: once a picture matches with no pixel differing (no corner left
        # out), none after it can rank before it, and the costly comparisons of the rest of its
        # meme's pictures are spared (other memes' are still made: it may repeat them too)
        candidates = sorted(self.candidates(phashes, caption, area, after, sole), key=lambda c: (-c[2], c[1]))
        unaligned: set[str] = set()
        for i, distance, similarity in candidates:
            meme_id = self.ids[i]
            if meme_id in exclude or (meme_id == found.meme and best is not None and best[:2] == (False, 0)):
                continue
            difference = pixels(self.pictures[i]) if pixels is not None else None
            if difference is None and pixels is not None and meme_id not in unaligned:
                # not aligned (a crop, and a framed copy of its original): the meme's other pictures
                unaligned.add(meme_id)
                candidates += self._next_pictures(meme_id, phashes, caption, area, after, sole, candidates)
            said = verdict(distance, caption, self.captions[i], difference)
            if said == UNVOUCHED:
                overlap, sharp = covers(difference), legible(difference)
                if (shows_part(caption, self.captions[i], overlap[1], sharp) or barely(caption, difference)
                        or cut_short(difference, overlap[1])):
                    found.may_be(meme_id, difference)
                elif shows_part(self.captions[i], caption, overlap[0], sharp) or cut_short(difference, overlap[0]):
                    found.part(meme_id, i, difference)
            if said == SAME:
                # the closest picture wins; one that needed its corners left out comes after
                rank = (difference is not None and in_corner(difference),
                        difference if difference is not None else 1.0, -similarity, distance)
                if best is None or rank < best:
                    best, found.meme = rank, meme_id
                if caption.words and self.captions[i].words:  # a bridge needs words on both sides
                    found.also.add(meme_id)
        found.also = found.also - {found.meme} if found.meme in found.also else set()
        return found

    def _next_pictures(self, meme_id: str, phashes: list[str], caption: Caption, area: int, after: int,
                       sole: bool, met: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
        """At most NEXT_PICTURES other pictures of a meme `candidates` may give, not `met`, nearest first."""
        taken = {c[0] for c in met}
        rows = [r for r in self._rows[meme_id] if r not in taken and (r >= after or (
            sole and self._says_other(caption, r))) and self._may_be(caption, area, r)]
        near = [(r, int(d)) for r, d in zip(rows, nearest_distances(phashes, self._hashes[rows])) if d <= MAX_DISTANCE]
        return [(r, d, text_similarity(caption.grams, self.captions[r].grams))
                for r, d in sorted(near, key=lambda c: c[1])[:NEXT_PICTURES]]

    def captions_of(self, meme_id: str) -> list[Caption]:
        """The captions of every picture of a meme (its own, and copies joined to it)."""
        return [self.captions[row] for row in self._rows.get(meme_id, [])]

    def row(self, row: int) -> tuple[str, str, Caption, int]:
        """A picture the rule knows: its key (a meme's id, or a copy's bytes' hash), hash, caption
        and pixel count."""
        return self.pictures[row], f"{int(self._hashes[row]):016x}", self.captions[row], self.areas[row]


class Seen(NamedTuple):
    """How a meme's pictures matched an image that may be a part of one: the finest resolution
    they were compared at, the finest at which one matched as closely as a copy does, and the
    finest at which nothing differed (0.0: none)."""

    finest: float
    close: float
    exact: float


@dataclass
class Match:
    """What comparing an image with an archive's pictures found: the meme it repeats (None if
    none; `also`: the other memes it repeats a picture of, both pictures with words, as it does
    one of that meme: copies of one meme whose words or pixels did not vouch for each other,
    which it bridges), the memes with a picture it may be but cannot vouch for (`unvouched`: it
    shows only a part of it, or has no words and barely matches it; `detail`: meme -> the finest
    resolution its pictures were compared at, at which they matched as closely as copies do, and
    at which nothing differed), and those with a picture that shows only a part of it (`parts`:
    meme -> the row of that picture, the one that matches it most closely; `close`: the memes
    whose part matches it as closely as a copy's does)."""

    meme: str | None = None
    parts: dict = field(default_factory=dict)
    close: set = field(default_factory=set)
    also: set = field(default_factory=set)
    detail: dict = field(default_factory=dict)
    _gaps: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def part(self, meme_id: str, row: int, pixels) -> None:
        """The picture of `row`, of this meme, shows only a part of the image, and differs from
        it by `pixels`."""
        gap = (in_corner(pixels), float(pixels)) if pixels is not None else (True, 1.0)
        if meme_id not in self.parts or gap < self._gaps[meme_id]:
            self.parts[meme_id] = row
            self._gaps[meme_id] = gap
        if gap < (False, BARELY):  # a corner left out (a site's mark, or a word) is not as close
            self.close.add(meme_id)

    @property
    def unvouched(self) -> set:
        return set(self.detail)

    def may_be(self, meme_id: str, pixels) -> None:
        """The image may be a part of a picture of this meme, which differs from it by `pixels`."""
        seen = getattr(pixels, "detail", 0.0)  # none known without pixels
        close = seen if pixels is not None and pixels < BARELY else 0.0
        # nothing differing, corners too, at a resolution where a word's strokes show: at a coarser
        # one, siblings' pictures may match exactly
        exact = 0.0
        if pixels is not None and pixels == 0 and not getattr(pixels, "corner", 0.0) and legible(pixels):
            exact = seen
        was = self.detail.get(meme_id, Seen(0.0, 0.0, 0.0))
        self.detail[meme_id] = Seen(max(was.finest, seen), max(was.close, close), max(was.exact, exact))

    @property
    def part_of(self) -> str | None:
        """The one meme the image may be a part of, if one: the only one, or the one whose
        picture matches it as closely as a copy does at SHARPER times the resolution at which
        any other's did, and at about the finest resolution any other's was compared at (a crop
        through a small caption: a sibling's half-size copy, too small to show the words that
        tell them apart, matches it as closely as its own original; a sibling's crop compared
        at its own resolution differs by more than a copy); failing that, the same for a picture
        that matches it with nothing differing at all where every other's differs a little (a
        crop through a caption band leaves a sliver of its line: the siblings' slivers differ
        by less than a copy may, its own original's by nothing)."""
        if len(self.detail) == 1:
            return next(iter(self.detail))
        for how in ("close", "exact"):
            for meme_id, found in self.detail.items():
                at = getattr(found, how)
                if at and all(getattr(theirs, how) * SHARPER <= at and theirs.finest * ALIKE <= at
                              for other, theirs in self.detail.items() if other != meme_id):
                    return meme_id
        return None

    @property
    def settled(self) -> str | None:
        """The meme the image joins once every picture it could be is known (a run's end): the
        one it repeats, or else the one meme whose picture it is a part of (a crop through a
        caption: a sibling's picture would match it as well, and none does; never the other
        way: a whole does not join a meme through a crop that may be a sibling's)."""
        return self.meme if self.meme is not None else self.part_of
