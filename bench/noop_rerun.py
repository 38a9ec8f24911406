"""A re-run of `memes index` over unchanged files: how long does it take to do nothing?

usage: python bench/noop_rerun.py [--files 10000] [--runs 3]

Writes FILES small distinct images, records each as indexed in a fresh archive (a sighting with
the file's size and modification time, and vectors marked made by the configured models: the
state a finished run leaves; indexing 10,000 images for real takes hours on 2 cores), then times
the installed `memes --quiet index DIR --json` as a subprocess, Python start-up included.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archive.config import resolve_config  # noqa: E402
from archive.model import Meme, OcrText, Sighting, utc_now  # noqa: E402
from memes.app import Archive  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "memes"
        for n in range(args.files):
            sub = folder / f"{n // 1000:02d}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"{n:05d}.png").write_bytes(b"\x89PNG fake " + n.to_bytes(4, "big"))  # never read
        archive = Archive(resolve_config({"archive": Path(tmp) / "archive"}, environ={}))
        catalog, now = archive.catalog, utc_now()
        models = {"ocr_text": archive.text_encoder.model_id, "annotation_text": archive.text_encoder.model_id,
                  "image": archive.image_encoder.model_id}
        ids = []
        with catalog.transaction():
            for path in sorted(folder.rglob("*.png")):
                st = path.stat()
                meme_id = f"{len(ids):016x}"
                catalog.save(Meme(id=meme_id, content_hash=meme_id * 4, first_seen=now,
                                  sections=[OcrText("tesseract", f"caption {meme_id}")],
                                  sightings=[Sighting(str(path), now, st.st_size, st.st_mtime)]))
                ids.append(meme_id)
        for space, model in models.items():
            catalog.marks.mark(ids, space, model)
        exe = Path(sys.executable).with_name("memes")
        env = {**os.environ, "MEMES_ARCHIVE": str(Path(tmp) / "archive"), "MEMES_ANNOTATE": "0"}
        times, summary = [], {}
        for _ in range(args.runs):
            start = time.perf_counter()
            out = subprocess.run([str(exe), "--quiet", "index", str(folder), "--json"], env=env,
                                 capture_output=True, text=True, check=True)
            times.append(time.perf_counter() - start)
            summary = json.loads(out.stdout)
        assert summary["unchanged"] == args.files, summary
        print(json.dumps({"files": args.files, "runs": args.runs, "median_s": round(statistics.median(times), 2),
                          "all_s": [round(t, 2) for t in times], "unchanged": summary["unchanged"]}))


if __name__ == "__main__":
    main()
