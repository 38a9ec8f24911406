"""Fault injection on real archives: damage is named, searches go on, and the suggested repair
brings every meme back. Each test starts from a copy of one archive of the sample memes indexed
by the installed command; every command runs as a user runs it, in a process of its own (a
damaged vector index may crash the process that opens it)."""
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, flat_colour_memes
from tests.test_e2e import _count, _memes

pytestmark = pytest.mark.slow

QUERIES = {  # a query for each sample meme, and the file it finds first
    "llama mistral chart": "llama-mistral-chart.png",
    "deploying on friday": "deploy-friday.jpg",
    "one does not simply index": "one-does-not-simply",
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, tiny_clip_dir):
    """The sample memes indexed once; tests copy it."""
    directory = tmp_path_factory.mktemp("pristine") / "archive"
    env = _env(directory, tiny_clip_dir)
    done = _memes(env, "--quiet", "index", SAMPLES)
    assert done.returncode == 0, done.stderr
    export = tmp_path_factory.mktemp("export")
    assert _memes(env, "export", export).returncode == 0
    return directory, export


def _env(directory: Path, tiny_clip_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMES_")}
    env.update(MEMES_ARCHIVE=str(directory), MEMES_CLIP_MODEL=f"local-dir:{tiny_clip_dir}", MEMES_ANNOTATE="0",
               MEMES_GROUP_REPOSTS="0", MEMES_FAST_QUERIES="0",
               MEMES_EXACT_SCAN_LIMIT="0")  # the damage these tests make is to Chroma: searches open it
    return env


@pytest.fixture
def archive(pristine, archive_dir, tiny_clip_dir):
    """(archive directory, env) of a fresh copy of the pristine archive."""
    shutil.copytree(pristine[0], archive_dir)
    return archive_dir, _env(archive_dir, tiny_clip_dir)


def _finds_everything(env, expect_notice: str | None = None) -> None:
    for query, file in QUERIES.items():
        found = _memes(env, "search", query, "--json", "-k", "3")
        assert found.returncode == 0 and "Traceback" not in found.stderr, found.stderr
        assert Path(json.loads(found.stdout)["results"][0]["path"]).name.startswith(file), (query, found.stdout)
        if expect_notice is None:
            assert "warning" not in found.stderr, found.stderr
        else:
            assert expect_notice in found.stderr


def _same_export(env, pristine_export: Path, tmp_path: Path) -> None:
    again = tmp_path / "export-again"
    assert _memes(env, "export", again).returncode == 0
    names = sorted(p.name for p in pristine_export.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (pristine_export / name).read_text() == (again / name).read_text(), name


def _doctor_check(env) -> tuple[int, dict]:
    done = _memes(env, "doctor", "--check", "--json")
    return done.returncode, json.loads(done.stdout)


def test_a_writing_command_leaves_the_catalog_file_whole(archive, tmp_path, pristine):
    directory, env = archive
    wal = directory / "catalog.sqlite3-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    # what the README says to copy, copied as files: an archive with every meme
    copy = tmp_path / "copied"
    copy.mkdir()
    shutil.copy2(directory / "catalog.sqlite3", copy / "catalog.sqlite3")
    shutil.copytree(directory / "vectors", copy / "vectors")
    env = {**env, "MEMES_ARCHIVE": str(copy)}
    assert _doctor_check(env)[0] == 0
    _finds_everything(env)
    _same_export(env, pristine[1], tmp_path)


def test_backup_taken_during_an_index_run_restores_whole(archive, tmp_path):
    directory, env = archive
    folder = tmp_path / "flat"
    flat_colour_memes(folder, 24)
    before = json.loads(_memes(env, "stats", "--json").stdout)["memes"]
    slow = {**env, "MEMES_BATCH_SIZE": "2", "MEMES_WORKERS": "1"}
    exe = Path(sys.executable).with_name("memes")
    proc = subprocess.Popen([str(exe), "--quiet", "index", folder], env=slow, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and _count(directory / 'catalog.sqlite3') < before + 4:
        time.sleep(0.2)
    backup = _memes(env, "backup", tmp_path / "backup")
    assert proc.poll() is None, "the index run ended before the backup; make the folder bigger"
    assert backup.returncode == 0, backup.stderr
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    saved = json.loads((tmp_path / "backup" / "backup.json").read_text())["memes"]
    assert saved >= before + 4
    fresh = {**env, "MEMES_ARCHIVE": str(tmp_path / "restored")}
    restored = _memes(fresh, "restore", tmp_path / "backup")
    assert restored.returncode == 0, restored.stderr + restored.stdout
    assert f"restored {saved} memes" in restored.stderr
    assert _doctor_check(fresh)[0] == 0
    _finds_everything(fresh)
    flat = _flat_records(fresh, tmp_path)
    assert len(flat) == saved - before
    for file, words in flat.items():  # each flat meme committed before the backup is found by its words
        if not words.strip():
            continue
        found = json.loads(_memes(fresh, "search", words, "--json", "-k", "1").stdout)
        assert Path(found["results"][0]["path"]).name == file, (words, found)


def _flat_records(env, tmp_path) -> dict[str, str]:
    """File name -> the words OCR read on it (empty where it read none), for each flat meme."""
    from archive.recordfile import parse_record

    target = tmp_path / "flat-export"
    assert _memes(env, "export", target).returncode == 0
    found = {}
    for record in target.iterdir():
        meme = parse_record(record.read_text())
        if "/good" in meme.sightings[0].path:
            found[Path(meme.sightings[0].path).name] = max((o.text for o in meme.ocr_texts), key=len, default="")
    return found


def _thousand_more_vectors(directory: Path, count: int = 1200) -> str:
    """Fill the ocr_text collection past 1,000 vectors (records without images, marked as
    embedded, their vectors kept in the catalog as indexing keeps them); returns its folder."""
    import numpy as np

    from archive.catalog import Catalog
    from archive.model import Meme, OcrText
    from archive.vectors import VectorStore

    catalog = Catalog(directory / "catalog.sqlite3")
    store = VectorStore(directory / "vectors", catalog)
    space = store.space("ocr_text")
    ids = [f"filler{n:05d}" for n in range(count)]
    with catalog.transaction():
        for n, meme_id in enumerate(ids):
            catalog.save(Meme(id=meme_id, sections=[OcrText("tesseract", f"filler record {n}")]))
    vectors = np.random.default_rng(0).standard_normal((count, space.dim)).astype(np.float32)
    space.upsert(ids, vectors, [{"meme_id": i} for i in ids])
    catalog.marks.mark(ids, "ocr_text", space.model)
    catalog.marks.mark(ids, "annotation_text", space.model)
    segment = store.client.get_collection("ocr_text").id
    store.close()
    catalog.checkpoint()
    catalog.close()
    return str(segment)


def test_random_bytes_in_a_large_hnsw_index_are_found_before_they_crash(archive, tmp_path):
    directory, env = archive
    _thousand_more_vectors(directory)
    assert _doctor_check(env)[0] == 0
    level0 = max((directory / "vectors").glob("*/data_level0.bin"), key=lambda p: p.stat().st_size)
    data = bytearray(level0.read_bytes())
    start = len(data) // 3
    data[start:start + 65536] = random.Random(3).randbytes(65536)
    level0.write_bytes(bytes(data))
    for command in (["stats"], ["search", "friday"]):
        done = _memes(env, *command)
        assert done.returncode == 0, (command, done.returncode, done.stderr)
    _finds_everything(env, expect_notice="is damaged")
    code, report = _doctor_check(env)
    assert code == 1 and report["index"]["damage"]
    repaired = _memes(env, "doctor")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "moved aside" in repaired.stdout
    assert _doctor_check(env)[0] == 0
    _finds_everything(env)
    found = json.loads(_memes(env, "stats", "--json").stdout)
    assert found["vectors"]["ocr_text"]["vectors"] >= 1200


def test_a_deleted_vector_folder_is_searched_from_the_catalog_then_rebuilt_without_a_model(archive, tmp_path):
    directory, env = archive
    shutil.rmtree(directory / "vectors")
    _finds_everything(env, expect_notice="`memes doctor` puts them back")
    code, report = _doctor_check(env)
    assert code == 1 and report["spaces"]["image"]["missing"] == 10
    blocked = tmp_path / "no-models"  # neither model library can be imported: no model can run
    blocked.mkdir()
    for name in ("open_clip", "sentence_transformers", "torch"):
        (blocked / f"{name}.py").write_text(f"raise ImportError('{name} is blocked in this test')\n")
    no_model = {**env, "PYTHONPATH": str(blocked)}
    repaired = _memes(no_model, "doctor", "--json")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert json.loads(repaired.stdout)["spaces"]["image"]["repaired"]["restored"] == 10
    assert _doctor_check(env)[0] == 0
    _finds_everything(env)


def test_a_truncated_vector_catalog_is_moved_aside_and_rebuilt(archive):
    directory, env = archive
    chroma = directory / "vectors" / "chroma.sqlite3"
    with open(chroma, "r+b") as f:
        f.truncate(chroma.stat().st_size // 3)
    _finds_everything(env, expect_notice="`memes doctor` rebuilds it")
    assert _memes(env, "doctor").returncode == 0
    assert list(directory.glob("vectors.damaged-*"))
    assert _doctor_check(env)[0] == 0
    _finds_everything(env)


@pytest.mark.parametrize("damage", ["truncated", "random bytes"])
def test_a_damaged_catalog_is_named_and_rebuilt_from_records_with_nothing_lost(archive, tmp_path, pristine, damage):
    directory, env = archive
    catalog = directory / "catalog.sqlite3"
    if damage == "truncated":
        with open(catalog, "r+b") as f:
            f.truncate(catalog.stat().st_size // 2)
    else:
        with open(catalog, "r+b") as f:
            f.seek(8192)
            f.write(random.Random(5).randbytes(16384))
    for command in (["search", "friday"], ["stats"], ["doctor", "--check"], ["index", SAMPLES]):
        done = _memes(env, *command)
        assert done.returncode == 1 and "Traceback" not in done.stderr, (command, done.stderr)
        assert str(catalog) in done.stderr and "memes rebuild" in done.stderr and "memes restore" in done.stderr
    rebuilt = _memes(env, "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr + rebuilt.stdout
    assert "from 10 record files" in rebuilt.stderr
    assert _doctor_check(env)[0] == 0
    _finds_everything(env)
    _same_export(env, pristine[1], tmp_path)


def test_restore_puts_back_a_backup_over_a_damaged_catalog(archive, tmp_path, pristine):
    directory, env = archive
    assert _memes(env, "backup", tmp_path / "b").returncode == 0
    (directory / "catalog.sqlite3").write_bytes(b"\0" * 4096)
    assert _memes(env, "search", "friday").returncode == 1
    restored = _memes(env, "restore", tmp_path / "b")
    assert restored.returncode == 0, restored.stderr + restored.stdout
    assert _doctor_check(env)[0] == 0
    _finds_everything(env)
    _same_export(env, pristine[1], tmp_path)


def test_doctor_check_fails_while_vectors_are_pending(archive):
    directory, env = archive
    import sqlite3

    with sqlite3.connect(directory / "catalog.sqlite3") as db:  # as a run killed before embedding leaves it
        db.execute("DELETE FROM vectors WHERE meme_id = (SELECT min(id) FROM memes) AND space = 'image'")
    code, report = _doctor_check(env)
    assert code == 1 and report["pending"]["image"] == 1
    assert _memes(env, "doctor").returncode == 0
    assert _doctor_check(env)[0] == 0


def test_reindex_leaves_no_collection_files_behind(archive):
    directory, env = archive
    before = sorted(p.name for p in (directory / "vectors").iterdir() if p.is_dir())
    for _ in range(2):
        assert _memes(env, "reindex", "--text-only").returncode == 0
    after = [p for p in (directory / "vectors").iterdir() if p.is_dir()]
    assert len(after) == len(before)


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


def test_a_read_only_archive_is_searched_and_refuses_writes(archive, tmp_path):
    directory, env = archive
    mounted = tmp_path / "read-only"
    mounted.mkdir()
    if not _mount("--bind", str(directory), str(mounted)):
        pytest.skip("bind mounts need root")
    try:
        if not _mount("-o", "remount,bind,ro", str(mounted)):
            pytest.skip("no read-only remount here")
        ro = {**env, "MEMES_ARCHIVE": str(mounted)}
        _finds_everything(ro)
        assert _memes(ro, "stats").returncode == 0
        for command in (["index", SAMPLES], ["doctor"], ["reindex", "--text-only"]):
            done = _memes(ro, *command)
            assert done.returncode == 1 and "read-only" in done.stderr and "Traceback" not in done.stderr
    finally:
        subprocess.run(["umount", str(mounted)], capture_output=True)


def test_a_full_disk_is_said_in_one_line_and_searches_go_on(archive, tmp_path):
    directory, env = archive
    disk = tmp_path / "small-disk"
    disk.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)):
        pytest.skip("mounting a tmpfs needs root")
    try:
        shutil.copytree(directory, disk / "archive")
        full = {**env, "MEMES_ARCHIVE": str(disk / "archive")}
        folder = tmp_path / "flat"
        flat_colour_memes(folder, 48)
        free = shutil.disk_usage(disk).free
        with open(disk / "filler", "wb") as f:  # just over what `index` asks to start
            f.write(b"\0" * max(0, free - 1_080_000))
        done = _memes(full, "index", folder)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert "no space left on the disk holding" in done.stderr and "MB free" in done.stderr
        _finds_everything(full, expect_notice=None if shutil.disk_usage(disk).free > 1 << 20 else "is full")
        (disk / "filler").unlink()
        again = _memes(full, "index", folder, "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["memes_in_archive"] == 10 + 48
        assert _doctor_check(full)[0] == 0
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
