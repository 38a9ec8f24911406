"""A corpus of bad and awkward files indexed together with good ones: every bad one is skipped
with one `skipping PATH: reason` line, every good one is indexed, and no traceback shows."""
import io
import json
import os

import pytest
from PIL import Image

from tests.conftest import SAMPLES


def _save(img: Image.Image, path, fmt, **kw):
    img.save(path, fmt, **kw)
    return path


@pytest.fixture
def corpus(tmp_path):
    """(folder, names that must be indexed, names that must be skipped)."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    good, bad = set(), set()
    photo = Image.open(SAMPLES / "coffee-code.jpg").convert("RGB")

    def add_good(name, writer):
        writer(folder / name)
        good.add(name)

    def add_bad(name, data: bytes):
        (folder / name).write_bytes(data)
        bad.add(name)

    add_bad("zero.jpg", b"")
    jpeg = (SAMPLES / "coffee-code.jpg").read_bytes()
    add_bad("truncated.jpg", jpeg[: len(jpeg) // 4])
    png = (SAMPLES / "monday-flat.png").read_bytes()
    add_bad("truncated.png", png[: len(png) // 3])
    add_bad("text.jpg", b"hello, I am a text file with an image's name\n")
    bomb = io.BytesIO()
    Image.new("1", (30000, 30000)).save(bomb, "PNG")  # 900 MP declared, a few KB on disk
    add_bad("bomb.png", bomb.getvalue())
    add_good("animated.gif", lambda p: (SAMPLES / "loading.gif").pipe if False else p.write_bytes((SAMPLES / "loading.gif").read_bytes()))
    add_good("cmyk.jpg", lambda p: _save(photo.convert("CMYK"), p, "JPEG"))
    add_good("sixteen-bit.png", lambda p: _save(Image.new("I;16", (300, 200), 30000), p, "PNG"))
    palette = photo.convert("P", palette=Image.Palette.ADAPTIVE)
    add_good("palette-transparent.png", lambda p: _save(palette, p, "PNG", transparency=0))
    exif = Image.Exif()
    exif[0x0112] = 6
    add_good("rotated.jpg", lambda p: _save(photo.rotate(90, expand=True), p, "JPEG", exif=exif.tobytes()))
    add_good("picture.webp", lambda p: _save(photo.resize((320, 260)), p, "WEBP"))
    add_good("wrong-extension.png", lambda p: _save(photo.resize((300, 240)), p, "JPEG"))
    add_good("large.png", lambda p: _save(Image.new("RGB", (6000, 4000), (20, 90, 160)), p, "PNG"))
    add_good(os.fsdecode(b"caf\xe9-latin1.jpg"), lambda p: _save(photo.resize((200, 160)), p, "JPEG"))
    os.mkfifo(folder / "pipe.jpg")  # reading it would block forever
    bad.add("pipe.jpg")
    (folder / "loop").mkdir()
    os.symlink(folder, folder / "loop" / "back-to-top")
    return folder, good, bad


def test_bad_files_are_skipped_and_good_ones_indexed(archive_dir, corpus, cli):
    folder, good, bad = corpus
    result = cli("index", folder, "--json")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    summary = json.loads(result.stdout)
    skipped = {os.path.basename(s["path"]) for s in summary["skipped_files"]}
    assert bad <= skipped
    assert summary["new_memes"] + summary["new_sightings"] == len(good)
    for name in bad:
        lines = [l for l in result.stderr.splitlines() if l.startswith(f"skipping {folder / name}: ")]
        assert len(lines) == 1, (name, result.stderr)
    assert "symbolic link loop" in result.stderr


def test_strict_makes_a_skipped_file_an_error(archive_dir, corpus, cli):
    folder, _, _ = corpus
    result = cli("index", folder / "zero.jpg", "--strict")
    assert result.exit_code == 1 and "skipping" in result.stderr
