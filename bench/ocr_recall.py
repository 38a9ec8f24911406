"""OCR word recall on rendered memes.

usage: python bench/ocr_recall.py RENDER_DIR [--limit N] [--engines rapidocr,tesseract]
RENDER_DIR is the output of ../shared/tools/render_memes.py (images/ and truth.jsonl).
Word recall: the share of the caption's words (lower case, punctuation dropped) that appear
among the words OCR read (every engine's reading merged: the first whole, then the words the
others add), counted with multiplicity. Reports the median CPU-seconds per image too (this
process and tesseract's; PP-OCR runs in this process on one thread).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.imageio import load_image  # noqa: E402
from indexer.ocr import ENGINES, MemeOcr, words  # noqa: E402


def recall(truth: str, found: str) -> tuple[int, int]:
    want, have = Counter(words(truth)), Counter(words(found))
    return sum(min(n, have[w]) for w, n in want.items()), sum(want.values())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("render_dir", type=Path)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--engines", default=",".join(ENGINES))
    args = ap.parse_args()
    rows = [json.loads(line) for line in (args.render_dir / "truth.jsonl").open()]
    rows = [r for r in rows if not r.get("variant_of")]
    if args.limit:
        rows = rows[: args.limit]
    ocr = MemeOcr(engines=args.engines.split(","))
    hit = total = 0
    seconds = []
    for row in rows:
        img = load_image(args.render_dir / "images" / row["file"]).rgb
        before = os.times()
        text = ocr.read(img)
        after = os.times()
        seconds.append(sum(after[:4]) - sum(before[:4]))  # this process and tesseract's
        h, t = recall(row["text"], text)
        hit, total = hit + h, total + t
    print(json.dumps({"engines": args.engines, "images": len(rows), "word_recall": round(hit / total, 4),
                      "median_cpu_s_per_image": round(statistics.median(seconds), 3)}))


if __name__ == "__main__":
    main()
