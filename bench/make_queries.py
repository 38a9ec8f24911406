"""Labelled queries for a set rendered by the shared `render_memes.py` (see search/evaluate.py).

usage: python bench/make_queries.py OUT/truth.jsonl [--reposts-per-alteration N] > OUT/queries.jsonl

One known-item query per original (3-6 remembered caption words, every other one with a word
left out or misspelt), one repost query per altered copy (`--variants`), and two same-template
queries per template. Index only the originals (`variant_of` null) before `memes eval`.
`--reposts-per-alteration N` keeps a random N repost queries of each alteration (each costs an
OCR run when evaluated).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search.evaluate import REPOST, build_queries, read_jsonl  # noqa: E402

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("truth", type=Path)
    ap.add_argument("--reposts-per-alteration", type=int, default=0)
    args = ap.parse_args()
    queries = build_queries(read_jsonl(args.truth))
    if args.reposts_per_alteration:
        rnd = random.Random(5)
        by_alteration: dict[str, list[dict]] = {}
        for q in queries:
            if q["type"] == REPOST:
                by_alteration.setdefault(q["alteration"], []).append(q)
        keep = {q["id"] for qs in by_alteration.values() for q in rnd.sample(qs, min(len(qs), args.reposts_per_alteration))}
        queries = [q for q in queries if q["type"] != REPOST or q["id"] in keep]
    for query in queries:
        print(json.dumps(query))


if __name__ == "__main__":
    main()
