"""How fast `memes reindex --text-only` re-embeds the records of an archive.

usage: python bench/reindex_text.py [--records 300] [--shape ocr|light|heavy|all]

Builds a fresh archive of RECORDS records (no images), then times `Archive.reindex(text_only=True)`
(the use case behind `memes reindex --text-only`), models loaded beforehand. Record shapes:
  ocr:   OCR text of ~25 words only, as indexing writes with no vision model;
  light: OCR text of ~25 words and a one-paragraph description (~70 words), as indexing
         writes with one short-description annotator;
  heavy: like the seed record in tests/fixtures (a short description and a 1,300-word analysis,
         17 passages), as the default annotators write.
Every record's texts differ (words are drawn at random from the seed's), so nothing is cached.
Prints one JSON object: records/s and text passages/s per shape.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archive.config import resolve_config  # noqa: E402
from archive.model import Annotation, Meme, OcrText  # noqa: E402
from archive.recordfile import read_record_file  # noqa: E402
from indexer.passages import split_passages  # noqa: E402
from memes.app import Archive  # noqa: E402

SEED = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "000_3d4397e866a55657.txt"


def _shuffled(text: str, rnd: random.Random, words: int | None = None) -> str:
    """Text of the same shape (lines, lengths) with words drawn at random from the seed."""
    pool = text.split()
    if words is not None:
        return " ".join(rnd.choice(pool) for _ in range(words))
    return "\n".join(" ".join(rnd.choice(pool) for _ in line.split()) for line in text.splitlines())


def _records(shape: str, n: int) -> list[Meme]:
    seed = read_record_file(SEED)
    rnd = random.Random(3)
    memes = []
    for i in range(n):
        if shape == "ocr":
            sections = [OcrText("tesseract", _shuffled(seed.annotations[0].text, rnd, 25))]
        elif shape == "light":
            sections = [OcrText("tesseract", _shuffled(seed.annotations[0].text, rnd, 25)),
                        Annotation("simple-description", "llama3.2-vision_11b",
                                   _shuffled(seed.annotations[0].text, rnd, 70))]
        else:
            sections = [Annotation(a.kind, a.source, _shuffled(a.text, rnd)) for a in seed.annotations]
            sections.append(OcrText("tesseract", _shuffled(seed.annotations[0].text, rnd, 25)))
        memes.append(Meme(id=f"{i:016x}", first_seen=seed.first_seen, sections=sections))
    return memes


def measure(shape: str, n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        archive = Archive(resolve_config({"archive": Path(tmp) / "archive"}, environ={}))
        memes = _records(shape, n)
        with archive.catalog.transaction():
            for meme in memes:
                archive.catalog.save(meme)
        passages = sum(len(split_passages(a.text)) for m in memes for a in m.annotations) + n
        archive.text_encoder.encode_texts(["warm up"])
        start = time.perf_counter()
        archive.reindex(text_only=True)
        seconds = time.perf_counter() - start
        kept = archive.catalog.copies.count("annotation_text") + archive.catalog.copies.count("ocr_text")
        assert kept == passages, (kept, passages)
        return {"records": n, "text_passages": passages, "seconds": round(seconds, 2),
                "records_per_s": round(n / seconds, 1), "passages_per_s": round(passages / seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=300)
    ap.add_argument("--shape", choices=["ocr", "light", "heavy", "all"], default="all")
    args = ap.parse_args()
    shapes = ["ocr", "light", "heavy"] if args.shape == "all" else [args.shape]
    print(json.dumps({shape: measure(shape, args.records if shape != "heavy" else max(20, args.records // 10))
                      for shape in shapes}, indent=1))


if __name__ == "__main__":
    main()
