"""Warm response time of the gallery's search API on an archive, through a real HTTP server.

usage: python bench/gallery_latency.py ARCHIVE_DIR [--query "one does not simply"] [--runs 30]

Starts `memes serve` on a free loopback port (it loads the models before listening), asks
/api/search once to warm up, then RUNS more times; prints the median and p95 in milliseconds.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("archive", type=Path)
    ap.add_argument("--query", default="one does not simply")
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("memes")
    server = subprocess.Popen([str(exe), "--archive", str(args.archive), "serve", "--port", str(port)],
                              env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/api/search?" + urllib.parse.urlencode({"q": args.query, "k": 20})
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(base + "/api/stats", timeout=5).read()
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise SystemExit("memes serve did not start")
                time.sleep(0.3)
        urllib.request.urlopen(url).read()
        timings = []
        for _ in range(args.runs):
            start = time.perf_counter()
            body = urllib.request.urlopen(url).read()
            timings.append((time.perf_counter() - start) * 1000)
        timings.sort()
        print(json.dumps({"archive": str(args.archive), "query": args.query, "runs": args.runs,
                          "results": len(json.loads(body)["results"]),
                          "warm_median_ms": round(statistics.median(timings), 1),
                          "warm_p95_ms": round(timings[int(len(timings) * 0.95) - 1], 1)}, indent=1))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
