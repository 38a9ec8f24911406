"""Memes' pictures as search by picture needs them: a query picture looked up (a small copy for
the image model, its perceptual hashes, the words OCR reads on it, a pixel judge against memes),
and a meme's own picture, read from the first of its files that still holds it."""
from __future__ import annotations

from PIL import Image

from archive.catalog import Catalog

from .alignment import FeatureCache, pixel_judge
from .imageio import image_of, model_input, picture_hashes
from .ocr import MemeOcr


class Pictures:
    def __init__(self, catalog: Catalog, ocr: MemeOcr, max_pixels: int):
        self.catalog = catalog
        self.ocr = ocr
        self.max_pixels = max_pixels

    def looked_up(self, rgb: Image.Image) -> dict:
        """What `Searcher.similar_to_image` needs of a query picture (its keyword arguments)."""
        picture = model_input(rgb)  # pictures are compared at the size indexing compares them
        return {"picture": picture, "phashes": picture_hashes(rgb), "text": self.ocr.read(rgb, side_by_side=True),
                "pixels": self.judge(picture)}

    def pixels_of(self, meme_id: str):
        """The pixel judge of a meme's own picture against others; None where it has none."""
        picture = self.of_meme(meme_id)
        return self.judge(picture) if picture is not None else None

    def judge(self, picture: Image.Image):
        return pixel_judge(picture, FeatureCache(64), self.of_meme)

    def of_meme(self, meme_id: str) -> Image.Image | None:
        meme = self.catalog.get(meme_id)
        image = image_of(meme, self.max_pixels) if meme is not None else None
        return model_input(image) if image is not None else None
