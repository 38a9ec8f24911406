"""End to end: the installed `memes` command in a subprocess, as a user runs it."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SAMPLES

pytestmark = pytest.mark.slow


def _memes(env, *args, timeout=600):
    exe = Path(sys.executable).with_name("memes")
    return subprocess.run([str(exe), *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def env(archive_dir):
    return dict(os.environ)


def test_index_then_search_with_the_installed_command(env):
    indexed = _memes(env, "--quiet", "index", SAMPLES)
    assert indexed.returncode == 0, indexed.stderr
    assert "10 new memes" in indexed.stderr and indexed.stdout == ""
    found = _memes(env, "search", "llama mistral chart", "--json", "-k", "3")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["results"][0]["path"].endswith("llama-mistral-chart.png")


def test_python_dash_m_works_too(env):
    result = subprocess.run([sys.executable, "-m", "memes", "--help"], env=env, capture_output=True, text=True)
    assert result.returncode == 0 and "index" in result.stdout


def _index_in_background(env, folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
    """`memes index FOLDER` in small batches, as a subprocess; returns it and the catalog path."""
    env = {**env, "MEMES_BATCH_SIZE": "2", "MEMES_WORKERS": "1"}
    exe = Path(sys.executable).with_name("memes")
    proc = subprocess.Popen([str(exe), "--quiet", "index", folder], env=env, stdout=stdout, stderr=stderr, text=True)
    return proc, Path(env["MEMES_ARCHIVE"]) / "catalog.sqlite3"


def _wait_for_memes(proc, catalog: Path, count: int, poll: float = 0.1) -> None:
    """Until the catalog holds `count` memes, or the run ends (5 minutes at most)."""
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and _count(catalog) < count:
        time.sleep(poll)


def _distinct_memes(folder: Path, count: int) -> None:
    """`count` images with distinct bytes and pictures: a sample with a coloured bar of its own."""
    from PIL import Image, ImageDraw

    folder.mkdir()
    base = Image.open(SAMPLES / "coffee-code.jpg").convert("RGB")
    for n in range(count):
        img = base.copy()
        ImageDraw.Draw(img).rectangle([0, 0, 40 + n * 20, 30], fill=(n * 10, 255 - n * 10, 90))
        img.save(folder / f"meme-{n:02d}.jpg", quality=85)


def test_ctrl_c_keeps_every_finished_batch(env, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    images = [f for f in SAMPLES.iterdir() if f.is_file()]
    for n in range(3):  # each distinct image thrice, under other names
        for f in images:
            shutil.copy(f, folder / f"{n}-{f.name}")
    proc, archive = _index_in_background(env, folder, subprocess.PIPE, subprocess.PIPE)
    _wait_for_memes(proc, archive, 2, poll=0.5)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert "Traceback" not in stderr
    if proc.returncode != 0:
        assert proc.returncode == 130 and "interrupted" in stderr
    kept = _count(archive)
    assert kept >= 2
    rerun = _memes(env, "--quiet", "index", folder, "--json")
    summary = json.loads(rerun.stdout)
    assert summary["memes_in_archive"] == len(images)
    stats = json.loads(_memes(env, "stats", "--json").stdout)
    assert stats["sightings"] == 3 * len(images)
    assert stats["pending_vectors"] == {"ocr_text": 0, "annotation_text": 0, "image": 0}
    assert stats["vectors"]["image"]["vectors"] == len(images)


def _count(catalog: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True) as db:
            return db.execute("SELECT count(*) FROM memes").fetchone()[0]
    except sqlite3.Error:
        return 0


def _killed_then_rerun(env, folder: Path, after: int) -> tuple[int, dict]:
    """`memes index` of the folder SIGKILLed once `after` memes are committed, then run again:
    (memes the killed run kept, the second run's JSON summary)."""
    proc, catalog = _index_in_background(env, folder)
    _wait_for_memes(proc, catalog, after)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    kept = _count(catalog)
    assert kept >= after
    rerun = _memes(env, "--quiet", "index", folder, "--json")
    assert rerun.returncode == 0, rerun.stderr
    return kept, json.loads(rerun.stdout)


def test_sigkill_at_any_moment_then_rerun_loses_and_doubles_nothing(env, tmp_path):
    folder = tmp_path / "distinct"
    _distinct_memes(folder, 16)
    kept, summary = _killed_then_rerun(env, folder, after=4)
    assert summary["memes_in_archive"] == 16
    assert summary["new_memes"] == 16 - kept and summary["unchanged"] >= kept  # no finished OCR redone
    stats = json.loads(_memes(env, "stats", "--json").stdout)
    assert stats["sightings"] == 16
    assert {s: v["vectors"] for s, v in stats["vectors"].items()}["image"] == 16
    doctor = _memes(env, "doctor", "--check", "--json")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_a_search_during_an_index_run_answers_from_what_is_committed(env, tmp_path):
    first = _memes(env, "--quiet", "index", SAMPLES)
    assert first.returncode == 0, first.stderr
    folder = tmp_path / "more"
    _distinct_memes(folder, 60)  # long enough to outlast two CLI start-ups on a busy machine
    proc, catalog = _index_in_background(env, folder, stderr=subprocess.PIPE)
    _wait_for_memes(proc, catalog, 12)
    assert proc.poll() is None, "the index run ended before the search could start"
    found = _memes(env, "search", "llama mistral chart", "--json", "-k", "3")
    similar = _memes(env, "similar", SAMPLES / "one-does-not-simply.jpg", "--json", "-k", "3")
    assert proc.poll() is None, "the index run ended while searching; make the folder bigger"
    assert found.returncode == 0 and similar.returncode == 0, found.stderr + similar.stderr
    assert f"pid {proc.pid}" in found.stderr and "searching what it has committed so far" in found.stderr
    top = json.loads(found.stdout)["results"][0]
    assert top["path"].endswith("llama-mistral-chart.png") and "image" in top["signals"]
    assert json.loads(similar.stdout)["results"][0]["path"].endswith("one-does-not-simply-small.jpg")
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    doctor = _memes(env, "doctor", "--check", "--json")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    after = _memes(env, "search", "llama mistral chart", "--json", "-k", "3")
    assert "committed so far" not in after.stderr
    assert json.loads(after.stdout)["results"][0]["path"].endswith("llama-mistral-chart.png")


def test_sigkill_while_indexing_look_alike_memes_then_rerun_keeps_each_apart(env, tmp_path):
    """The flat-colour memes a word apart, killed mid-run and indexed again: one meme each."""
    from tests.conftest import flat_colour_memes

    folder = tmp_path / "flat"
    flat_colour_memes(folder, 12)
    _, summary = _killed_then_rerun(env, folder, after=3)
    assert summary["memes_in_archive"] == 12 and summary["joined_copies"] == 0, summary
    stats = json.loads(_memes(env, "stats", "--json").stdout)
    assert stats["sightings"] == 12

