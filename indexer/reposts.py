"""Repost grouping while indexing: the meme a new image repeats, if any (the rule in
`archive.likeness`, pixels compared by `indexer.alignment`), among the archive's memes and those
saved earlier in the same run."""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator

from PIL import Image

from archive.catalog import Catalog
from archive.caption import Caption
from archive.lookalikes import Likeness, Match
from archive.model import Meme

from .alignment import FeatureCache, pixel_judge
from .imageio import image_of


def area(meme: Meme) -> int:
    return (meme.width or 0) * (meme.height or 0)


class Reposts:
    """Finds the meme a new image repeats (the rule in `archive.likeness`, pixels compared by
    `indexer.alignment`); the archive's hashes and texts are loaded on first use."""

    def __init__(self, catalog: Catalog, max_pixels: int, likeness: Likeness | None = None):
        self.catalog = catalog
        self.max_pixels = max_pixels
        self._likeness = likeness
        self._features = FeatureCache()  # memes saved this run go in as they are saved
        self._copies: dict[str, str] = {}  # a copy joined this run (its bytes' hash) -> its meme
        # memes saved this run: (the first row of pictures after its own, hashes, readings, pixel count)
        self._new: dict[str, tuple] = {}
        self._folded = 0  # memes folded by the second look
        self._made: set[str] = set()  # memes made this run
        self._into: dict[str, str] = {}  # a meme folded this run -> the meme it is now part of
        self._own: dict[str, str] = {}  # a meme folded this run -> its own file's bytes' hash
        self._bridges: list[tuple[str, str]] = []  # memes an image repeats both of (`_bridge`)

    @property
    def likeness(self) -> Likeness:
        if self._likeness is None:
            self._likeness = Likeness(self.catalog.likeness_rows())
        return self._likeness

    def find(self, phashes: list[str], readings: list[str], picture: Image.Image | None, area: int = 0,
             exclude: set | frozenset = frozenset()) -> str | None:
        found = self.likeness.match(phashes, Caption.of(readings), self._judge(picture), area, exclude)
        self._bridge(found)
        return found.meme

    def _bridge(self, found: Match) -> None:
        """An image that repeats pictures of two memes made them one: the copies of a meme met
        before it (a half-size copy and a watermarked one, say) whose words or pixels could not
        vouch for each other; they are folded at the end of the run."""
        if found.meme is not None:
            self._bridges += [(found.meme, other) for other in found.also]

    def _judge(self, picture: Image.Image | None = None, key: str | None = None):
        """How much an image (`picture`, or the picture of `key`, loaded on first use) differs
        from the pictures of this archive and run (`alignment.pixel_judge`)."""
        return pixel_judge(picture, self._features, self._picture, key)

    def apart(self, rules: list[tuple[str, str]]) -> set[str]:
        """The memes an image is not, by what the user said of its bytes (`Catalog.identity_rules`:
        `memes split`)."""
        return {self.catalog.id_for_content(o) for r, o in rules if r == "apart"}

    def remember(self, meme: Meme, picture: Image.Image | None, phashes: list[str] | None = None) -> None:
        """A meme saved this run: its picture is compared with the images after it, by every
        hash of it (whole, and without a frame: a framed repost met first still finds its original)."""
        readings = [o.text for o in meme.ocr_texts]
        for phash in dict.fromkeys(phashes or [meme.phash]):
            self.likeness.add(meme.id, phash, readings, area=area(meme))
        self._made.add(meme.id)
        if picture is not None:
            self._features.get(meme.id, lambda: picture)
            self._new[meme.id] = (len(self.likeness.ids), phashes or [meme.phash], Caption.of(readings), area(meme))

    def second_look(self) -> Iterator[tuple[str, str]]:
        """(meme, meme it is folded into) for memes saved this run that stayed alone: a copy met
        before its original became a meme of its own, and the original, joining another copy of
        it, can join only one; a small copy whose words OCR could not read cannot vouch for the
        original that came after it. Each is compared again with the pictures met after it (and
        only where there are some worth comparing), and with the earlier ones whose words differ:
        where one of two pictures shows only a part of the other, and the other says words it
        does not (a crop through a caption, or a caption framed with a line of text), they are
        one meme when the part matches no other whole (a sibling's would match it as well).
        First, memes made this run that one image repeats as well as another (`_bridge`) are
        folded into it, all their files with them, where their words never differ and the user
        never set their files apart. `merged` tells of each one the caller folds."""
        folded = -1
        while folded != self._folded:  # again while memes were folded: a crop's two wholes may be one now
            folded = self._folded
            yield from self._bridged()
            yield from self._looked_again()

    def _bridged(self) -> Iterator[tuple[str, str]]:
        bridges, self._bridges = self._bridges, []
        for joined, other in bridges:
            joined, other = self._now(joined), self._now(other)
            if other not in self._made:
                joined, other = other, joined  # fold the one made this run
            if joined != other and other in self._made and self._may_fold(other, joined):
                yield other, joined

    def _now(self, meme_id: str) -> str:
        while meme_id in self._into:
            meme_id = self._into[meme_id]
        return meme_id

    def _may_fold(self, meme_id: str, into: str) -> bool:
        """Whether the words of every picture of one meme agree with those of every picture of
        the other, and the user set none of their files apart from the other meme."""
        a, b = self.catalog.get(meme_id), self.catalog.get(into)
        if a is None or b is None:
            return False
        for meme, other in ((a, b.id), (b, a.id)):
            if any(other in self.apart(self.catalog.identity_rules(s.content_hash or "")) for s in meme.sightings):
                return False
        theirs = self.likeness.captions_of(into)
        return not any(x.disagrees(y) or y.disagrees(x) for x in self.likeness.captions_of(meme_id) for y in theirs)

    def _looked_again(self) -> Iterator[tuple[str, str]]:
        # the largest first: a framed copy is settled before a crop of its picture asks which
        # memes it is a part of
        for meme_id, (after, phashes, caption, area) in sorted(self._new.items(), key=lambda m: -m[1][3]):
            meme = self.catalog.get(meme_id) if meme_id in self._new else None  # or folded meanwhile
            if meme is None or len(meme.sightings) != 1:
                continue  # other files joined it meanwhile: it stays a meme (a wrong join would spread)
            exclude = {meme_id} | self.apart(self.catalog.identity_rules(meme.content_hash or ""))
            # its picture is loaded only where some picture is worth comparing with it
            found = self.likeness.match(phashes, caption, self._judge(key=meme_id), area, exclude, after, sole=True)
            self._bridge(found)
            joined = found.settled
            # a whole whose part matches no other whole, the parts that match it as closely as a
            # copy first (a half-size copy of a sibling in faint type may barely match a frame
            # whose own original is there too), then the part's meme with most files: a framed copy
            # shows its original, and a lone crop of it, which may match the frame best
            ranked = sorted(found.parts.items(), key=lambda p: (p[0] not in found.close, -self._file_count(p[0])))
            for part, row in ranked:
                if joined is not None:
                    break
                if self._sole_whole(row, exclude={part}) == meme_id:
                    joined = part
            if joined is not None:
                yield meme_id, joined

    def _file_count(self, meme_id: str) -> int:
        meme = self.catalog.get(meme_id)
        return len(meme.sightings) if meme is not None else 0

    def _sole_whole(self, row: int, exclude: set) -> str | None:
        """The one meme with pictures that the picture of `row` shows only a part of, if one."""
        key, phash, caption, area = self.likeness.row(row)
        found = self.likeness.match([phash], caption, self._judge(key=key), area, exclude, len(self.likeness.ids),
                                    sole=True)
        return found.part_of

    def merged(self, meme: Meme, into: str) -> None:
        """Meme `meme` was folded into meme `into`: its pictures are pictures of `into` now, and
        still compared as pictures (a sighting of `into` each)."""
        meme_id = meme.id
        self._new.pop(meme_id, None)
        self._into[meme_id] = into
        if meme.content_hash:
            self._own[meme_id] = meme.content_hash
        self.likeness.relabel(meme_id, into)
        self._folded += 1

    def remember_copy(self, meme_id: str, copy: Meme, picture: Image.Image | None,
                      phashes: list[str] | None = None) -> None:
        """A copy (its own bytes, words and picture) just joined to meme `meme_id`: later images
        are compared with it too (this run), so that the original met after a copy, or a copy of
        a copy, still finds its meme."""
        if picture is None:
            return
        self._copies[copy.content_hash] = meme_id
        for phash in dict.fromkeys(phashes or [copy.phash]):
            self.likeness.add(meme_id, phash, [o.text for o in copy.ocr_texts], copy.content_hash, area(copy))
        self._features.get(copy.content_hash, lambda: picture)

    def _picture(self, key: str) -> Image.Image | None:
        """The picture of a meme (by id), or of a copy joined to one (by its bytes' hash), also
        where the meme was folded into another this run (without its picture, the rule would
        compare hashes and words only)."""
        meme = self.catalog.get(self._now(self._copies.get(key, key)))
        content = key if key in self._copies else self._own.get(key)
        if meme is not None and content is not None:
            meme = replace(meme, content_hash=content)  # the sighting with these bytes
        return image_of(meme, self.max_pixels) if meme is not None else None
