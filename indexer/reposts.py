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
        """(meme, meme it repeats) for memes saved this run that a picture met after them repeats:
        a copy met before its original became a meme of its own, and the original, joining
        another copy of it, can join only one; a small copy whose words OCR could not read cannot
        vouch for the original that came after it. Each is compared again with the pictures met
        after it (and only where there are some worth comparing), one without words with every
        picture (it may join the sole meme that matches it); `merged` tells of each one the
        caller folds."""
        for meme_id, (after, phashes, readings, area) in list(self._new.items()):
            caption = Caption.of(readings)
            if not caption.words:  # it may join the sole meme that matches it: all of them are known now
                after = 0
            if not self.likeness.candidates(phashes, caption, area, after):
                continue  # nothing met since could be it: no picture to load
            meme = self.catalog.get(meme_id)
            if meme is None or len(meme.sightings) != 1:
                continue  # other files joined it meanwhile: it stays a meme (a wrong join would spread)
            apart = self.apart(self.catalog.identity_rules(meme.content_hash or ""))
            found = self.find(phashes, readings, self._picture(meme_id), area, exclude={meme_id} | apart,
                              after=after, sole=not caption.words)
            if found is not None:
                yield meme_id, found

    def merged(self, meme_id: str, into: str) -> None:
        """Meme `meme_id` was folded into meme `into`: its pictures are pictures of `into` now."""
        self._new.pop(meme_id, None)
        self.likeness.relabel(meme_id, into)

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
