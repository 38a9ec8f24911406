"""Memes' pictures as search by picture needs them: a query picture looked up (a small copy for
the image model, its perceptual hashes, the words OCR reads on it, a pixel judge against memes),
and a meme's own picture, read from the first of its files that still holds it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from archive.catalog import Catalog
from archive.errors import MemesError

from .alignment import FeatureCache, pixel_judge
from .imageio import ImageLoadError, LoadedImage, decode, image_of, load_image, model_input, picture_hashes
from .ocr import MemeOcr


@dataclass
class QueryPicture:
    """A picture to search by: its bytes' hash (the meme that is those bytes is no answer) and
    what `Searcher.similar_to_image` needs of it (`Pictures.looked_up`)."""

    content_hash: str
    looked_up: dict


class Pictures:
    def __init__(self, catalog: Catalog, ocr: MemeOcr, max_pixels: int):
        self.catalog = catalog
        self.ocr = ocr
        self.max_pixels = max_pixels

    def looked_up(self, rgb: Image.Image) -> dict:
        """What `Searcher.similar_to_image` needs of a query picture (its keyword arguments)."""
        return {"picture": model_input(rgb), "phashes": picture_hashes(rgb),
                "text": self.ocr.read(rgb, side_by_side=True), "pixels": self.judge(rgb)}

    def query(self, loaded: LoadedImage) -> QueryPicture:
        return QueryPicture(loaded.content_hash, self.looked_up(loaded.rgb))

    def from_bytes(self, data: bytes) -> QueryPicture:
        """An image given as bytes (an upload) decoded, hashed and looked up; the heavy part of a
        search by image, touching nothing of the archive. Raises MemesError for a bad image."""
        try:
            loaded = decode(data, self.max_pixels)
        except ImageLoadError as exc:
            raise MemesError(str(exc)) from None
        return self.query(loaded)

    def from_file(self, path: Path) -> QueryPicture:
        """An image file looked up (raises MemesError, naming the file, for a bad one)."""
        try:
            loaded = load_image(path, self.max_pixels)
        except ImageLoadError as exc:
            raise MemesError(f"{path}: {exc}") from None
        return self.query(loaded)

    def pixels_of(self, meme_id: str):
        """The pixel judge of a meme's own picture against others; None where it has none."""
        picture = self.of_meme(meme_id)
        return self.judge(picture) if picture is not None else None

    def judge(self, picture: Image.Image):
        return pixel_judge(picture, FeatureCache(64), self.of_meme)

    def of_meme(self, meme_id: str) -> Image.Image | None:
        meme = self.catalog.get(meme_id)
        return image_of(meme, self.max_pixels) if meme is not None else None
