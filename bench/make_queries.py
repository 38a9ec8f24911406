"""Labelled queries for a set rendered by the shared `render_memes.py` (see search/evaluate.py).

usage: python bench/make_queries.py OUT/truth.jsonl > OUT/queries.jsonl

One known-item query per original (3-6 remembered caption words, every other one with a word
left out or misspelt), one repost query per altered copy (`--variants`), and two same-template
queries per template. Index only the originals (`variant_of` null) before `memes eval`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search.evaluate import build_queries, read_jsonl  # noqa: E402

if __name__ == "__main__":
    for query in build_queries(read_jsonl(Path(sys.argv[1]))):
        print(json.dumps(query))
