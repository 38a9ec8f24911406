"""OCR with tesseract, tuned for meme captions.

Meme captions are mostly white letters with a dark outline over a photo, which plain
`image_to_string` reads poorly: the photo behind the letters defeats tesseract's own
binarisation. So the image is upscaled 2x and read twice: once as a mask of the white letters
(near-white pixels become black ink on white paper, in sparse-text mode), and once as it is
(dark text on light backgrounds: charts, screenshots, captions in black). The second reading
adds the words the first lacks. Measured in bench/ocr_recall.py (see README).
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageOps

from archive.errors import ModelUnavailable

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
# Tesseract starts its own threads; with one tesseract per core they only fight each other.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


def words(text: str) -> list[str]:
    """Lower-case words of a text, punctuation dropped."""
    return [w.lower() for w in _WORD.findall(text)]


@dataclass
class TesseractOcr:
    """Reads the text in an image; `engine` names it in records (`tesseract-ocr`)."""

    languages: str = "eng"
    engine: str = "tesseract"
    white_threshold: int = 230  # caption fill is pure white; JPEG keeps it above this
    upscale_below: int = 1600  # images smaller than this (longer side) are read at 2x
    min_confidence: float = 60  # for words of the plain reading

    def check(self) -> None:
        """Raise ModelUnavailable when the tesseract binary is missing."""
        if shutil.which("tesseract") is None:
            raise ModelUnavailable("tesseract is not installed (Debian: apt-get install tesseract-ocr)")

    def read(self, img: Image.Image) -> str:
        """The text in an RGB image, as one line of words separated by single spaces."""
        if max(img.size) < self.upscale_below:
            img = img.resize((img.width * 2, img.height * 2), Image.Resampling.LANCZOS)
        caption = self._tesseract(self._white_letters(img), "--psm 11")
        plain = self._confident_words(ImageOps.grayscale(img), "--psm 3")
        return merge_readings(caption, plain)

    def _white_letters(self, img: Image.Image) -> Image.Image:
        """Black ink where the image is white (caption letters), white paper elsewhere.

        White means every channel is high: a bright orange background is not white."""
        r, g, b = img.split()
        darkest = ImageChops.darker(ImageChops.darker(r, g), b)
        return darkest.point(lambda v: 0 if v >= self.white_threshold else 255)

    def _tesseract(self, img: Image.Image, mode: str, output: str = "string"):
        import pytesseract

        read = pytesseract.image_to_data if output == "data" else pytesseract.image_to_string
        kwargs = {"output_type": pytesseract.Output.DICT} if output == "data" else {}
        try:
            return read(img, lang=self.languages, config=mode, **kwargs)
        except pytesseract.TesseractNotFoundError:
            raise ModelUnavailable("tesseract is not installed (Debian: apt-get install tesseract-ocr)") from None

    def _confident_words(self, img: Image.Image, mode: str) -> str:
        """Words tesseract is fairly sure of: the plain reading of a photo is mostly noise."""
        data = self._tesseract(img, mode, output="data")
        return " ".join(w for w, c in zip(data["text"], data["conf"]) if w.strip() and float(c) >= self.min_confidence)


def merge_readings(first: str, *others: str) -> str:
    """The first reading whole, then the words of the others that it lacks.

    Lone letters and punctuation from the other readings are dropped: there they are mostly
    noise read from textures."""
    kept = first.split()
    seen = {"".join(words(token)) for token in kept}
    for reading in others:
        for token in reading.split():
            key = "".join(words(token))
            if len(key) < 2 or key in seen:
                continue
            seen.add(key)
            kept.append(token)
    return " ".join(kept)
