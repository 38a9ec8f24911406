"""A million vectors: a Chroma server against the embedded default, measured in one run.

usage: python bench/million_vectors.py [--n 1000000] [--dim 512] [--checkpoints 100000,1000000]
                                       [--queries 200] [--batch 5000] [--backends server,embedded]

For each backend, in a child process of its own (so one's memory does not count for the
other), it loads N synthetic unit vectors with ids and metadata (`meme_id`, `kind`, as the
tool writes them) into one cosine HNSW collection, as `archive.vectors` creates it, in
batches, and at each checkpoint reports the insert rate since the last one and the warm query
latency (k=20; p50/p95 over `--queries` queries after 20 unmeasured ones). The server backend
starts a real `chroma run` on a free loopback port; its memory is the server process's
resident set. The embedded backend's memory is the child's resident set less what it held
before opening Chroma. Vectors are clustered (4,096 centres plus noise), like embeddings of
many templates, rather than uniform noise. Prints one JSON object; progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def vectors(start: int, count: int, dim: int, centres):
    import numpy as np

    rng = np.random.default_rng(start)
    picks = rng.integers(0, len(centres), count)
    data = centres[picks] + rng.normal(0, 0.35 / dim ** 0.5, (count, dim)).astype(np.float32)
    return (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)


def load_and_query(kind: str, where: str, args, out) -> None:
    """Runs in a child process: fill one collection, measuring as it goes."""
    import numpy as np
    import chromadb
    from chromadb.config import Settings

    baseline = rss_mb(os.getpid())
    settings = Settings(anonymized_telemetry=False)
    if kind == "server":
        host, port = where.rsplit(":", 1)
        client = chromadb.HttpClient(host=host, port=int(port), settings=settings)
    else:
        client = chromadb.PersistentClient(path=where, settings=settings)
    batch = min(args.batch, client.get_max_batch_size())
    collection = client.create_collection(
        "image", embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
        metadata={"model": "synthetic", "dim": args.dim, "schema": 1})
    centres = np.random.default_rng(0).normal(size=(4096, args.dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    queries = vectors(10**9, args.queries + 20, args.dim, centres)
    report = {"checkpoints": []}
    loaded, since, began = 0, time.perf_counter(), time.perf_counter()
    for checkpoint in args.checkpoints:
        while loaded < checkpoint:
            count = min(batch, checkpoint - loaded)
            data = vectors(loaded, count, args.dim, centres)
            ids = [f"m{loaded + i:07d}" for i in range(count)]
            metas = [{"meme_id": f"m{loaded + i:07d}", "kind": "image"} for i in range(count)]
            collection.add(ids=ids, embeddings=data, metadatas=metas)
            loaded += count
            if loaded % 50_000 == 0:
                print(f"{kind}: {loaded:,} loaded, {loaded / (time.perf_counter() - began):,.0f}/s",
                      file=sys.stderr, flush=True)
        inserted = time.perf_counter() - since
        times = []
        for n, q in enumerate(queries):
            t = time.perf_counter()
            found = collection.query(query_embeddings=[q], n_results=20, include=["distances", "metadatas"])
            if n >= 20:
                times.append((time.perf_counter() - t) * 1000)
            assert len(found["ids"][0]) == 20
        times.sort()
        point = {
            "vectors": loaded,
            "count_seen": collection.count(),
            "insert_per_s": round((checkpoint - (report["checkpoints"][-1]["vectors"]
                                                 if report["checkpoints"] else 0)) / inserted),
            "query_ms_p50": round(statistics.median(times), 2),
            "query_ms_p95": round(times[int(0.95 * (len(times) - 1))], 2),
            "client_rss_mb": round(rss_mb(os.getpid())),
            "client_rss_growth_mb": round(rss_mb(os.getpid()) - baseline),
        }
        out.put(("checkpoint", point))
        report["checkpoints"].append(point)
        print(f"{kind}: {json.dumps(point)}", file=sys.stderr, flush=True)
        since = time.perf_counter()
    out.put(("done", None))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_backend(kind: str, args, work: Path) -> dict:
    server = None
    path = work / kind
    try:
        if kind == "server":
            port = free_port()
            log = open(work / "chroma.log", "w")
            server = subprocess.Popen([str(VENV_BIN / "chroma"), "run", "--path", str(path), "--host", "127.0.0.1",
                                       "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
            for _ in range(150):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            where = f"127.0.0.1:{port}"
        else:
            where = str(path)
        queue = multiprocessing.get_context("spawn").Queue()
        child = multiprocessing.get_context("spawn").Process(target=load_and_query, args=(kind, where, args, queue))
        child.start()
        points = []
        while True:
            tag, point = queue.get()
            if tag == "done":
                break
            point["server_rss_mb"] = round(rss_mb(server.pid)) if server else None
            point["disk_mb"] = round(disk_mb(path))
            points.append(point)
        child.join()
        return {"backend": kind, "checkpoints": points}
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--checkpoints", default="100000,1000000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--backends", default="server,embedded")
    ap.add_argument("--work", type=Path, default=None, help="where the data go (default: a temporary directory)")
    args = ap.parse_args()
    args.checkpoints = sorted({int(c) for c in args.checkpoints.split(",") if int(c) <= args.n} | {args.n})
    work = Path(tempfile.mkdtemp(prefix="memes-million-", dir=args.work))
    try:
        results = [run_backend(kind, args, work) for kind in args.backends.split(",")]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"n": args.n, "dim": args.dim, "batch": args.batch, "cores": os.cpu_count(),
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
