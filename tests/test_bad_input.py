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


# --- what a user types wrong: one clear line each --------------------------------------------

def test_an_archive_path_that_is_a_file_is_named(tmp_path, monkeypatch, cli, samples):
    not_a_folder = tmp_path / "archive.txt"
    not_a_folder.write_text("notes")
    monkeypatch.setenv("MEMES_ARCHIVE", str(not_a_folder))
    for args in (("index", samples / "monday-flat.png"), ("search", "monday"), ("stats",)):
        result = cli(*args)
        assert result.exit_code == 1, args
        assert result.stderr.strip() == (f"Error: the archive path {not_a_folder} is a file, not a folder: name a "
                                         "folder with --archive or MEMES_ARCHIVE"), args
    assert not_a_folder.read_text() == "notes"


def test_similar_says_what_is_wrong_with_the_path(indexed, cli, tmp_path):
    _, samples = indexed
    for ref, said in ((samples, "a folder, not an image file"), (tmp_path / "gone.jpg", "no such file or meme"),
                      ("/dev/null", "not a regular file")):
        result = cli("similar", ref)
        assert result.exit_code == 1 and result.stderr.strip() == f"Error: {ref}: {said}", result.stderr
    moved = samples / "coffee-code.jpg"  # an indexed file that is gone is still the meme it was
    moved.rename(tmp_path / "elsewhere.jpg")
    assert cli("similar", moved, "-k", "1").exit_code == 0


def test_import_takes_folders_and_globs_and_says_each_failure_once(archive_dir, cli, tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    for n, caption in enumerate(["WHEN THE CODE COMPILES", "WHEN THE TESTS PASS", "WHEN THE BUILD IS GREEN"]):
        (records / f"00{n}_{n:016x}.txt").write_text(f"First Seen\n2021-03-0{n + 1}T00:00:00+00:00\n"
                                                    f"tesseract-ocr\n{caption}\n")
    folder = cli("import", records)
    assert folder.exit_code == 0 and "imported 3 records, 0 skipped" in folder.stderr, folder.output
    exported = tmp_path / "exported"
    assert cli("export", exported).exit_code == 0
    fresh = tmp_path / "fresh"
    by_glob = cli("--archive", fresh, "import", str(exported / "*.txt"))
    assert by_glob.exit_code == 0 and "imported 3 records" in by_glob.stderr, by_glob.output
    assert cli("--archive", fresh, "export", tmp_path / "again").exit_code == 0
    assert sorted(p.read_text() for p in (tmp_path / "again").iterdir()) == \
        sorted(p.read_text() for p in exported.iterdir())

    only_date = tmp_path / "only-date.txt"
    only_date.write_text("First Seen\n2021-03-04T05:06:07+00:00\n")
    partly = cli("import", only_date, records / "000_0000000000000000.txt", tmp_path / "nothing-*.txt")
    assert partly.exit_code == 1  # a record failed: not a success
    lines = partly.stderr.strip().splitlines()
    assert f"skipping {only_date}: no annotation or OCR text, and no image: nothing to keep" in lines
    assert f"skipping {tmp_path / 'nothing-*.txt'}: no such file, folder or matching records" in lines
    assert all(line.count(str(only_date)) <= 1 for line in lines)
    assert json_stats(cli)["memes"] == 3  # no empty meme


def json_stats(cli) -> dict:
    return json.loads(cli("stats", "--json").stdout)


def test_an_annotation_source_may_hold_any_characters(archive_dir, cli, tmp_path):
    record = tmp_path / "001_00000000000000aa.txt"
    record.write_text("First Seen\n2021-03-04T05:06:07+00:00\nsimple-description (<img/src=x>(v2))\n"
                      "A cat that explains embeddings.\ntesseract-ocr\nME EXPLAINING EMBEDDINGS")
    assert cli("import", record).exit_code == 0
    shown = cli("show", "00000000000000aa")
    assert shown.stdout == record.read_text() + "\n"
    meme = json.loads(cli("show", "00000000000000aa", "--json").stdout)
    assert [a["source"] for a in meme["annotations"]] == ["<img/src=x>(v2)"]


def test_show_ends_with_a_newline_after_the_sightings(indexed, cli):
    _, samples = indexed
    shown = cli("show", samples / "monday-flat.png").stdout
    assert "\nSightings\n" in shown and shown.endswith(".png\n") and not shown.endswith("\n\n")
