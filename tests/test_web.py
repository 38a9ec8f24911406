"""The web gallery: its JSON API through FastAPI's test client, its pages, and its safety."""
from __future__ import annotations

import io
import json
import re
import time
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import SAMPLES, gallery_client, page_csrf


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


def _client(token: str | None = None, script: bool = True) -> TestClient:
    return gallery_client(token, script)


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
    from memes.web.guard import MAX_UPLOAD_BYTES

    big = b"\xff\xd8" + b"0" * (MAX_UPLOAD_BYTES + 10)
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
    client = gallery_client()
    added = client.post("/api/memes", files={"image": ("red.png", _png(), "image/png")})
    assert added.status_code == 200, added.text
    body = added.json()
    assert body["new"] is True and body["meme"]["sightings"][0]["path"].startswith(str(archive_dir / "added"))
    again = client.post("/api/memes", files={"image": ("red-again.png", _png(), "image/png")}).json()
    assert again["id"] == body["id"] and again["new"] is False
    assert client.get("/api/stats").json()["memes"] == 2
    assert client.get(f"/api/memes/{body['id']}/image").content == _png()


# --- against hostile pages (issue: cross-site writes, DNS rebinding, bad parameters) -------------

EVIL = "http://evil.example"


@pytest.mark.parametrize("headers", [
    {"Origin": EVIL},
    {"Origin": "http://127.0.0.1:9999"},  # same host, another port: another origin
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # another port of this host
])
def test_writes_from_another_origin_are_refused(env, headers):
    client = _client()  # it sends the script header: the origin alone refuses
    before = client.get("/api/stats").json()["memes"]
    upload = {"image": ("red.png", _png(), "image/png")}
    added = client.post("/api/memes", files=upload, headers=headers)
    assert added.status_code == 403 and added.json()["error"] == "a page on another site cannot change this archive"
    page = client.post("/search/image", files=upload, data={"add": "true"}, headers=headers)
    assert page.status_code == 403 and "another site" in page.text
    assert client.get("/api/stats").json()["memes"] == before
    assert not (env[0] / "added").exists()


def test_a_write_needs_the_script_header_or_the_page_token(env):
    plain = _client(script=False)  # curl, or a form on another site that sends no Origin
    upload = {"image": ("red.png", _png(), "image/png")}
    refused = plain.post("/api/similar", files=upload)
    assert refused.status_code == 403 and "X-Memes-Request: 1" in refused.json()["error"]
    form = plain.post("/search/image", files=upload)
    assert form.status_code == 403 and "reload the page" in form.text
    stale = plain.post("/search/image", files=upload, data={"csrf": "not-the-token"})
    assert stale.status_code == 403
    token = page_csrf(plain.get("/").text)
    ok = plain.post("/search/image", files=upload, data={"csrf": token},
                    headers={"Origin": "http://127.0.0.1:8765", "Sec-Fetch-Site": "same-origin"})
    assert ok.status_code == 200 and "Like red.png" in ok.text
    assert plain.post("/api/similar", files=upload, headers={"X-Memes-Request": "1"}).status_code == 200


def test_the_token_cookie_is_bound_to_the_exact_origin(env):
    client = _client(token="s3cret")
    assert client.get("/?token=s3cret").status_code == 200
    cookie = next(c for c in client.cookies.jar)
    assert cookie.name == "memes_token_8765" and "s3cret" not in cookie.value  # never the token itself
    assert client.get("/browse").status_code == 200
    other_host = client.get("/browse", headers={"Host": "localhost:8765"})  # the cookie was given to 127.0.0.1
    assert other_host.status_code == 401
    cross = client.post("/api/memes", files={"image": ("r.png", _png(), "image/png")},
                        headers={"Origin": "http://127.0.0.1:9999"})  # the cookie rides along; the origin refuses
    assert cross.status_code == 403


@pytest.mark.parametrize("host", ["evil.example:8765", "evil.example", "127.0.0.1:9999", "localhost.evil.example:8765",
                                  "127.0.0.1:8765.evil.example", "", "[::2]:8765"])
def test_only_the_servers_own_host_names_are_answered(client, env, host):
    meme_id = _id_of(client, env[1], "coffee-code.jpg")
    for method, path in (("GET", "/api/stats"), ("GET", f"/api/memes/{meme_id}/image"), ("GET", "/"),
                         ("POST", "/api/similar")):
        response = client.request(method, path, headers={"Host": host})
        assert response.status_code == 421, (method, path, host)
        assert str(env[0]) not in response.text


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "[::1]:8765", "LOCALHOST:8765"])
def test_loopback_names_at_the_servers_port_are_answered(client, host):
    assert client.get("/api/stats", headers={"Host": host}).status_code == 200


def test_allowed_host_names_are_answered_at_any_port_and_the_host_flag_at_its_own():
    from memes.web.guard import Site

    site = Site.serving("192.168.1.5", 8765, ["memes.home", "proxy.example:443"])
    assert site.allows_host("192.168.1.5:8765") and not site.allows_host("192.168.1.5:80")
    assert site.allows_host("memes.home") and site.allows_host("memes.home:8080")
    assert site.allows_host("proxy.example:443") and not site.allows_host("proxy.example:444")
    assert site.is_own_origin("https://proxy.example") and not site.is_own_origin("http://proxy.example")
    assert not Site.serving("0.0.0.0", 8765).allows_host("0.0.0.0:8765")


@pytest.mark.parametrize("path", ["/api/memes?page=9223372036854775807", "/api/memes?page=1e30",
                                  "/api/memes?page=0", "/api/memes?per_page=100000", "/api/search?q=a&k=0",
                                  "/api/search?q=a&k=99999999999999999999", "/api/similar/abc?k=-1"])
def test_absurd_numbers_in_the_api_are_a_422(client, path):
    response = client.get(path)
    assert response.status_code == 422 and response.json()["error"]


@pytest.mark.parametrize("path", ["/browse?page=9223372036854775807", "/browse?page=1e30", "/browse?page=0",
                                  "/?q=a&k=0", "/?q=a&k=x"])
def test_absurd_numbers_in_a_page_get_a_page_that_says_so(client, path):
    response = client.get(path)
    assert response.status_code == 422 and response.headers["content-type"].startswith("text/html")
    assert "cannot show" in response.text and '"detail"' not in response.text


def test_a_disguised_format_upload_is_refused_by_name(client):
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nshowpage\n"
    for path in ("/api/similar", "/api/memes"):
        response = client.post(path, files={"image": ("x.png", eps, "image/png")})
        assert response.status_code == 422
        assert response.json()["error"].startswith("PostScript is not an image format memes reads")


def test_every_response_carries_the_security_headers(client, env):
    meme_id = _id_of(client, env[1], "coffee-code.jpg")
    for path in ("/", "/browse", f"/meme/{meme_id}", "/api/stats", f"/api/memes/{meme_id}/image",
                 "/static/gallery.css", "/api/docs", "/nowhere", "/api/memes/ffff"):
        response = client.get(path)
        h = response.headers
        assert "script-src" not in h["content-security-policy"]  # default-src 'self': no inline script
        assert "default-src 'self'" in h["content-security-policy"], path
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY", path
        assert h["referrer-policy"] == "same-origin", path
        assert response.headers.get_list("x-content-type-options") == ["nosniff"]  # said once
    assert client.get("/api/stats", headers={"Host": "evil.example"}).headers["x-frame-options"] == "DENY"


def test_pages_need_no_inline_script_or_style(client, env):
    """What the CSP forbids, the gallery's own pages never do."""
    import re

    meme_id = _id_of(client, env[1], "coffee-code.jpg")
    for path in ("/", "/?q=monday", "/browse", f"/meme/{meme_id}", f"/similar/{meme_id}", "/groups", "/api/docs"):
        text = client.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path
        assert not re.search(r"\son[a-z]+\s*=", text) and " style=" not in text, path
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path  # nothing from elsewhere


def test_the_api_docs_are_served_from_the_package(client):
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and "GET /api/search" in docs.text and "POST /api/memes" in docs.text
    assert "cdn" not in docs.text.lower() and "X-Memes-Request: 1" in docs.text


# --- a real server: bodies counted as they arrive, reads beside a slow write ---------------------

@contextmanager
def _served():
    """The gallery of the environment's archive under uvicorn, in a thread: its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    from archive.config import resolve_config
    from memes.app import Archive
    from memes.web import create_app
    from memes.web.guard import Site

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Archive(resolve_config({}), resident=True), None, Site.serving("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)


def _open_spool_bytes(folder: Path) -> int:
    """Bytes in the temporary files this process holds open in `folder` (unnamed ones too)."""
    total = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder)):
                total += os.stat(f"/proc/self/fd/{fd}").st_size
        except OSError:
            pass
    return total


def test_an_oversize_streamed_upload_is_stopped_as_it_arrives(env, tmp_path, monkeypatch):
    """No Content-Length (chunked): the cap is counted on the bytes themselves, and the
    temporary file the form parser spools to never grows past it."""
    import tempfile
    import threading

    import httpx

    from memes.web.guard import MAX_BODY_BYTES

    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    sent, largest, done = [0], [0], threading.Event()

    def body():
        yield (b'--b\r\nContent-Disposition: form-data; name="image"; filename="huge.png"\r\n'
               b"Content-Type: image/png\r\n\r\n")
        for _ in range(400):  # 400 MB, as the attack sent
            sent[0] += 1 << 20
            yield b"\x89" * (1 << 20)
        yield b"\r\n--b--\r\n"

    def watch():
        while not done.is_set():
            largest[0] = max(largest[0], _open_spool_bytes(spool))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with _served() as url:
        try:
            response = httpx.post(f"{url}/api/similar", content=body(), timeout=60,
                                  headers={"X-Memes-Request": "1", "Content-Type": "multipart/form-data; boundary=b"})
            status = response.status_code
        except httpx.TransportError:  # the server may close before the client finishes sending
            status = 413
    done.set()
    watcher.join()
    assert status == 413 and sent[0] == 400 << 20  # the client sent it all; the server kept at most the cap
    assert 0 < largest[0] <= MAX_BODY_BYTES, largest[0]


def test_a_read_answers_while_a_slow_upload_is_being_added(archive_dir, samples, cli, monkeypatch):
    """The add holds the writer's lock (here for seconds: each vision model takes 3 s to answer);
    the gallery's reads go on beside it, from what the catalog has committed."""
    import threading
    import time

    import httpx

    from tests.fake_ollama import FakeOllama

    assert cli("index", samples / "monday-flat.png").exit_code == 0
    with FakeOllama(delay=3.0) as ollama:
        monkeypatch.setenv("MEMES_ANNOTATE", "1")
        monkeypatch.setenv("OLLAMA_HOST", ollama.url)
        monkeypatch.setenv("MEMES_ANNOTATE_CONCURRENCY", "1")
        with _served() as url:
            httpx.get(f"{url}/api/search", params={"q": "monday"}, timeout=120)  # models loaded
            added: dict = {}

            def add():
                added["response"] = httpx.post(f"{url}/api/memes", files={"image": ("red.png", _png(), "image/png")},
                                               headers={"X-Memes-Request": "1"}, timeout=120)
                added["at"] = time.monotonic()

            adding = threading.Thread(target=add)
            adding.start()
            deadline = time.time() + 60
            while not (archive_dir / "added").exists() and time.time() < deadline:
                time.sleep(0.02)  # the upload is in the archive's hands
            time.sleep(0.5)
            started = time.monotonic()
            stats = httpx.get(f"{url}/api/stats", timeout=120)
            found = httpx.get(f"{url}/api/search", params={"q": "monday"}, timeout=120)
            answered = time.monotonic()
            adding.join(120)
    assert stats.status_code == 200 and found.status_code == 200
    assert found.json()["results"][0]["path"].endswith("monday-flat.png")
    assert added["response"].status_code == 200, added["response"].text
    assert answered < added["at"], "the reads waited for the write"
    print(f"stats + search answered in {answered - started:.2f} s while the upload was being added")


def test_the_gallery_says_when_nothing_matches_and_when_the_query_is_blank(client):
    nothing = client.get("/", params={"q": "xylophone submarine"})
    assert nothing.status_code == 200 and "Nothing matches “xylophone submarine”" in nothing.text
    assert 'id="results"' in nothing.text and 'class="card"' not in nothing.text.split('id="closest"')[0]
    blank = client.get("/", params={"q": "   "})
    assert blank.status_code == 200 and "Type some words to search for" in blank.text
    api = client.get("/api/search", params={"q": "   "})
    assert api.status_code == 422 and api.json()["error"].startswith("the query is empty")
    found = client.get("/api/search", params={"q": "zzzzqqqq"}).json()
    assert found["results"] == [] and "closest" in found


def test_snippets_mark_the_query_words_and_escape_the_rest(client, env):
    from memes.web.pages import marked

    assert str(marked('a <b>"x"</b> MONDAY again', "monday")) == \
        'a &lt;b&gt;&#34;x&#34;&lt;/b&gt; <mark>MONDAY</mark> again'
    page = client.get("/", params={"q": "monday again"})
    assert "<mark>MONDAY</mark> <mark>AGAIN</mark>" in page.text
    assert '<details class="why"><summary>why</summary>' in page.text  # scores behind a toggle
    upload = (env[1] / "monday-flat.png").read_bytes()
    meme_id = _id_of(client, env[1], "monday-flat.png")
    by_image = client.post("/search/image", files={"image": ("m.png", upload, "image/png")})
    assert f'This image is in the archive: <a href="/meme/{meme_id}">' in by_image.text
    assert client.post("/api/similar", files={"image": ("m.png", upload, "image/png")}).json()["itself"] == meme_id


def test_the_gallery_takes_the_same_query_language_and_filters(client, env):
    samples = env[1]
    found = client.get("/api/search", params={"q": "memes", "in": str(samples / "reposts")}).json()["results"]
    assert [r["path"].rsplit("/", 1)[-1] for r in found] == ["one-does-not-simply-small.jpg"]
    assert client.get("/api/search", params={"q": "memes -loading -simply"}).json()["results"] == []
    assert client.get("/api/search", params={"q": "memes", "after": "soon"}).status_code == 422
    assert client.get("/api/search", params={"q": "memes", "sort": "colour"}).status_code == 422
    page = client.get("/", params={"q": '"memes please"', "sort": "first-seen"})
    assert page.status_code == 200 and "loading.gif" in page.text and "<details class=\"filters\" open>" in page.text


def test_warming_up_loads_what_a_first_search_waits_for(env):
    from archive.config import resolve_config
    from memes.app import Archive

    archive = Archive(resolve_config({}), resident=True)
    assert archive.warm_up() == []
    text, image = archive.query_encoders  # the copies exported for queries where the archive has them

    def loaded(encoder) -> bool:
        from indexer.queryencoders import OnnxTextEncoder

        part = getattr(encoder, "texts", None) or encoder
        if isinstance(part, OnnxTextEncoder):
            return part._session is not None
        return (getattr(part, "_model", None) or getattr(part, "_loaded", None)) is not None

    assert loaded(text) and loaded(image), (type(text), type(image))


def test_download_gives_the_original_bytes_under_the_files_name(client, env):
    meme_id = _id_of(client, env[1], "monday-flat.png")
    got = client.get(f"/api/memes/{meme_id}/image", params={"download": "true"})
    assert got.status_code == 200 and got.content == (env[1] / "monday-flat.png").read_bytes()
    assert 'filename="monday-flat.png"' in got.headers["content-disposition"]
    assert "attachment" not in client.get(f"/api/memes/{meme_id}/image").headers.get("content-disposition", "")


def test_search_pages_give_every_result_once_with_the_total(client):
    every = [r["id"] for r in client.get("/api/search", params={"q": "meme", "k": 200}).json()["results"]]
    assert len(every) >= 3
    seen, page = [], 1
    while True:
        html = client.get("/", params={"q": "meme", "k": 2, "page": page}).text
        seen += re.findall(r'<li class="card" data-id="([0-9a-f]+)"', html.split('id="closest"')[0])
        assert f"{len(every)} results for" in html or page > 1
        if 'id="more"' not in html:
            break
        page += 1
    assert seen == every


def test_the_home_page_shows_counts_recent_memes_and_examples(client):
    from archive.readings import example_phrases

    home = client.get("/").text
    assert re.search(r'id="counts">\d+ memes · \d+ files', home) and 'id="recent"' in home
    assert home.count('<li class="card"') >= 3
    assert example_phrases(["THE ONE RING walks into mordor", "a cat", "zzqx ploff"]) == ["walks into mordor"]


def test_show_in_folder_and_the_cli_open_and_copy_use_the_desktops_tools(client, env, cli, tmp_path, monkeypatch):
    import stat

    tools = tmp_path / "tools"
    tools.mkdir()
    said = tmp_path / "said"
    for name in ("xdg-open", "xclip"):
        (tools / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {said}\n'
                                  + ("cat > " + str(tmp_path / "clip.png") + "\n" if name == "xclip" else ""))
        (tools / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    meme_id = _id_of(client, env[1], "monday-flat.png")
    refused = client.post(f"/api/memes/{meme_id}/reveal")  # the test client is not a browser on this machine
    assert refused.status_code == 403
    opened = cli("open", meme_id, "--folder")
    assert opened.exit_code == 0, opened.output
    copied = cli("search", "monday", "--copy")
    assert copied.exit_code == 0 and "to the clipboard" in copied.stderr, copied.output
    assert (tmp_path / "clip.png").read_bytes().startswith(b"\x89PNG")
    for _ in range(50):
        if said.exists() and "xdg-open" in said.read_text():
            break
        time.sleep(0.1)
    assert f"xdg-open {env[1]}" in said.read_text()
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("DISPLAY")
    none = cli("search", "monday", "--copy")
    assert none.exit_code != 0 and "no clipboard tool here" in none.stderr and "Traceback" not in none.output


def test_a_record_without_an_image_gets_a_placeholder_and_counts_read_right(archive_dir, cli):
    from memes.web.pages import plural

    record = Path(__file__).parent / "fixtures" / "000_3d4397e866a55657.txt"
    assert cli("import", record).exit_code == 0
    client = gallery_client()
    meme_id = client.get("/api/memes").json()["memes"][0]["id"]
    assert client.get(f"/api/memes/{meme_id}/thumbnail").status_code == 404
    for page in ("/", "/browse", f"/meme/{meme_id}", "/?q=" + "cat"):
        html = client.get(page).text
        assert f"/api/memes/{meme_id}/thumbnail" not in html and f"/api/memes/{meme_id}/image" not in html, page
    assert 'class="placeholder"' in client.get("/browse").text
    assert "1 meme," in client.get("/browse").text
    assert [plural(n, "meme") for n in (0, 1, 2)] == ["0 memes", "1 meme", "2 memes"]
