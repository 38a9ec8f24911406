import io

import pytest
from PIL import Image

from indexer.imageio import ImageLoadError, decode, load_image, model_input, perceptual_hash
from tests.conftest import SAMPLES


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_transparent_png_is_composited_on_white():
    loaded = load_image(SAMPLES / "deal-with-it.png")
    assert loaded.rgb.mode == "RGB"
    assert loaded.rgb.getpixel((5, 5)) == (255, 255, 255)  # fully transparent corner
    assert loaded.rgb.getpixel((100, 150)) == (10, 10, 10)


def test_animated_gif_gives_its_first_frame():
    loaded = load_image(SAMPLES / "loading.gif")
    assert loaded.format == "GIF" and loaded.rgb.mode == "RGB"
    r, g, b = loaded.rgb.getpixel((5, 150))
    assert b > r and b > g  # the first frame is blue


def test_palette_with_transparency_cmyk_and_16_bit():
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    assert decode(_bytes(palette, "PNG", transparency=0)).rgb.getpixel((0, 0)) == (255, 255, 255)
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))
    r, g, b = decode(_bytes(cmyk, "JPEG")).rgb.getpixel((4, 4))
    assert r > 200 and g < 60 and b < 60
    grey16 = Image.new("I;16", (8, 8), 40000)
    value = decode(_bytes(grey16, "PNG")).rgb.getpixel((4, 4))
    assert 150 < value[0] < 160  # 40000 / 256, not clipped to white


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    loaded = decode(_bytes(img, "JPEG", exif=exif.tobytes()))
    assert (loaded.width, loaded.height) == (20, 40)


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"this is a text file, not a jpeg", "not a readable image"),
])
def test_unreadable_bytes_give_a_reason(data, reason):
    with pytest.raises(ImageLoadError, match=reason):
        decode(data)


def test_truncated_jpeg_is_refused():
    data = (SAMPLES / "coffee-code.jpg").read_bytes()
    with pytest.raises(ImageLoadError, match="broken image"):
        decode(data[: len(data) // 3])


def test_pixel_cap_stops_a_decompression_bomb_before_decoding():
    bomb = _bytes(Image.new("L", (6000, 6000)), "PNG")
    with pytest.raises(ImageLoadError, match="over the cap"):
        decode(bomb, max_pixels=10_000_000)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageLoadError, match="No such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageLoadError, match="is a directory"):
        load_image(tmp_path)


def test_perceptual_hash_survives_a_repost_and_tells_memes_apart():
    original = load_image(SAMPLES / "one-does-not-simply.jpg").rgb
    repost = load_image(SAMPLES / "reposts" / "one-does-not-simply-small.jpg").rgb
    other = load_image(SAMPLES / "monday-flat.png").rgb
    distance = lambda a, b: bin(int(perceptual_hash(a), 16) ^ int(perceptual_hash(b), 16)).count("1")  # noqa: E731
    assert len(perceptual_hash(original)) == 16
    assert distance(original, repost) <= 6
    assert distance(original, other) > 16


def test_model_input_is_small_but_keeps_the_shape():
    big = Image.new("RGB", (4000, 2000))
    small = model_input(big)
    assert min(small.size) == 448 and small.size[0] == 896


def _ico() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 10)).save(out, "ICO")
    return out.getvalue()


EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n%%EndComments\n"
       b"newpath 0 0 moveto 64 64 lineto stroke\nshowpage\n%%EOF\n")


@pytest.mark.parametrize("name, data, kind", [
    ("eps.png", EPS, "PostScript"),
    ("ps.jpg", b"%!PS-Adobe-3.0\n/Helvetica findfont 12 scalefont setfont 72 72 moveto (hi) show showpage\n",
     "PostScript"),
    ("doc.png", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n", "PDF"),
    ("vector.png", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" '
                   b'height="10"/></svg>', "SVG"),
    ("icon.png", None, "ICO"),
])
def test_only_the_supported_formats_are_ever_decoded(name, data, kind, tmp_path, monkeypatch):
    """An EPS (or any format outside the list) named .png never reaches Pillow's decoder for it:
    Pillow's EPS plugin would hand the file to Ghostscript."""
    from PIL import EpsImagePlugin, IcoImagePlugin

    def reached(*args, **kwargs):
        raise AssertionError("a refused format's decoder was reached")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", reached)
    monkeypatch.setattr(IcoImagePlugin.IcoImageFile, "_open", reached)
    path = tmp_path / name
    path.write_bytes(data if data is not None else _ico())
    with pytest.raises(ImageLoadError) as refused:
        load_image(path)
    assert str(refused.value).startswith(f"{kind} is not an image format memes reads")
    assert "JPEG, PNG, GIF, WebP, BMP, TIFF and AVIF" in str(refused.value)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF"])
def test_every_supported_format_decodes(fmt):
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(out, fmt)
    loaded = decode(out.getvalue())
    assert loaded.format == fmt and loaded.rgb.size == (40, 30)


def test_the_perceptual_hash_is_imagehashs_bit_for_bit(samples):
    """Computed without scipy, the hash must stay the one every archive already stores."""
    import imagehash
    import numpy as np
    from PIL import Image, ImageDraw

    from indexer.imageio import perceptual_hash
    from tests.conftest import flat_colour_memes

    rnd = np.random.default_rng(4)
    pictures = [Image.open(p).convert("RGB") for p in sorted(samples.rglob("*")) if p.suffix in (".jpg", ".png")]
    flat_colour_memes(samples / "flat", 12)
    pictures += [Image.open(p).convert("RGB") for p in sorted((samples / "flat").iterdir())]
    for n in range(60):
        size = (int(rnd.integers(8, 400)), int(rnd.integers(8, 400)))
        picture = Image.new("RGB", size, tuple(int(v) for v in rnd.integers(0, 256, 3)))  # flat: a DCT of zeros
        if n % 2:
            picture = Image.fromarray(rnd.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        if n % 3 == 0:
            ImageDraw.Draw(picture).text((2, 2), f"CAPTION {n}", fill=(255, 255, 255))
        pictures.append(picture)
    pictures += [p.crop((3, 3, p.width - 5, p.height - 4)) for p in pictures[:12]]
    assert len(pictures) > 80
    assert [perceptual_hash(p) for p in pictures] == [str(imagehash.phash(p)) for p in pictures]
