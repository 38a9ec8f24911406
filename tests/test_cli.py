"""The `memes` command through Typer's CliRunner: exit codes, stdout, stderr, error paths."""
import json
import shutil

import pytest
from PIL import Image

from indexer.imageio import load_image, perceptual_hash
from tests.conftest import SEED

# Every command, on the embedded default and on the servers (PostgreSQL + a Chroma server).
pytestmark = pytest.mark.usefixtures("backend")
only_embedded = pytest.mark.parametrize(
    "backend", ["embedded"], indirect=True)  # the single-writer lock is the embedded default's


def test_help_lists_every_command_with_help_text(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("index", "search", "similar", "show", "import", "export", "reindex", "stats"):
        assert command in result.stdout
        sub = cli(command, "--help")
        assert sub.exit_code == 0 and len(sub.stdout.split("\n")) > 3


def test_index_reports_counts_and_skips_bad_files(archive_dir, samples, cli):
    (samples / "broken.jpg").write_bytes((samples / "coffee-code.jpg").read_bytes()[:2000])
    (samples / "notes.jpg").write_text("not an image")
    (samples / "empty.png").write_bytes(b"")
    result = cli("index", samples, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["new_memes"] == 10 and summary["skipped"] == 3
    assert {s["path"].rsplit("/", 1)[1] for s in summary["skipped_files"]} == {"broken.jpg", "notes.jpg", "empty.png"}
    assert f"skipping {samples / 'notes.jpg'}: not a readable image" in result.stderr
    assert f"skipping {samples / 'empty.png'}: empty file" in result.stderr
    assert "Traceback" not in result.output


def test_rerun_on_unchanged_files_does_no_model_work(indexed, cli, monkeypatch):
    archive_dir, samples = indexed
    from indexer import ocr

    def no_ocr(*args, **kwargs):
        raise AssertionError("OCR ran on an unchanged file")

    monkeypatch.setattr(ocr.MemeOcr, "read_all", no_ocr)
    result = cli("index", samples, "--json")
    assert json.loads(result.stdout)["unchanged"] == 10


def test_a_copy_under_a_new_path_is_a_new_sighting(indexed, cli, tmp_path):
    archive_dir, samples = indexed
    copy = tmp_path / "elsewhere" / "same.png"
    copy.parent.mkdir()
    shutil.copy(samples / "monday-flat.png", copy)
    summary = json.loads(cli("index", copy, "--json").stdout)
    assert summary["new_sightings"] == 1 and summary["new_memes"] == 0
    shown = cli("show", copy).stdout
    assert str(copy) in shown and str(samples / "monday-flat.png") in shown


def test_search_answers_each_line_of_a_queries_file(indexed, cli, tmp_path):
    queries = tmp_path / "queries.txt"
    queries.write_text("llama mistral chart\n\nexplaining embeddings to my cat\n")
    result = cli("search", "--queries", queries, "--json", "-k", "2")
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["query"] for a in answers] == ["llama mistral chart", "explaining embeddings to my cat"]
    assert answers[1]["results"][0]["path"].endswith("explaining-embeddings.jpg")
    assert all(1 <= len(a["results"]) <= 2 for a in answers)  # only memes that match; -k is the most


def test_plain_search_output_is_readable(indexed, cli):
    result = cli("search", "deploying on friday", "-k", "1")
    assert result.exit_code == 0
    assert result.stdout.startswith(" 1. ") and "deploy-friday.jpg" in result.stdout


def test_seed_round_trips_through_import_and_show(archive_dir, cli, tmp_path):
    record = tmp_path / SEED.name
    shutil.copy(SEED, record)
    result = cli("import", record)
    assert result.exit_code == 0, result.output
    assert "imported 1 records" in result.stderr
    shown = cli("show", "3d4397e866a55657")
    assert shown.exit_code == 0
    assert shown.stdout == SEED.read_text(encoding="utf-8") + "\n"  # the record, ended as a line is
    again = tmp_path / "again" / SEED.name
    again.parent.mkdir()
    again.write_text(shown.stdout, encoding="utf-8")
    assert cli("import", again).exit_code == 0 and cli("show", "3d4397e866a55657").stdout == shown.stdout


def test_imported_annotations_are_searchable(archive_dir, cli):
    cli("import", SEED)
    result = cli("search", "Foucauldian genealogy of intelligence metrics", "--json", "-k", "1")
    top = json.loads(result.stdout)["results"][0]
    assert top["id"] == "3d4397e866a55657"
    assert top["path"] is None
    assert "annotation_text" in top["signals"] and "genealog" in top["snippet"].lower()


def test_import_then_index_links_the_record_to_its_image(archive_dir, samples, cli, tmp_path):
    phash = perceptual_hash(load_image(samples / "explaining-embeddings.jpg").rgb)
    record = tmp_path / f"001_{phash}.txt"
    record.write_text("First Seen\n2021-03-04T05:06:07+00:00\nsimple-description (llava_13b)\n"
                      "A cartoon sky over hills, captioned about teaching embeddings to a cat.")
    cli("import", record)
    cli("index", samples / "explaining-embeddings.jpg")
    shown = cli("show", phash).stdout
    assert shown.startswith("First Seen\n2021-03-04T05:06:07+00:00\nsimple-description (llava_13b)\n")
    assert "tesseract-ocr\nME EXPLAINING EMBEDDINGS TO MY CAT" in shown
    assert f"Perceptual Hash\n{phash}" in shown and "Content Hash\n" in shown
    stats = json.loads(cli("stats", "--json").stdout)
    assert stats["memes"] == 1 and stats["records_without_image"] == 0


def test_records_of_two_images_with_one_perceptual_hash_stay_two_memes(archive_dir, cli, tmp_path):
    """Memes of one template often share a perceptual hash; their records are not merged."""
    for n, caption in enumerate(["WHEN THE CODE COMPILES", "WHEN THE TESTS PASS"]):
        (tmp_path / f"00{n}_ffff0000ffff0000.txt").write_text(
            f"First Seen\n2021-03-0{n + 1}T00:00:00+00:00\ntesseract-ocr\n{caption}\n"
            f"Content Hash\n{str(n) * 64}\nPerceptual Hash\nffff0000ffff0000")
    result = cli("import", *sorted(tmp_path.glob("*.txt")))
    assert result.exit_code == 0, result.output
    assert json.loads(cli("stats", "--json").stdout)["memes"] == 2
    found = json.loads(cli("search", "tests pass", "--json", "-k", "1").stdout)["results"]
    assert found[0]["id"] == "1" * 16


def test_export_names_files_by_sequence_and_phash_and_reimports(indexed, cli, tmp_path):
    out = tmp_path / "export"
    result = cli("export", out)
    assert result.exit_code == 0
    files = sorted(out.iterdir())
    assert len(files) == 10
    assert all(f.name[:3].isdigit() and len(f.stem.split("_")[1]) == 16 for f in files)
    assert files[0].read_text().startswith("First Seen\n")


def test_reindex_rebuilds_vectors_without_ocr(indexed, cli, monkeypatch):
    from indexer import ocr

    monkeypatch.setattr(ocr.MemeOcr, "read_all", lambda *a: (_ for _ in ()).throw(AssertionError("OCR ran")))
    before = json.loads(cli("stats", "--json").stdout)["vectors"]
    result = cli("reindex")
    assert result.exit_code == 0, result.output
    after = json.loads(cli("stats", "--json").stdout)["vectors"]
    assert after == before and after["image"]["vectors"] == 10
    assert cli("search", "llama mistral chart", "--json").exit_code == 0


def test_changed_image_model_is_refused_until_reindex(indexed, cli, monkeypatch, tmp_path, tiny_clip_dir):
    other = tmp_path / "other-clip"
    shutil.copytree(tiny_clip_dir, other)
    monkeypatch.setenv("MEMES_CLIP_MODEL", f"local-dir:{other}")
    result = cli("search", "anything")
    assert result.exit_code == 1
    assert "run `memes reindex`" in result.stderr
    assert cli("reindex").exit_code == 0
    assert cli("search", "anything").exit_code == 0


def test_unavailable_image_model_warns_once_and_text_search_works(archive_dir, samples, cli, monkeypatch):
    monkeypatch.setenv("MEMES_CLIP_MODEL", "no-such-architecture")
    result = cli("index", samples / "llama-mistral-chart.png")
    assert result.exit_code == 0
    assert result.stderr.count("could not be loaded") == 1
    assert "going on without image vectors" in result.stderr
    found = json.loads(cli("search", "llama mistral chart", "--json").stdout)["results"]
    assert found[0]["path"].endswith("llama-mistral-chart.png")
    similar = json.loads(cli("similar", samples / "llama-mistral-chart.png", "--json").stdout)
    assert similar["results"] == []  # nothing else in the archive, and no error


def test_stats(indexed, cli):
    result = cli("stats", "--json")
    numbers = json.loads(result.stdout)
    assert numbers["memes"] == 10 and numbers["sightings"] == 10
    assert numbers["vectors"]["ocr_text"]["model"] == "sentence-transformers:all-MiniLM-L6-v2"
    assert numbers["pending_vectors"] == {"ocr_text": 0, "annotation_text": 0, "image": 0}
    assert "memes        10" in cli("stats").stdout


def test_errors_are_one_line_with_exit_codes(archive_dir, cli, tmp_path):
    result = cli("search", "anything")
    assert result.exit_code == 1 and result.stderr.startswith("Error: no archive at")
    cli("import", SEED)
    missing = cli("show", "ffffffffffffffff")
    assert missing.exit_code == 1 and "no meme matches" in missing.stderr
    assert cli("search").exit_code == 2  # neither QUERY nor --queries
    assert cli("search", "-k", "0", "x").exit_code == 2
    bad = tmp_path / "bad.txt"
    bad.write_text("not a record\n")
    result = cli("import", bad)
    assert result.exit_code == 1 and f"skipping {bad}: " in result.stderr
    not_image = tmp_path / "x.jpg"
    not_image.write_text("text")
    result = cli("similar", not_image)
    assert result.exit_code == 1 and "not a readable image" in result.stderr
    for r in (missing, result):
        assert "Traceback" not in r.output and len(r.stderr.strip().splitlines()) == 1


@only_embedded
def test_a_second_writer_is_told_who_holds_the_archive(archive_dir, samples, cli):
    from archive.lock import writer_lock

    with writer_lock(archive_dir, command="memes index /elsewhere"):
        result = cli("index", samples / "monday-flat.png")
    assert result.exit_code == 1
    assert "is being written by pid" in result.stderr and "memes index /elsewhere" in result.stderr


def test_similar_accepts_an_image_outside_the_archive(indexed, cli, tmp_path):
    archive_dir, samples = indexed
    bordered = Image.new("RGB", (700, 600), "white")
    bordered.paste(Image.open(samples / "coffee-code.jpg").resize((600, 488)), (50, 60))
    path = tmp_path / "bordered.png"
    bordered.save(path)
    result = cli("similar", path, "-k", "3")
    assert result.exit_code == 0 and " 1. " in result.stdout


@only_embedded
def test_a_second_writer_can_wait_for_the_first(archive_dir, samples, cli):
    import threading
    import time

    from archive.lock import writer_lock

    release = threading.Event()

    def hold():
        with writer_lock(archive_dir, command="memes index /elsewhere"):
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.3)
    threading.Timer(1.0, release.set).start()
    started = time.monotonic()
    result = cli("index", samples / "monday-flat.png", "--wait")
    holder.join()
    assert result.exit_code == 0, result.output
    assert "waiting for pid" in result.stderr and time.monotonic() - started >= 0.7


def test_doctor_repairs_a_deleted_vector(indexed, cli, archive_dir, backend):
    from archive.catalog import Catalog

    shown = cli("show", indexed[1] / "monday-flat.png").stdout
    meme_id = shown.split("Content Hash\n")[1][:16]
    store = backend.store(archive_dir, Catalog(backend.catalog_location(archive_dir)))
    store.space("image").collection.delete(ids=[meme_id])  # Chroma loses a vector the catalog keeps
    ocr = store.space("ocr_text")
    ocr.collection.upsert(ids=["ghost"], embeddings=[ocr.vector(meme_id)], metadatas=[{"meme_id": "ghost"}])
    del store, ocr
    check = cli("doctor", "--check", "--json")
    assert check.exit_code == 1
    report = json.loads(check.stdout)
    assert report["spaces"]["image"]["missing"] == 1 and report["spaces"]["ocr_text"]["orphans"] == 1
    repair = cli("doctor", "--json")
    assert repair.exit_code == 0
    repaired = json.loads(repair.stdout)["spaces"]
    assert repaired["image"]["repaired"]["restored"] == 1 and repaired["image"]["reembedded"] == 0
    assert repaired["ocr_text"]["repaired"]["dropped"] == 1
    after = json.loads(cli("doctor", "--check", "--json").stdout)
    assert all(v["missing"] == 0 and v["orphans"] == 0 for v in after["spaces"].values())
    assert json.loads(cli("stats", "--json").stdout)["vectors"]["image"]["vectors"] == 10


def test_reindex_text_only_decodes_no_image(indexed, cli, monkeypatch):
    from indexer import imageio

    monkeypatch.setattr(imageio, "decode", lambda *a, **k: (_ for _ in ()).throw(AssertionError("decoded")))
    result = cli("reindex", "--text-only")
    assert result.exit_code == 0, result.output
    assert json.loads(cli("stats", "--json").stdout)["vectors"]["ocr_text"]["vectors"] == 10


def test_prune_forgets_gone_files_and_keeps_or_removes_orphans(indexed, cli):
    archive_dir, samples = indexed
    shutil.copy(samples / "coffee-code.jpg", samples / "copy-of-coffee.jpg")
    cli("index", samples)
    (samples / "coffee-code.jpg").unlink()  # a copy remains: a sighting goes, the meme stays
    (samples / "monday-flat.png").unlink()  # its only file: the meme is left with none
    result = cli("index", samples, "--prune", "--json")
    summary = json.loads(result.stdout)
    assert summary["forgotten_files"] == 2 and summary["memes_without_files"] == 1
    assert "1 memes have no file left: kept" in result.stderr
    assert json.loads(cli("stats", "--json").stdout)["memes"] == 10
    result = cli("index", samples, "--prune", "--prune-orphans", "--json")
    assert "removed" in result.stderr
    stats = json.loads(cli("stats", "--json").stdout)
    assert stats["memes"] == 9 and stats["vectors"]["image"]["vectors"] == 9
    found = json.loads(cli("search", "monday again nobody asked", "--json").stdout)["results"]
    assert not any("monday" in (r["path"] or "") for r in found)


@only_embedded
def test_servers_that_do_not_answer_are_one_line(archive_dir, samples, cli, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MEMES_RECORDS_URL", f"postgresql://memes:secret@127.0.0.1:{port}/memes")
    result = cli("search", "anything")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot reach the records server postgresql://memes:***@127.0.0.1:{port}")
    assert "secret" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    monkeypatch.delenv("MEMES_RECORDS_URL")
    monkeypatch.setenv("MEMES_CHROMA_URL", f"http://127.0.0.1:{port}")
    result = cli("index", samples / "monday-flat.png")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot use the Chroma server at http://127.0.0.1:{port}")
    assert len(result.stderr.strip().splitlines()) == 1
    monkeypatch.setenv("MEMES_CHROMA_URL", "ftp://nowhere")
    assert cli("index", samples / "monday-flat.png").stderr.startswith("Error: chroma_url must look like http://HOST:PORT")


def test_ctrl_c_landing_where_python_cannot_raise_still_interrupts_without_a_traceback(tmp_path):
    """Seen in CI: SIGINT arrived while importlib ran a weakref callback; Python printed the
    KeyboardInterrupt's traceback as 'Exception ignored' and the run went on as if never pressed."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import os, signal, sys, time, weakref
        import typer
        from memes.cli.base import translated

        class Held:
            pass

        @translated
        def command():
            held = Held()
            ref = weakref.ref(held, lambda _: os.kill(os.getpid(), signal.SIGINT) or time.sleep(0.2))
            del held  # the signal is handled inside the callback, where nothing can catch it
            time.sleep(float(sys.argv[1]))  # work going on, or (0) the command ending at once
            print("finished")

        try:
            command()
        except typer.Exit as exit:  # what the typer app does with it
            raise SystemExit(exit.exit_code)
        time.sleep(0.3)  # a caller going on after the command: nothing lands there
        """
    )
    for work in ("5", "0"):
        run = subprocess.run([sys.executable, "-c", script, work], capture_output=True, text=True, timeout=60)
        assert "Traceback" not in run.stderr, work
        assert run.returncode == 130 and "interrupted" in run.stderr, (work, run.stderr)
        assert ("finished" in run.stdout) == (work == "0")
