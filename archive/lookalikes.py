"""The memes of an archive as the identity rule (`archive.likeness`) sees them: their pictures'
hashes, captions and sizes, the candidates worth comparing with a new image, and what comparing
them found (`Match`): the meme it repeats, or the memes it may be a part of."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import numpy as np

from .caption import Caption, text_similarity
from .hashes import hash_array, nearest_distances
from .likeness import (BARELY, LEGIBLE, MAX_DISTANCE, MIN_CAPTION_SIMILARITY, MIN_TRIGRAMS, SAME, UNVOUCHED, barely,
                       covers, cut_short, exact, in_corner, legible, may_be_crop, shows_part, verdict)

NEAR_DISTANCE = 10  # bits of 64: near enough to align whatever the texts say
CANDIDATE_SIMILARITY = 0.05  # trigram overlap that makes a farther look-alike worth aligning
CANDIDATES = 12  # at most this many of each kind are aligned
NEXT_PICTURES = 4  # where a meme's picture cannot be aligned with an image, at most this many more of it are
# A picture compared at this many times the resolution of another outweighs it: a half-size copy
# of a small meme (half the resolution) shows its words in a few pixels each.
SHARPER = 1.5
ALIKE = 0.9  # resolutions this near are about the same (one crop's comparisons vary by the other's size)
GRID = 640  # pixels: the side `indexer.alignment` enlarges smaller pictures to (its MIN_SIDE)
SHARP_AREA = round(LEGIBLE * GRID) ** 2  # pixels (192 x 192): a picture this large is compared at LEGIBLE or finer


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
        self._said: dict[str, list[int]] = {}  # a trusted word -> the rows whose captions say it
        for row, meme_id in enumerate(self.ids):
            self._rows.setdefault(meme_id, []).append(row)
            self._index_words(row)

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
        self._index_words(len(self.ids) - 1)

    def _index_words(self, row: int) -> None:
        for word in set(self.captions[row].words):
            self._said.setdefault(word, []).append(row)

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
        as copies, and would crowd the copies out), and past MAX_DISTANCE, those whose captions
        say as much as it does (`_worded_beyond`); only rows from `after` on, and with `sole`
        the earlier ones too that say words the image does not or lack words it says (one may
        be a part of the other)."""
        if not phashes or (len(self.ids) <= after and not sole):
            return []
        start = 0 if sole else after
        distance = nearest_distances(phashes, self._hashes[start:len(self.ids)])
        rows = (int(i) + start for i in np.nonzero(distance <= MAX_DISTANCE)[0])
        scored = [(row, int(distance[row - start]), text_similarity(caption.grams, self.captions[row].grams))
                  for row in rows if self._allowed(caption, area, row, after, sole)]
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
            far += self._worded_beyond(caption, area, after, sole, distance)
        return list({c[0]: c for c in near + worded + far}.values())

    def _worded_beyond(self, caption: Caption, area: int, after: int, sole: bool,
                       distance: np.ndarray) -> list[tuple[int, int, float]]:
        """The pictures past MAX_DISTANCE, large enough to be compared at a legible resolution,
        whose captions say at least half of this one's trusted words and share MIN_CAPTION_SIMILARITY
        of its trigrams, the closest in words (then by hash) of each of CANDIDATES memes: a crop
        of text on a flat colour moves the hash 30-40 bits (its few strokes are all it has), and
        only its pixels can say it is the same picture (`archive.likeness.far_alike`)."""
        if len(caption.grams) < MIN_TRIGRAMS or not caption.words:
            return []
        start = 0 if sole else after  # `distance` is of the rows from here on
        shared = Counter(row for word in set(caption.words) for row in self._said.get(word, ()))
        enough = max(2, (len(set(caption.words)) + 1) // 2)  # half of them at least
        far = (row for row, n in shared.items() if n >= enough and row >= start
               and distance[row - start] > MAX_DISTANCE and not 0 < self.areas[row] < SHARP_AREA)
        scored = ((row, int(distance[row - start]), text_similarity(caption.grams, self.captions[row].grams))
                  for row in far)
        alike = [c for c in scored
                 if c[2] >= MIN_CAPTION_SIMILARITY and self._allowed(caption, area, c[0], after, sole)]
        return self._of_memes(sorted(alike, key=lambda c: (-c[2], c[1])), each=1)

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

    def _allowed(self, caption: Caption, area: int, row: int, after: int, sole: bool) -> bool:
        """Whether the picture of `row` is one to compare with the image: from row `after` on,
        or with `sole` an earlier one that says words the image does not or lacks words it says,
        and whose words allow the image to be it (`_may_be`)."""
        return (row >= after or (sole and self._says_other(caption, row))) and self._may_be(caption, area, row)

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
        rows = [r for r in self._rows[meme_id] if r not in taken and self._allowed(caption, area, r, after, sole)]
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
        spotless = seen if exact(pixels) else 0.0
        was = self.detail.get(meme_id, Seen(0.0, 0.0, 0.0))
        self.detail[meme_id] = Seen(max(was.finest, seen), max(was.close, close), max(was.exact, spotless))

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
