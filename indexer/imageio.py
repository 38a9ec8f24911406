"""Safe image loading: whatever a meme folder holds becomes an RGB image or a one-line reason.

EXIF orientation is applied; palette, alpha, CMYK and 16-bit images become 8-bit RGB (alpha
composited on white, as a viewer shows it); animations give their first frame; a pixel cap
stops decompression bombs before any pixel is decoded.
"""
from __future__ import annotations

from functools import lru_cache

import hashlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from PIL import (AvifImagePlugin, BmpImagePlugin, GifImagePlugin, JpegImagePlugin, PngImagePlugin,  # noqa: F401
                 TiffImagePlugin, WebPImagePlugin)  # the decoders of FORMATS, registered

from archive.disk import why_unreadable
from archive.model import Meme

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jfif", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".avif"}
# The only decoders ever run, whatever a file is called: Pillow's others (EPS and PostScript,
# which hand the file to Ghostscript; ICO, PSD, PCX and the rest) are never reached. JPEG's
# opener also gives the MPO files phones write.
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF")
FORMAT_NAMES = "JPEG, PNG, GIF, WebP, BMP, TIFF and AVIF"
_REFUSED = ((b"%!PS", "PostScript"), (b"\xc5\xd0\xd3\xc6", "EPS"), (b"%PDF", "PDF"), (b"<svg", "SVG"),
            (b"<?xml", "XML or SVG"), (b"\x00\x00\x01\x00", "ICO"), (b"\x00\x00\x02\x00", "CUR"),
            (b"8BPS", "Photoshop"), (b"\x0a\x05\x01", "PCX"))
DEFAULT_MAX_PIXELS = 64_000_000


class ImageLoadError(Exception):
    """An image file could not be turned into pixels; the message is the reason."""


@dataclass
class LoadedImage:
    """An image ready for the models, with the facts the archive keeps about its file."""

    rgb: Image.Image
    width: int
    height: int
    format: str | None
    content_hash: str


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grey: scale to 8 bits instead of clipping everything to white.
        img = img.point(lambda v: v / 256).convert("L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa"):
        img = img.convert("RGBA")
        canvas = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, img).convert("RGB")
    return img.convert("RGB")


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode image bytes safely. Raises ImageLoadError with a short reason."""
    if not data:
        raise ImageLoadError("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = img.size
            if width * height > max_pixels:
                raise ImageLoadError(f"{width}x{height} pixels is over the cap of {max_pixels:,}")
            fmt = img.format
            img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img) or img
            rgb = _to_rgb(img)
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(_unreadable(data)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageLoadError("image is too large (decompression bomb)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageLoadError(f"broken image ({str(exc)[:80] or type(exc).__name__})") from None
    return LoadedImage(rgb=rgb, width=rgb.width, height=rgb.height, format=fmt,
                       content_hash=content_hash(data))


def _unreadable(data: bytes) -> str:
    head = data[:64].lstrip()
    refused = next((name for magic, name in _REFUSED if data.startswith(magic) or head.startswith(magic)), None)
    if refused:
        return f"{refused} is not an image format memes reads (it reads {FORMAT_NAMES})"
    return "not a readable image"


def load_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read and decode a file. Raises ImageLoadError with a short reason."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageLoadError(why_unreadable(exc)) from None
    return decode(data, max_pixels)


def perceptual_hash(img: Image.Image) -> str:
    """64-bit DCT perceptual hash as 16 hex digits, the archive's record-file naming:
    `imagehash.phash`, bit for bit, without its scipy (a second to import, for one search by
    image). The grey 32 x 32 picture's DCT-II (scipy's, unnormalised) is taken for the 8 x 8 lowest
    frequencies only, as two small matrix products; the bits say which are over their median.
    What is zero in exact arithmetic is made zero, as scipy's FFT leaves it."""
    import numpy as np

    grey = np.asarray(img.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    basis = _dct_basis()
    low = basis @ grey @ basis.T
    low[np.abs(low) < 1e-6] = 0.0
    bits = "".join("1" if b else "0" for b in (low > np.median(low)).flatten())
    return f"{int(bits, 2):016x}"


@lru_cache(maxsize=1)
def _dct_basis():
    """The first 8 rows of the unnormalised 32-point DCT-II: 2 cos(pi k (2n + 1) / 64)."""
    import numpy as np

    return 2 * np.cos(np.pi * np.arange(8)[:, None] * (2 * np.arange(32) + 1) / 64)


def without_frame(img: Image.Image, tolerance: int = 30, min_content: float = 0.5) -> Image.Image | None:
    """The picture inside a frame of one colour (a border a reposter added, maybe with a
    watermark line in it), or None when there is no such frame. Rows and columns count as
    content when over `min_content` of their pixels differ from the corners' colour."""
    import numpy as np

    grey = np.asarray(img.convert("L"), dtype=np.int16)
    h, w = grey.shape
    corners = np.array([grey[0, 0], grey[0, -1], grey[-1, 0], grey[-1, -1]])
    if corners.max() - corners.min() > tolerance:
        return None
    differs = np.abs(grey - int(np.median(corners))) > tolerance
    rows = np.nonzero(differs.mean(axis=1) > min_content)[0]
    cols = np.nonzero(differs.mean(axis=0) > min_content)[0]
    if len(rows) == 0 or len(cols) == 0:
        return None
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if bottom - top < h * 0.5 or right - left < w * 0.5:
        return None
    if top < h * 0.01 and h - bottom < h * 0.01 and left < w * 0.01 and w - right < w * 0.01:
        return None
    return img.crop((int(left), int(top), int(right), int(bottom)))


def picture_hashes(img: Image.Image) -> list[str]:
    """Perceptual hashes to look a picture up by: the whole, and the whole without a frame."""
    hashes = [perceptual_hash(img)]
    inner = without_frame(img)
    if inner is not None:
        hashes.append(perceptual_hash(inner))
    return hashes


def model_input(img: Image.Image, side: int = 448) -> Image.Image:
    """A copy small enough to move around cheaply, large enough for any CLIP preprocessing."""
    small = img.copy()
    small.thumbnail((side * 4, side * 4))
    if min(small.size) > side:
        scale = side / min(small.size)
        small = small.resize((max(1, round(small.width * scale)), max(1, round(small.height * scale))),
                             Image.Resampling.BICUBIC)
    return small


def file_of(meme: Meme) -> tuple[str, bytes] | None:
    """The first of a meme's files that still holds its image's bytes, and those bytes; None
    when none does, or the meme has no image (an imported record)."""
    if meme.content_hash is None:
        return None
    for sighting in meme.sightings:
        try:
            data = Path(sighting.path).read_bytes()
        except OSError:
            continue
        if content_hash(data) == meme.content_hash:
            return sighting.path, data
    return None


def image_of(meme: Meme, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image | None:
    """A meme's image, from the first of its files that still holds its bytes; or None."""
    found = file_of(meme)
    if found is None:
        return None
    try:
        return decode(found[1], max_pixels).rgb
    except ImageLoadError:
        return None


def keep_upload(data: bytes, name: str, folder: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Path, str]:
    """Keep an image given as bytes (an upload named `name`) in `folder`, named by its content
    hash; returns the file and that hash. Raises ImageLoadError for bytes that are no image."""
    loaded = decode(data, max_pixels)
    suffix = Path(name).suffix.lower()
    suffix = suffix if suffix in IMAGE_SUFFIXES else f".{(loaded.format or 'png').lower()}"
    target = folder / f"{loaded.content_hash[:16]}{suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)
    return target, loaded.content_hash


THUMBNAIL_SIDE = 320


def thumbnail_file(meme: Meme, folder: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Path | None:
    """A small WebP of the meme in `folder`, made once; None where the meme has no image. Where
    the folder cannot be written (a read-only archive, a full disk) it goes to the temporary folder."""
    if meme.content_hash is None:
        return None
    target = folder / meme.content_hash[:2] / f"{meme.content_hash}.webp"
    if target.exists():
        return target
    image = image_of(meme, max_pixels)
    if image is None:
        return None
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    try:
        return _saved_webp(image, target)
    except OSError:
        return _saved_webp(image, Path(tempfile.gettempdir()) / "memes-thumbnails" / target.name)


def _saved_webp(image: Image.Image, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.part")
    image.save(partial, "WEBP", quality=80)
    partial.replace(target)
    return target
