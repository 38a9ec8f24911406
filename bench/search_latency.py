"""Warm search latency (and a known-item sanity figure) on an indexed archive.

usage: python bench/search_latency.py ARCHIVE_DIR TRUTH_JSONL [--clip-model M] [--repeat 3]

TRUTH_JSONL is render_memes.py's truth file for the images indexed into the archive. Each
query is 3-6 consecutive words of a caption. The first query loads the models (reported as
cold); the rest are warm. Prints one JSON object with median and p95 milliseconds and the
share of queries whose meme came first (Recall@1) and in the top 10.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archive.config import resolve_config  # noqa: E402
from memes.app import Archive  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("archive", type=Path)
    ap.add_argument("truth", type=Path)
    ap.add_argument("--clip-model", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--text-only", action="store_true", help="leave the image signal out")
    args = ap.parse_args()
    rnd = random.Random(7)
    rows = [json.loads(line) for line in args.truth.open() if '"variant_of": null' in line]
    queries = []
    for row in rows:
        words = row["text"].split()
        size = min(len(words), rnd.randint(3, 6))
        start = rnd.randint(0, len(words) - size)
        queries.append((" ".join(words[start:start + size]).lower(), row["file"]))
    archive = Archive(resolve_config({"archive": args.archive, "clip_model": args.clip_model}))
    with archive.searcher() as searcher:
        if args.text_only:
            searcher.image_encoder = None
        report = measure(searcher, queries, args.repeat)
    print(json.dumps({"memes": archive.catalog.stats()["memes"], "queries": len(queries), **report}, indent=1))


def measure(searcher, queries: list[tuple[str, str]], repeat: int) -> dict:
    start = time.perf_counter()
    searcher.search("warm up", 10)
    cold_ms = (time.perf_counter() - start) * 1000
    timings, first, top10 = [], 0, 0
    signals: set[str] = set()
    for _ in range(repeat):
        for query, file in queries:
            t = time.perf_counter()
            results = searcher.search(query, 10)
            timings.append((time.perf_counter() - t) * 1000)
            paths = [Path(r.path or "").name for r in results]
            first += paths[:1] == [file]
            top10 += file in paths
            signals.update(*(r.signals for r in results))
    n = len(timings)
    timings.sort()
    return {"runs": n, "signals": sorted(signals), "cold_first_query_ms": round(cold_ms),
            "warm_median_ms": round(statistics.median(timings), 1),
            "warm_p95_ms": round(timings[int(n * 0.95) - 1], 1),
            "recall_at_1": round(first / n, 3), "recall_at_10": round(top10 / n, 3)}

if __name__ == "__main__":
    main()
