"""Indexing throughput on this machine: each stage alone, then end to end, in one run.

usage: python bench/index_throughput.py IMAGE_DIR [--limit N] [--clip-model ViT-B-16-SigLIP] [--end-to-end-only] [--no-group]

The image model is the given open_clip architecture with random weights (its speed does not
depend on the weights, and no weights can be downloaded here). No vision LLM is involved.
Prints one JSON object: images/s per stage, end to end, and the peak memory of the process.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archive.catalog import Catalog  # noqa: E402
from archive.config import resolve_config  # noqa: E402
from archive.model import Meme, OcrText  # noqa: E402
from archive.vectors import VectorStore  # noqa: E402
from indexer.encoders import ClipEncoder, SentenceEncoder  # noqa: E402
from indexer.imageio import load_image, model_input  # noqa: E402
from indexer.ocr import MemeOcr  # noqa: E402
from indexer.scan import scan  # noqa: E402


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 2) if seconds else float("inf")


def timed(fn):
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    print(f"  stage done in {seconds:.1f}s", file=sys.stderr, flush=True)
    return out, seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("images", type=Path)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--clip-model", default="ViT-B-16-SigLIP")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--end-to-end-only", action="store_true", help="skip timing each stage alone")
    ap.add_argument("--no-group", action="store_true", help="repost grouping off (what grouping costs)")
    args = ap.parse_args()
    files = [f.path for f in scan([args.images]) if not f.problem]
    files = files[: args.limit] if args.limit else files
    n = len(files)
    report: dict = {"images": n, "cpus": os.cpu_count(), "clip_model": args.clip_model + " (random weights)"}
    stages = {} if args.end_to_end_only else stage_rates(files, args, report)
    end_to_end(files, args, report)
    if stages:
        report["end_to_end_vs_slowest_stage"] = round(report["end_to_end_per_s"] / stages[report["slowest_stage"]], 2)
        # Every stage alone keeps all the cores busy, so in one run they share them: the rate a
        # perfect pipeline reaches is the one where each image costs the sum of its stages' times.
        shared = 1 / sum(1 / v for v in stages.values())
        report["shared_cores_bound_per_s"] = round(shared, 2)
        report["end_to_end_vs_shared_cores_bound"] = round(report["end_to_end_per_s"] / shared, 2)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(report, indent=1))


def stage_rates(files: list[Path], args, report: dict) -> dict[str, float]:
    """Each stage alone over every file, into `report`; returns the stages' rates."""
    n = len(files)

    loaded, t = timed(lambda: [load_image(f) for f in files])
    report["decode_per_s"] = rate(n, t)
    pictures = [model_input(x.rgb) for x in loaded]

    ocr = MemeOcr()
    with ThreadPoolExecutor(args.workers) as pool:
        texts, t = timed(lambda: list(pool.map(lambda x: ocr.read(x.rgb), loaded)))
    report["ocr_per_s"] = rate(n, t)

    clip = ClipEncoder(args.clip_model, None)
    clip.load()
    clip.encode_images(pictures[:2])  # warm up
    _, t = timed(lambda: clip.encode_images(pictures))
    report["image_vectors_per_s"] = rate(n, t)

    text_encoder = SentenceEncoder()
    text_encoder.encode_texts(["warm up"])
    text_vectors, t = timed(lambda: text_encoder.encode_texts(texts))
    report["text_vectors_per_s"] = rate(n, t)

    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(Path(tmp) / "c.sqlite3")
        space = VectorStore(Path(tmp) / "v", catalog).create_space("ocr_text", "m", text_vectors.shape[1])

        def write():
            first = {x.content_hash: i for i, x in reversed(list(enumerate(loaded)))}  # a set may repeat a file
            rows = sorted(first.values())
            with catalog.transaction():
                for i in rows:
                    catalog.save(Meme(id=f"{i:016x}", content_hash=loaded[i].content_hash,
                                      sections=[OcrText("tesseract", texts[i])]))
            ids = [f"{i:016x}" for i in rows]
            space.upsert(ids, text_vectors[rows], [{"meme_id": i} for i in ids])
        _, t = timed(write)
        report["store_writes_per_s"] = rate(n, t)

    stages = {k: v for k, v in report.items() if k.endswith("_per_s")}
    report["slowest_stage"] = min(stages, key=stages.get)
    return stages


def end_to_end(files: list[Path], args, report: dict) -> None:
    """`Archive.index` of the files into a new archive, into `report`."""
    n = len(files)
    with tempfile.TemporaryDirectory() as tmp:
        from memes.app import Archive

        config = resolve_config({"archive": tmp, "clip_model": args.clip_model,
                                 "group_reposts": not args.no_group}, environ={})
        archive = Archive(config)  # no pretrained tag: random weights, no download
        found = [f for f in archive.scan([args.images]) if not f.problem][:n]
        _, t = timed(lambda: list(archive.index(found)))
        report["end_to_end_per_s"] = rate(n, t)
        report["end_to_end_seconds"] = round(t, 1)
        report["memes_indexed"] = archive.catalog.stats()["memes"]


if __name__ == "__main__":
    main()
