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


def _without_root_reading():
    """For a child process: root reads every file whatever its mode, unless it gives up the
    capabilities that allow that (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), as here."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.slow
def test_an_unreadable_file_is_skipped_with_one_line(archive_dir, tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "some"
    folder.mkdir()
    (folder / "fine.jpg").write_bytes((SAMPLES / "coffee-code.jpg").read_bytes())
    locked = folder / "locked.png"
    locked.write_bytes((SAMPLES / "monday-flat.png").read_bytes())
    locked.chmod(0)
    exe = os.path.join(os.path.dirname(sys.executable), "memes")
    result = subprocess.run([exe, "--quiet", "index", str(folder), "--json"], capture_output=True, text=True,
                            env=dict(os.environ), preexec_fn=_without_root_reading if os.geteuid() == 0 else None,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"skipping {locked}: ")]
    assert len(lines) == 1 and "ermission denied" in lines[0], result.stderr
    summary = json.loads(result.stdout)
    assert [os.path.basename(s["path"]) for s in summary["skipped_files"]] == ["locked.png"]
    assert summary["new_memes"] == 1
