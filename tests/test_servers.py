"""Several indexers at once against the servers (PostgreSQL for records, `chroma run` for vectors)."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLES
from tests.test_e2e import _distinct_memes, _memes

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["servers"], indirect=True)]


def test_two_sharded_indexers_at_once_take_every_file_exactly_once(backend, archive_dir, tmp_path):
    from archive.catalog import Catalog

    folder = tmp_path / "collection"
    _distinct_memes(folder, 12)
    for sample in SAMPLES.iterdir():
        if sample.is_file():
            shutil.copy(sample, folder / sample.name)
    shutil.copy(folder / "meme-00.jpg", folder / "meme-00-again.jpg")  # the same bytes twice: one shard takes both
    files = sorted(p for p in folder.iterdir() if p.is_file())
    contents = {hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    env = {**os.environ, "MEMES_BATCH_SIZE": "2", "MEMES_WORKERS": "1"}
    exe = Path(sys.executable).with_name("memes")
    runs = [subprocess.Popen([str(exe), "--quiet", "index", str(folder), "--shard", f"{n}/2", "--json"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in (1, 2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (_, stderr) in zip(runs, outputs):
        assert run.returncode == 0, stderr
        assert "Traceback" not in stderr
    reports = [json.loads(stdout) for stdout, _ in outputs]

    taken = [r["new_memes"] + r["new_sightings"] for r in reports]
    assert all(t > 0 for t in taken)  # both did a share
    assert sum(taken) == len(files)
    assert [r["other_shards"] for r in reports] == [taken[1], taken[0]]
    assert all(r["skipped"] == 0 for r in reports)

    catalog = Catalog(backend.records_url)
    assert sorted(catalog.sighting_paths()) == [str(p) for p in files]  # every file, once
    memes = [catalog.require(i) for i in catalog.ids()]
    assert sorted(m.content_hash for m in memes) == sorted(contents)  # every picture, once
    for meme in memes:
        for sighting in meme.sightings:
            assert hashlib.sha256(Path(sighting.path).read_bytes()).hexdigest() == meme.content_hash
    assert len(catalog.require(catalog.resolve(str(folder / "meme-00.jpg"))).sightings) == 2

    stats = json.loads(_memes(env, "stats", "--json").stdout)
    assert stats["vectors"]["image"]["vectors"] == len(contents)
    assert stats["pending_vectors"]["image"] == 0
    check = _memes(env, "doctor", "--check", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    found = json.loads(_memes(env, "search", "llama mistral chart", "--json", "-k", "3").stdout)
    assert found["results"][0]["path"].endswith("llama-mistral-chart.png")


def test_shards_need_servers_and_a_valid_share(backend, cli, samples, monkeypatch):
    bad = cli("index", samples, "--shard", "3/2")
    assert bad.exit_code == 2 and "1 <= I <= N" in bad.output
    for name in ("MEMES_RECORDS_URL", "MEMES_CHROMA_URL"):
        monkeypatch.delenv(name)
    embedded = cli("index", samples, "--shard", "1/2")
    assert embedded.exit_code == 1 and "--shard needs records and vectors on servers" in embedded.stderr


class _TokenProxy:
    """What the README suggests in front of `chroma run`: a proxy that wants a bearer token and
    forwards what carries it. Counts the requests it let through."""

    def __init__(self, upstream: str, token: str):
        import http.client
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        target = urlsplit(upstream)
        proxy = self
        self.passed = self.refused = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Authorization") != f"Bearer {token}":
                    proxy.refused += 1
                    return self.reply(401, [("Content-Type", "application/json")], b'{"error": "Unauthorized"}')
                proxy.passed += 1
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "authorization", "content-length")}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                answer = upstream.getresponse()
                self.reply(answer.status, answer.getheaders(), answer.read())
                upstream.close()

            def reply(self, status, headers, data):
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = forward

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_a_token_reaches_a_proxy_in_front_of_chroma(backend, cli, samples, monkeypatch):
    with _TokenProxy(backend.chroma_url, "s3cret") as proxy:
        monkeypatch.setenv("MEMES_CHROMA_URL", proxy.url)
        refused = cli("index", samples)
        assert refused.exit_code == 1 and proxy.passed == 0 and proxy.refused > 0
        assert refused.stderr.startswith(f"Error: cannot use the Chroma server at {proxy.url}")
        assert len(refused.stderr.strip().splitlines()) == 1
        monkeypatch.setenv("MEMES_CHROMA_TOKEN", "s3cret")
        indexed = cli("index", samples)
        assert indexed.exit_code == 0, indexed.output
        found = cli("search", "llama mistral chart", "--json", "-k", "3")
        assert json.loads(found.stdout)["results"][0]["path"].endswith("llama-mistral-chart.png")
        assert proxy.passed > 0


def test_a_server_failing_mid_run_is_a_domain_error_naming_it(backend, tmp_path):
    """The stores translate their servers' failures (`StoreUnavailable`); no edge needs to know
    which library raised what."""
    import numpy as np
    import psycopg

    from archive.catalog import Catalog
    from archive.errors import StoreUnavailable
    from tests.conftest import TEST_CHROMA_URL, TEST_RECORDS_URL, _chroma_admin

    catalog = Catalog(backend.records_url)
    store = backend.store(tmp_path, catalog)
    space = store.create_space("image", "some-model", 4)
    space.query(np.ones(4, dtype=np.float32), 3)
    with psycopg.connect(TEST_RECORDS_URL, autocommit=True) as admin:  # the server drops our connection
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                      (backend.chroma_database,))
    with pytest.raises(StoreUnavailable, match=r"^the records server failed \(\w+: .+\); everything committed"):
        catalog.ids()
    _chroma_admin(TEST_CHROMA_URL).delete_database(backend.chroma_database)  # the vectors' database is gone
    with pytest.raises(StoreUnavailable, match=r"^the vector store failed \(\w+: .+\); everything committed"):
        space.count()
