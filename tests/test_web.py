"""The web gallery: its JSON API through FastAPI's test client, its pages, and its safety."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import SAMPLES


@pytest.fixture(scope="module")
def gallery_archive(tmp_path_factory, tiny_clip_dir):
    """The sample memes indexed once for this module: (archive dir, samples dir, env)."""
    root = tmp_path_factory.mktemp("gallery")
    samples = root / "samples"
    shutil.copytree(SAMPLES, samples)
    env = {"MEMES_ARCHIVE": str(root / "archive"), "MEMES_CLIP_MODEL": f"local-dir:{tiny_clip_dir}",
           "MEMES_ANNOTATE": "0", "MEMES_GROUP_REPOSTS": "0"}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        from typer.testing import CliRunner

        from memes.cli import app

        result = CliRunner().invoke(app, ["index", str(samples)])
        assert result.exit_code == 0, result.output
    return root / "archive", samples, env


@pytest.fixture
def env(gallery_archive, monkeypatch):
    for name, value in gallery_archive[2].items():
        monkeypatch.setenv(name, value)
    return gallery_archive


def _client(token: str | None = None) -> TestClient:
    from archive.config import resolve_config
    from memes.app import Archive
    from memes.web import create_app

    return TestClient(create_app(Archive(resolve_config({})), token))


@pytest.fixture
def client(env):
    return _client()


def _cli_json(*args) -> dict:
    from typer.testing import CliRunner

    from memes.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _id_of(client, samples: Path, name: str) -> str:
    return _cli_json("show", samples / name, "--json")["id"]


def _png(color=(200, 30, 30), size=(120, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


# --- the API ------------------------------------------------------------------------------

def test_search_through_the_api_gives_what_the_cli_gives(client):
    api = client.get("/api/search", params={"q": "llama mistral chart", "k": 3})
    assert api.status_code == 200
    assert api.json()["results"][0]["path"].endswith("llama-mistral-chart.png")
    assert api.json() == _cli_json("search", "llama mistral chart", "-k", "3", "--json")


def test_a_meme_through_the_api_is_what_show_json_gives(client, env):
    meme_id = _id_of(client, env[1], "monday-flat.png")
    api = client.get(f"/api/memes/{meme_id}").json()
    assert api == _cli_json("show", meme_id, "--json")
    assert api["sightings"][0]["path"].endswith("monday-flat.png")
    assert any("MONDAY" in o["text"].upper() for o in api["ocr"])


def test_similar_finds_the_repost_by_id_and_by_upload(client, env):
    samples = env[1]
    original = _id_of(client, samples, "one-does-not-simply.jpg")
    by_id = client.get(f"/api/similar/{original}", params={"k": 3}).json()
    assert by_id["results"][0]["path"].endswith("one-does-not-simply-small.jpg")
    assert by_id == _cli_json("similar", original, "-k", "3", "--json")
    upload = (samples / "reposts" / "one-does-not-simply-small.jpg").read_bytes()
    by_upload = client.post("/api/similar", files={"image": ("r.jpg", upload, "image/jpeg")}, data={"k": "3"}).json()
    assert by_upload["results"][0]["path"].endswith("one-does-not-simply.jpg")


def test_images_and_cached_thumbnails_are_served_by_id(client, env):
    archive_dir, samples, _ = env
    meme_id = _id_of(client, samples, "coffee-code.jpg")
    image = client.get(f"/api/memes/{meme_id}/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content == (samples / "coffee-code.jpg").read_bytes()
    thumb = client.get(f"/api/memes/{meme_id}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320
    cached = list((archive_dir / "thumbnails").rglob("*.webp"))
    assert any(p.read_bytes() == thumb.content for p in cached)
    before = {p: p.stat().st_mtime_ns for p in cached}
    assert client.get(f"/api/memes/{meme_id}/thumbnail").content == thumb.content
    assert {p: p.stat().st_mtime_ns for p in cached} == before  # made once


def test_browse_pages_recent_first(client):
    first = client.get("/api/memes", params={"page": 1, "per_page": 4}).json()
    last = client.get("/api/memes", params={"page": 3, "per_page": 4}).json()
    assert first["total"] == 10 and len(first["memes"]) == 4 and len(last["memes"]) == 2
    seen = [m["first_seen"] for m in first["memes"] + client.get("/api/memes", params={"page": 2, "per_page": 4}).json()["memes"] + last["memes"]]
    assert seen == sorted(seen, reverse=True)
    assert len({m["id"] for m in first["memes"] + last["memes"]}) == 6


def test_groups_join_the_repost_and_mark_the_earliest(client):
    groups = client.get("/api/groups").json()["groups"]
    paths = [[client.get(f"/api/memes/{i}").json()["path"] for i in g["memes"]] for g in groups]
    joined = [p for p in paths if any(x.endswith("one-does-not-simply.jpg") for x in p)]
    assert len(joined) == 1 and any(x.endswith("one-does-not-simply-small.jpg") for x in joined[0])
    assert all(len(p) == 2 for p in joined)  # nothing else of that look joined them
    assert groups[paths.index(joined[0])]["earliest"]["path"] in joined[0]
    page = client.get("/groups")
    assert page.status_code == 200 and "earliest" in page.text


def test_stats_through_the_api(client):
    stats = client.get("/api/stats").json()
    assert stats["memes"] == 10 and stats["vectors"]["image"]["vectors"] == 10


def test_openapi_schema_lists_the_api(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/api/search", "/api/similar/{meme_id}", "/api/memes/{meme_id}", "/api/memes/{meme_id}/thumbnail",
            "/api/stats", "/api/groups"} <= set(paths)


# --- pages --------------------------------------------------------------------------------

def test_pages_render_results_and_escape_the_query(client, env):
    page = client.get("/", params={"q": "one does not simply"})
    assert page.status_code == 200 and 'class="card"' in page.text and "/thumbnail" in page.text
    hostile = client.get("/", params={"q": '<script>alert("x")</script>'})
    assert hostile.status_code == 200
    assert '<script>alert("x")</script>' not in hostile.text and "&lt;script&gt;" in hostile.text
    meme_id = _id_of(client, env[1], "monday-flat.png")
    meme = client.get(f"/meme/{meme_id}")
    assert meme.status_code == 200 and "More like this" in meme.text and "monday-flat.png" in meme.text
    assert client.get(f"/similar/{meme_id}").status_code == 200
    assert client.get("/browse").status_code == 200 and client.get("/browse?page=2").status_code == 200


def test_search_by_upload_without_adding_stores_nothing(client, env):
    archive_dir = env[0]
    upload = (env[1] / "reposts" / "one-does-not-simply-small.jpg").read_bytes()
    page = client.post("/search/image", files={"image": ("x.jpg", upload, "image/jpeg")})
    assert page.status_code == 200 and "one-does-not-simply.jpg" in page.text
    assert not (archive_dir / "added").exists()
    assert client.get("/api/stats").json()["memes"] == 10


# --- safety -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/api/memes/..%2F..%2F..%2Fetc%2Fpasswd/image",
    "/api/memes/%2Fetc%2Fpasswd/image",
    "/api/memes/../../catalog.sqlite3",
    "/api/memes/..%2Fcatalog.sqlite3/thumbnail",
    "/static/../catalog.sqlite3",
    "/static/..%2F..%2Fcatalog.sqlite3",
    "/api/memes/%2Fetc%2Fpasswd",
])
def test_no_path_from_the_request_reaches_a_file(client, path):
    response = client.get(path)
    assert response.status_code in (404, 405), (path, response.status_code)
    assert b"root:" not in response.content and b"SQLite format" not in response.content


def test_a_token_guards_pages_and_api(env):
    client = _client(token="s3cret")
    assert client.get("/api/stats").status_code == 401
    assert client.get("/api/stats", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/").status_code == 401
    assert client.get(f"/api/memes/{'0' * 16}/image").status_code == 401
    assert client.get("/api/stats", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/?token=s3cret").status_code == 200  # sets the cookie the pages then use
    assert client.get("/browse").status_code == 200


def test_serve_refuses_a_network_address_without_a_token(env, monkeypatch):
    from typer.testing import CliRunner

    from memes.cli import app

    monkeypatch.delenv("MEMES_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1 and "refusing to listen on 0.0.0.0 without a token" in result.stderr


def test_uploads_are_capped_and_must_be_images(client):
    from memes import web

    big = b"\xff\xd8" + b"0" * (web.MAX_UPLOAD_BYTES + 10)
    too_big = client.post("/api/similar", files={"image": ("big.jpg", big, "image/jpeg")})
    assert too_big.status_code == 413 and "limited to" in too_big.json()["error"]
    text = client.post("/api/similar", files={"image": ("notes.jpg", b"just some text\n", "image/jpeg")})
    assert text.status_code == 422 and text.json()["error"] == "not a readable image"
    bomb = io.BytesIO()
    Image.new("1", (30000, 30000)).save(bomb, "PNG")
    refused = client.post("/api/similar", files={"image": ("bomb.png", bomb.getvalue(), "image/png")})
    assert refused.status_code == 422 and "too large" in refused.json()["error"]
    page = client.post("/search/image", files={"image": ("notes.jpg", b"just some text\n", "image/jpeg")})
    assert page.status_code == 422 and "not a readable image" in page.text


def test_adding_an_upload_keeps_and_indexes_it(archive_dir, samples, cli):
    assert cli("index", samples / "monday-flat.png").exit_code == 0
    from archive.config import resolve_config
    from memes.app import Archive
    from memes.web import create_app

    client = TestClient(create_app(Archive(resolve_config({}))))
    added = client.post("/api/memes", files={"image": ("red.png", _png(), "image/png")})
    assert added.status_code == 200, added.text
    body = added.json()
    assert body["new"] is True and body["meme"]["sightings"][0]["path"].startswith(str(archive_dir / "added"))
    again = client.post("/api/memes", files={"image": ("red-again.png", _png(), "image/png")}).json()
    assert again["id"] == body["id"] and again["new"] is False
    assert client.get("/api/stats").json()["memes"] == 2
    assert client.get(f"/api/memes/{body['id']}/image").content == _png()
