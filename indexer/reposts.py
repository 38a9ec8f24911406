"""Repost grouping while indexing: the meme a new image repeats, if any (the rule in
`archive.likeness`, pixels compared by `indexer.alignment`), among the archive's memes and those
saved earlier in the same run."""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator

from PIL import Image

from archive.catalog import Catalog
from archive.likeness import Caption, Likeness
from archive.model import Meme

from .alignment import FeatureCache, pixel_judge
from .imageio import image_of, model_input


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

    @property
    def likeness(self) -> Likeness:
        if self._likeness is None:
            self._likeness = Likeness(self.catalog.likeness_rows())
        return self._likeness

    def find(self, phashes: list[str], readings: list[str], picture: Image.Image | None, area: int = 0,
             exclude: set | frozenset = frozenset(), after: int = 0, sole: bool = False) -> str | None:
        pixels = pixel_judge(picture, self._features, self._picture)
        return self.likeness.find(phashes, readings, pixels, area, exclude, after, sole)

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
        if picture is not None:
            self._features.get(meme.id, lambda: picture)
            self._new[meme.id] = (len(self.likeness.ids), phashes or [meme.phash], readings, area(meme))

    def second_look(self) -> Iterator[tuple[str, str]]:
        """(meme, meme it is folded into) for memes saved this run that stayed alone: a copy met
        before its original became a meme of its own, and the original, joining another copy of
        it, can join only one; a small copy whose words OCR could not read cannot vouch for the
        original that came after it. Each is compared again with the pictures met after it (and
        only where there are some worth comparing), and with the earlier ones whose words differ:
        where one of two pictures shows only a part of the other, and the other says words it
        does not (a crop through a caption, or a caption framed with a line of text), they are
        one meme when the part matches no other whole (a sibling's would match it as well).
        `merged` tells of each one the caller folds."""
        folded = -1
        while folded != self._folded:  # again while memes were folded: a crop's two wholes may be one now
            folded = self._folded
            yield from self._looked_again()

    def _looked_again(self) -> Iterator[tuple[str, str]]:
        # the largest first: a framed copy is settled before a crop of its picture asks which
        # memes it is a part of
        for meme_id, (after, phashes, readings, area) in sorted(self._new.items(), key=lambda m: -m[1][3]):
            caption = Caption.of(readings)
            if meme_id not in self._new or not self.likeness.candidates(phashes, caption, area, after, sole=True):
                continue  # folded meanwhile, or nothing could be it: no picture to load
            meme = self.catalog.get(meme_id)
            if meme is None or len(meme.sightings) != 1:
                continue  # other files joined it meanwhile: it stays a meme (a wrong join would spread)
            exclude = {meme_id} | self.apart(self.catalog.identity_rules(meme.content_hash or ""))
            pixels = pixel_judge(self._picture(meme_id), self._features, self._picture)
            found = self.likeness.match(phashes, caption, pixels, area, exclude, after, sole=True)
            if found.meme is None and len(found.unvouched) == 1:
                found.meme = next(iter(found.unvouched))  # a part of one meme's picture only
            for part, row in found.parts.items():
                if found.meme is None and self._sole_whole(row, exclude={part}) == meme_id:
                    found.meme = part  # a whole whose part matches no other whole
            if found.meme is not None:
                yield meme_id, found.meme

    def _sole_whole(self, row: int, exclude: set) -> str | None:
        """The one meme with pictures that the picture of `row` shows only a part of, if one."""
        key, phash, caption, area = self.likeness.row(row)
        pixels = pixel_judge(self._picture(key), self._features, self._picture)
        found = self.likeness.match([phash], caption, pixels, area, exclude, len(self.likeness.ids), sole=True)
        return next(iter(found.unvouched)) if len(found.unvouched) == 1 else None

    def merged(self, meme_id: str, into: str) -> None:
        """Meme `meme_id` was folded into meme `into`: its pictures are pictures of `into` now."""
        self._new.pop(meme_id, None)
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
        """The picture of a meme (by id), or of a copy joined to one (by its bytes' hash)."""
        meme = self.catalog.get(self._copies.get(key, key))
        if meme is not None and key in self._copies:
            meme = replace(meme, content_hash=key)  # the sighting with the copy's bytes
        image = image_of(meme, self.max_pixels) if meme is not None else None
        return model_input(image) if image is not None else None  # as this run's pictures are
