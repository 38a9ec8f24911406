"""Does indexing overlap the slow vision-model calls with the CPU stages?

usage: python bench/annotate_overlap.py IMAGE_DIR [--count 20] [--delay 2] [--clip-model ViT-B-16-SigLIP]

Runs `index` on the same images into fresh archives, against the project's fake Ollama server
(tests/fake_ollama.py) answering each request after a fixed delay, with one annotator:
  - CPU stages only (no annotation);
  - annotation with 1 request in flight (serial);
  - annotation with 4 requests in flight.
The image model is the given architecture with random weights. Prints one JSON object of wall
times; with overlap, the 4-in-flight run takes about max(CPU, count*delay/4) rather than the sum.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archive.config import resolve_config  # noqa: E402
from indexer.annotate import SIMPLE_PROMPT  # noqa: E402
from memes.app import Archive  # noqa: E402
from tests.fake_ollama import FakeOllama  # noqa: E402


def run(files, clip_model: str, annotate: bool, concurrency: int, host: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        config = resolve_config({"archive": tmp, "clip_model": clip_model}, environ={})
        config = replace(config, ollama_host=host, annotate_concurrency=concurrency,
                         annotators=(("simple-description", "llama3.2-vision", SIMPLE_PROMPT),))
        archive = Archive(config)
        archive.image_encoder.load()  # model loading is not what is measured
        archive.text_encoder.encode_texts(["warm up"])
        found = [f for f in archive.scan(files)]
        start = time.perf_counter()
        events = list(archive.index(found, annotate=annotate))
        seconds = time.perf_counter() - start
        jobs = archive.catalog.jobs.stats({})["by_annotator"]
        if annotate:
            assert sum(j["done"] for j in jobs.values()) == len(files), (jobs, events[-3:])
        return round(seconds, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("images", type=Path)
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--delay", type=float, default=2.0)
    ap.add_argument("--clip-model", default="ViT-B-16-SigLIP")
    args = ap.parse_args()
    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".png"))[: args.count]
    with FakeOllama(delay=args.delay) as server:
        cpu = run(files, args.clip_model, False, 1, server.url)
        serial = run(files, args.clip_model, True, 1, server.url)
        concurrent = run(files, args.clip_model, True, 4, server.url)
    model_alone = len(files) * args.delay
    print(json.dumps({
        "images": len(files), "delay_s_per_request": args.delay, "clip_model": args.clip_model + " (random weights)",
        "cpu_stages_only_s": cpu, "annotation_alone_serial_s": model_alone,
        "index_with_1_in_flight_s": serial, "index_with_4_in_flight_s": concurrent,
        "sum_if_not_overlapped_s": round(model_alone / 4 + cpu, 1),
        "concurrent_vs_serial": round(concurrent / serial, 2),
    }, indent=1))


if __name__ == "__main__":
    main()
