"""Annotation through Ollama, against a fake Ollama server on 127.0.0.1 (real HTTP, the real
`ollama` client)."""
import base64
import io
import json
import socket
import sqlite3

import pytest
from PIL import Image

from tests.fake_ollama import FakeOllama

N_SAMPLES = 10


@pytest.fixture
def ollama():
    with FakeOllama() as server:
        yield server


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def annotating(archive_dir, ollama, monkeypatch):
    """Annotation on, pointed at the fake server, with quick retries."""
    monkeypatch.setenv("MEMES_ANNOTATE", "1")
    monkeypatch.setenv("OLLAMA_HOST", ollama.url)
    monkeypatch.setenv("MEMES_ANNOTATE_BACKOFF", "0.01")
    monkeypatch.setenv("MEMES_ANNOTATE_TIMEOUT", "3")
    return ollama


def _jobs(cli) -> dict:
    return json.loads(cli("stats", "--json").stdout)["annotation_jobs"]


def test_index_writes_the_seeds_sections_with_the_configured_models(annotating, samples, cli):
    result = cli("index", samples)
    assert result.exit_code == 0, result.output
    shown = cli("show", samples / "monday-flat.png").stdout
    assert "\nsimple-description (llama3.2-vision)\nA 600x400 meme, mostly tangerine" in shown
    assert "\ndetailed-analysis (gemma3_27b)\nHere is an analysis by gemma3:27b.\n1. Visual Description\n" in shown
    assert "\ntesseract-ocr\nMONDAY AGAIN" in shown
    jobs = _jobs(cli)["by_annotator"]
    assert jobs["simple-description (llama3.2-vision)"]["done"] == N_SAMPLES
    assert jobs["detailed-analysis (gemma3_27b)"]["done"] == N_SAMPLES
    assert all(r["keep_alive"] == "30m" for r in annotating.requests)


def test_search_finds_memes_by_words_only_their_annotations_have(annotating, samples, cli):
    cli("index", samples)
    result = json.loads(cli("search", "tangerine", "--json", "-k", "3").stdout)["results"]
    assert result[0]["path"].endswith("monday-flat.png")
    assert "tangerine" in result[0]["snippet"].lower()
    assert {"annotation_text", "keyword"} <= set(result[0]["signals"])


def test_long_analyses_are_searched_by_passage(annotating, samples, cli):
    cli("index", samples / "monday-flat.png")
    result = json.loads(cli("search", "critical theory reading of colour", "--json", "-k", "1").stdout)
    top = result["results"][0]
    assert top["path"].endswith("monday-flat.png") and "Critical Theory" in top["snippet"]


def test_images_are_downscaled_before_sending(annotating, samples, cli, monkeypatch):
    monkeypatch.setenv("MEMES_ANNOTATE_IMAGE_SIDE", "256")
    cli("index", samples / "one-does-not-simply.jpg")
    for request in annotating.requests:
        image = Image.open(io.BytesIO(base64.b64decode(request["messages"][0]["images"][0])))
        assert max(image.size) == 256 and image.format == "JPEG"


def test_requests_run_concurrently_within_the_bound(annotating, samples, cli, monkeypatch):
    monkeypatch.setenv("MEMES_ANNOTATE_CONCURRENCY", "3")
    annotating.delay = 0.3
    cli("index", samples)
    assert 2 <= annotating.max_in_flight <= 3
    assert len(annotating.requests) == 2 * N_SAMPLES


def test_faults_are_retried_with_backoff(annotating, samples, cli, monkeypatch):
    monkeypatch.setenv("MEMES_ANNOTATE_CONCURRENCY", "1")
    monkeypatch.setenv("MEMES_ANNOTATE_RETRIES", "4")
    annotating.faults.extend(["fail", "busy", "garbage", "truncated"])
    result = cli("index", samples / "monday-flat.png")
    assert result.exit_code == 0
    jobs = _jobs(cli)
    assert jobs["by_annotator"]["simple-description (llama3.2-vision)"]["done"] == 1
    assert jobs["by_annotator"]["detailed-analysis (gemma3_27b)"]["done"] == 1
    assert len(annotating.requests) == 6  # four faults, then one good reply for each annotator


def test_a_hung_request_times_out_and_is_retried(annotating, samples, cli, monkeypatch):
    monkeypatch.setenv("MEMES_ANNOTATE_TIMEOUT", "0.5")
    monkeypatch.setenv("MEMES_ANNOTATE_CONCURRENCY", "1")
    annotating.hang_seconds = 2
    annotating.faults.append("hang")
    cli("index", samples / "monday-flat.png")
    assert _jobs(cli)["by_annotator"]["simple-description (llama3.2-vision)"]["done"] == 1


def test_exhausted_retries_mark_the_record_failed_with_the_reason(annotating, samples, cli, monkeypatch):
    monkeypatch.setenv("MEMES_ANNOTATE_RETRIES", "1")
    monkeypatch.setenv("MEMES_ANNOTATE_CONCURRENCY", "1")
    annotating.faults.extend(["busy", "busy"])
    result = cli("index", samples / "monday-flat.png")
    assert result.exit_code == 0
    assert "failed for meme" in result.stderr and "503" in result.stderr
    jobs = _jobs(cli)
    assert sum(j["failed"] for j in jobs["by_annotator"].values()) == 1
    [(reason, count)] = jobs["failure_reasons"].items()
    assert "gave up after 2 tries" in reason and "503" in reason and count == 1
    assert "failed       1 x gave up after 2 tries" in cli("stats").stdout
    cli("annotate")  # failed ones are tried again
    assert sum(j["failed"] for j in _jobs(cli)["by_annotator"].values()) == 0


def test_unreachable_server_leaves_records_pending_then_annotate_fills_them(archive_dir, samples, cli,
                                                                            monkeypatch):
    monkeypatch.setenv("MEMES_ANNOTATE", "1")
    monkeypatch.setenv("OLLAMA_HOST", _closed_port_url())
    result = cli("index", samples)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("no Ollama server answers") == 1
    assert "memes annotate --pending" in result.stderr
    jobs = _jobs(cli)["by_annotator"]
    assert jobs["simple-description (llama3.2-vision)"]["pending"] == N_SAMPLES
    with FakeOllama() as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        assert cli("annotate", "--pending").exit_code == 0
    jobs = _jobs(cli)["by_annotator"]
    assert all(j["done"] == N_SAMPLES and j["pending"] == 0 for j in jobs.values())
    found = json.loads(cli("search", "tangerine", "--json", "-k", "1").stdout)["results"]
    assert found[0]["path"].endswith("monday-flat.png")


def test_server_stopping_mid_run_keeps_what_finished(annotating, samples, cli, monkeypatch):
    monkeypatch.setenv("MEMES_ANNOTATE_CONCURRENCY", "1")
    annotating.die_after = 5
    result = cli("index", samples)
    assert result.exit_code == 0, result.output
    jobs = _jobs(cli)["by_annotator"].values()
    done, pending = sum(j["done"] for j in jobs), sum(j["pending"] for j in jobs)
    assert done >= 5 and pending >= 2 * N_SAMPLES - 7  # the server goes away as its 5th reply leaves
    assert done + pending == 2 * N_SAMPLES and sum(j["failed"] for j in jobs) == 0
    with FakeOllama() as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        cli("annotate", "--pending")
        assert len(server.requests) == pending
    assert sum(j["done"] for j in _jobs(cli)["by_annotator"].values()) == 2 * N_SAMPLES


def test_a_model_not_pulled_is_named_with_the_pull_command(annotating, samples, cli):
    annotating.models = {"llama3.2-vision:latest"}
    result = cli("index", samples / "monday-flat.png")
    assert result.exit_code == 0
    assert "run `ollama pull gemma3:27b`" in result.stderr
    jobs = _jobs(cli)["by_annotator"]
    assert jobs["simple-description (llama3.2-vision)"]["done"] == 1
    assert jobs["detailed-analysis (gemma3_27b)"]["pending"] == 1


def test_nothing_is_annotated_twice(annotating, samples, cli):
    cli("index", samples)
    asked = len(annotating.requests)
    cli("index", samples)
    assert cli("reindex").exit_code == 0
    result = cli("annotate")
    assert "nothing to annotate" in result.stderr
    assert len(annotating.requests) == asked
    cli("annotate", "--kind", "simple-description", "--redo")
    assert len(annotating.requests) == asked + N_SAMPLES


def test_a_changed_prompt_marks_annotations_stale_and_keeps_the_old_text(annotating, archive_dir, samples, cli):
    cli("index", samples / "monday-flat.png")
    old = cli("show", samples / "monday-flat.png").stdout
    (archive_dir / "config.toml").write_text(
        '[[annotators]]\nkind = "simple-description"\nmodel = "llama3.2-vision"\n'
        'prompt = "Describe this meme in numbered sections."\n')
    jobs = _jobs(cli)["by_annotator"]["simple-description (llama3.2-vision)"]
    assert jobs["stale"] == 1
    assert cli("annotate").exit_code == 0
    new = cli("show", samples / "monday-flat.png").stdout
    assert new != old and "1. Visual Description" in new.split("simple-description (llama3.2-vision)")[1]
    assert _jobs(cli)["by_annotator"]["simple-description (llama3.2-vision)"]["stale"] == 0
    with sqlite3.connect(archive_dir / "catalog.sqlite3") as db:
        [(kept,)] = db.execute("SELECT body FROM annotation_history").fetchall()
    assert kept.startswith("A 600x400 meme, mostly tangerine")


def test_requests_spread_over_hosts_and_survive_a_dead_one(archive_dir, samples, cli, monkeypatch):
    with FakeOllama() as first, FakeOllama() as second:
        monkeypatch.setenv("MEMES_ANNOTATE", "1")
        monkeypatch.setenv("OLLAMA_HOST", f"{first.url},{_closed_port_url()},{second.url}")
        result = cli("index", samples)
        assert result.exit_code == 0
        assert first.requests and second.requests
        assert len(first.requests) + len(second.requests) == 2 * N_SAMPLES
    jobs = _jobs(cli)["by_annotator"]
    assert all(j["done"] == N_SAMPLES for j in jobs.values())


def test_imported_annotations_are_not_overwritten(annotating, samples, cli, tmp_path):
    from indexer.imageio import load_image, perceptual_hash

    phash = perceptual_hash(load_image(samples / "monday-flat.png").rgb)
    record = tmp_path / f"000_{phash}.txt"
    record.write_text("First Seen\n2020-02-02T00:00:00+00:00\nsimple-description (llama3.2-vision)\nWritten elsewhere.")
    cli("import", record)
    cli("index", samples / "monday-flat.png")
    shown = cli("show", phash).stdout
    assert "simple-description (llama3.2-vision)\nWritten elsewhere." in shown
    assert "detailed-analysis (gemma3_27b)" in shown


def test_bad_annotator_config_is_one_clear_error(archive_dir, cli):
    archive_dir.mkdir(parents=True)
    (archive_dir / "config.toml").write_text('[[annotators]]\nkind = "x"\n')
    result = cli("stats")
    assert result.exit_code == 1 and "annotator 1: needs kind, model and prompt" in result.stderr


def test_a_slow_server_still_gets_every_new_image(annotating, samples, cli, monkeypatch):
    # OCR runs ahead of a slow model: images it commits meanwhile are new to the archive all
    # the same, and must still be annotated
    monkeypatch.setenv("MEMES_ANNOTATE_CONCURRENCY", "1")
    annotating.delay = 0.4
    assert cli("index", samples).exit_code == 0
    jobs = _jobs(cli)["by_annotator"]
    assert all(j["done"] == N_SAMPLES for j in jobs.values()), jobs


def test_each_new_image_is_decoded_once_when_the_models_keep_up(annotating, samples, cli, monkeypatch):
    """Indexing sends the image it decoded for OCR to the vision models: no file is decoded twice."""
    import hashlib

    import indexer.pipeline

    decoded: list[str] = []
    real = indexer.pipeline.decode

    def counting(data, *args, **kwargs):
        decoded.append(hashlib.sha256(data).hexdigest())
        return real(data, *args, **kwargs)

    monkeypatch.setattr(indexer.pipeline, "decode", counting)
    assert cli("index", samples).exit_code == 0
    assert decoded and len(decoded) == len(set(decoded))
    jobs = _jobs(cli)["by_annotator"]
    assert all(j["done"] == len(decoded) for j in jobs.values()), jobs


def test_images_the_models_had_no_room_for_are_sent_after_the_files_are_read(annotating, samples, cli,
                                                                               monkeypatch):
    from indexer.annotate import AnnotationRun

    offered: list[str] = []

    def no_room(self, content_hash, image):
        offered.append(content_hash)
        return list(self.specs)

    monkeypatch.setattr(AnnotationRun, "offer", no_room)
    assert cli("index", samples).exit_code == 0
    assert offered
    jobs = _jobs(cli)["by_annotator"]
    assert all(j["done"] == len(offered) for j in jobs.values()), jobs
