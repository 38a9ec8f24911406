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
        # memes saved this run whose words OCR could not read: (hashes, readings, pixel count, picture)
        self._unvouched: dict[str, tuple] = {}

    @property
    def likeness(self) -> Likeness:
        if self._likeness is None:
            self._likeness = Likeness(self.catalog.likeness_rows())
        return self._likeness

    def find(self, phashes: list[str], readings: list[str], picture: Image.Image | None, area: int = 0,
             exclude: set | frozenset = frozenset()) -> str | None:
        pixels = pixel_judge(picture, self._features, self._picture)
        return self.likeness.find(phashes, readings, pixels, area, exclude)

    def remember(self, meme: Meme, picture: Image.Image | None, phashes: list[str] | None = None) -> None:
        """A meme saved this run: its picture is compared with the images after it, by every
        hash of it (whole, and without a frame: a framed repost met first still finds its original)."""
        readings = [o.text for o in meme.ocr_texts]
        for phash in dict.fromkeys(phashes or [meme.phash]):
            self.likeness.add(meme.id, phash, readings, area=area(meme))
        if picture is not None:
            self._features.get(meme.id, lambda: picture)
            if not Caption.of(readings).words and len(self._unvouched) < 1024:
                self._unvouched[meme.id] = (phashes or [meme.phash], readings, area(meme), picture)

    def second_look(self) -> Iterator[tuple[str, str]]:
        """(meme, meme it repeats) for memes saved this run that no larger picture could join
        when they came first: a small copy whose words OCR could not read cannot vouch for the
        original that came after it, but can join it now that both are known."""
        gone: set[str] = set()
        for meme_id, (phashes, readings, area, picture) in self._unvouched.items():
            found = self.find(phashes, readings, picture, area, exclude={meme_id} | gone)
            if found is not None:
                gone.add(meme_id)
                yield meme_id, found

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
