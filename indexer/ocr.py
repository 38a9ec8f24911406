"""OCR for meme captions: PP-OCRv4 (through rapidocr-onnxruntime) and tesseract, each tuned.

`MemeOcr`, the default, runs both and keeps each reading as a section of its own engine:

- PP-OCRv4's detection and recognition models ship inside the rapidocr-onnxruntime wheel (no
  download). They read meme fonts over photos far better than tesseract, but run words
  together ("IAMDEPRESSED"); the word breaks are restored by wordninja (word frequencies of
  English Wikipedia), keeping the glued form beside the words.
- tesseract reads the caption's white letters (below), which adds the words PP-OCR missed.

Chosen on 72 rendered real memes (bench/ocr_recall.py): word recall 0.932 at 0.655 CPU-s per
image median, against 0.796 at 0.640 s for tesseract alone (both of its readings) and 0.880 at
0.40 s for PP-OCR with word breaks restored alone; tesseract's plain reading added nothing beside
PP-OCR. With words broken across lines joined: 0.935 and 0.933 on two other sets of 144
(0.62-0.64 s). See README, "Measured here".

`TesseractOcr` alone (config `ocr_engines = "tesseract"`):

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
import threading
from dataclasses import dataclass
from typing import Sequence

from PIL import Image, ImageChops, ImageOps

from archive.errors import ConfigError, ModelUnavailable

EDGE = 4  # pixels: a line PP-OCR finds this near a picture's edge may run past what it found
MARGIN = 32  # pixels of the edge's colour around a picture read again (8 or 16 read less of an edge's line)
# Only pictures this small (longest side, pixels) are read again: small type at the edge is their
# trouble, and a larger picture read twice costs more (of 48 rendered memes 500 px wide, 18 have a
# line at the edge: PP-OCR's time +38% on average, no reading changed; pictures without text 2.4x)
SMALL = 480
MORE = 2  # letters a reading with the margin must say beyond the first to be kept (not a stray "I" at the seam)
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
    runs_elsewhere = True  # a process of its own: any thread may start it (MemeOcr.read_all)
    white_threshold: int = 230  # caption fill is pure white; JPEG keeps it above this
    upscale_below: int = 1600  # images smaller than this (longer side) are read at 2x
    min_confidence: float = 60  # for words of the plain reading
    plain_reading: bool = True  # beside PP-OCR it adds nothing (same recall, +0.4 CPU-s)

    def check(self) -> None:
        """Raise ModelUnavailable when the tesseract binary is missing."""
        if shutil.which("tesseract") is None:
            raise ModelUnavailable("tesseract is not installed (Debian: apt-get install tesseract-ocr)")

    def read(self, img: Image.Image) -> str:
        """The text in an RGB image, as one line of words separated by single spaces."""
        if max(img.size) < self.upscale_below:
            img = img.resize((img.width * 2, img.height * 2), Image.Resampling.LANCZOS)
        caption = self._tesseract(self._white_letters(img), "--psm 11")
        if not self.plain_reading:
            return " ".join(caption.split())
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


class PaddleOcr:
    """PP-OCRv4 detection and recognition (the models in the rapidocr-onnxruntime wheel), one
    onnxruntime thread per reader: the indexer runs one reader per core. Word breaks the model
    drops are restored (`restore_word_breaks`)."""

    engine = "rapidocr"

    def __init__(self, longest_side: int = 960):
        self.longest_side = longest_side  # detection input; the default scales the *shorter* side up to 736
        self._local = threading.local()

    def check(self) -> None:
        self._engine()

    def _engine(self):
        engine = getattr(self._local, "engine", None)
        if engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError:
                raise ModelUnavailable("PP-OCR needs the rapidocr-onnxruntime package "
                                       "(pip install rapidocr-onnxruntime)") from None
            engine = self._local.engine = RapidOCR(
                det_limit_side_len=self.longest_side, det_limit_type="max", use_cls=False,
                intra_op_num_threads=1, inter_op_num_threads=1)
        return engine

    def read(self, img: Image.Image) -> str:
        """The lines PP-OCR reads, in reading order. Where it finds none on a SMALL picture, or a
        line runs to its edge, it reads again with a margin of the edge's colour, and keeps that reading
        where it says more than MORE letters more: detection misses a line of small type that
        touches the edge (a caption on flat colour, or a crop that cut into it) and cuts its
        first letters off."""
        import numpy as np

        rgb = np.asarray(img.convert("RGB"))
        found = self._engine()(rgb)[0] or []
        if max(rgb.shape[:2]) <= SMALL and (not found or _at_edge(found, rgb.shape)):
            edge = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
            framed = np.full((rgb.shape[0] + 2 * MARGIN, rgb.shape[1] + 2 * MARGIN, 3), np.median(edge, axis=0),
                             dtype=np.uint8)
            framed[MARGIN:-MARGIN, MARGIN:-MARGIN] = rgb
            again = self._engine()(framed)[0] or []
            if _letters(again) > _letters(found) + MORE:
                found = again
        return restore_word_breaks([line[1] for line in reading_order(found)])


def _at_edge(found: Sequence, shape: tuple) -> bool:
    """Whether a line PP-OCR found comes within EDGE pixels of the picture's edge."""
    height, width = shape[:2]
    return any(min(x for x, _ in box) <= EDGE or min(y for _, y in box) <= EDGE or
               max(x for x, _ in box) >= width - 1 - EDGE or max(y for _, y in box) >= height - 1 - EDGE
               for box, _, _ in found)


def _letters(found: Sequence) -> int:
    return sum(len(word) for _, text, _ in found for word in _WORD.findall(text))


def reading_order(found: Sequence) -> list:
    """PP-OCR's lines (box, text, score), top to bottom, each line's boxes left to right. A box is
    on the line of the box before it (by their middles) where their middles are less than half the
    smaller box's height apart: rapidocr's own order holds any two boxes whose tops are within 10
    pixels as one line, so on a small picture (a half-size copy of a text post) a line starting a
    pixel further left was read before the one above it. (Boxes overlap their neighbours' lines
    there, so overlap cannot tell lines apart.)"""
    def span(box) -> tuple[float, float, float]:
        ys = [point[1] for point in box[0]]
        return (min(ys) + max(ys)) / 2, max(ys) - min(ys), min(point[0] for point in box[0])

    lines: list[list] = []
    for box in sorted(found, key=lambda b: span(b)[0]):
        middle, height, _ = span(box)
        if lines:
            above, above_height, _ = span(lines[-1][-1])
            if abs(middle - above) < min(height, above_height) / 2:
                lines[-1].append(box)
                continue
        lines.append([box])
    return [box for line in lines for box in sorted(line, key=lambda b: span(b)[2])]


def restore_word_breaks(lines: Sequence[str]) -> str:
    """The lines read, each token that is no English word followed by the words it splits into
    (wordninja), so both "THEDABISDEAD" and "the dab is dead" are found. A word a caption broke
    across two lines ("HALLOWEE" / "N IS BS") is looked for in the two ends joined; only a word
    across the break is one (where detection cut a line's start, "lovesa" / "oon" of "loves a" /
    "balloon", the join splits into "love sao on", and "love" is no word read there)."""
    from archive.readings import glued_words as split, known_words

    known = known_words()
    out: list[str] = []
    lines = [line.split() for line in lines if line.split()]
    for n, tokens in enumerate(lines):
        for token in tokens:
            out += [token, *split("".join(words(token)))]
        if n + 1 < len(lines):
            end, start = "".join(words(tokens[-1])), "".join(words(lines[n + 1][0]))
            if end and start and (end not in known or start not in known):
                pieces = set(split(end) or [end]) | set(split(start) or [start])
                joined = end + start
                found = split(joined) or ([joined] if joined in known else [])
                out += [w for w in _across(found, joined, len(end)) if w not in pieces]  # only what joining found
    return " ".join(out)


def _across(found: Sequence[str], joined: str, at: int) -> list[str]:
    """The words of `found` (a split of `joined`, in order) whose letters run across position `at`."""
    across, start = [], 0
    for word in found:
        start = joined.find(word, start)
        if start < 0:
            break
        if start < at < start + len(word):
            across.append(word)
        start += len(word)
    return across


ENGINES = ("rapidocr", "tesseract")


class MemeOcr:
    """The configured OCR engines, each reading kept as its own section (engine, text)."""

    def __init__(self, languages: str = "eng", engines: Sequence[str] = ENGINES):
        unknown = [e for e in engines if e not in ENGINES]
        if unknown or not engines:
            raise ConfigError(f"ocr_engines: choose from {', '.join(ENGINES)}; got {', '.join(engines) or 'none'}")
        self.readers = []
        for name in engines:
            if name == "rapidocr":
                self.readers.append(PaddleOcr())
            else:  # beside PP-OCR, tesseract's plain reading adds nothing
                self.readers.append(TesseractOcr(languages, plain_reading=len(engines) == 1))

    @property
    def engine(self) -> str:
        return self.readers[0].engine

    def check(self) -> None:
        for reader in self.readers:
            reader.check()

    def read_all(self, img: Image.Image, side_by_side: bool = False) -> list[tuple[str, str]]:
        """(engine, text) for every engine, in the configured order. `side_by_side`: tesseract (a
        process of its own) reads while PP-OCR does (one picture to read, as in a search by image;
        an index run keeps the cores busy with several pictures instead); PP-OCR reads in this
        thread, which keeps its loaded models."""
        if not side_by_side or len(self.readers) < 2:
            return [(reader.engine, reader.read(img)) for reader in self.readers]
        from concurrent.futures import ThreadPoolExecutor

        here = [r for r in self.readers if not getattr(r, "runs_elsewhere", False)]  # models kept per thread
        with ThreadPoolExecutor(len(self.readers)) as pool:
            elsewhere = {r.engine: pool.submit(r.read, img) for r in self.readers if r not in here}
            texts = {r.engine: r.read(img) for r in here}
            texts.update({engine: future.result() for engine, future in elsewhere.items()})
        return [(reader.engine, texts[reader.engine]) for reader in self.readers]

    def read(self, img: Image.Image, side_by_side: bool = False) -> str:
        """Every engine's reading in one text: the first whole, then the words the others add."""
        return merge_readings(*(text for _, text in self.read_all(img, side_by_side)))
