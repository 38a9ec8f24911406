"""What keeping an archive safe costs, on this machine, in one run.

usage: python bench/durability.py [--memes 20000] [--seed-record ../shared/seeds/000_3d4397e866a55657.txt]

Builds a catalog of N memes whose records are the size of real ones (the annotations and OCR of
the given record, or of a synthetic one of the seed's size, each meme's text made its own) and
an embedded vector index of N 384-d text vectors and N 768-d picture vectors (random; their
speed does not depend on them), then measures:
- writing the records/ folder for every meme (what the first writing command after an upgrade,
  or an index run of N new memes, adds at its end), and for one changed meme;
- the end-of-command checkpoint; `memes backup` (SQLite's online backup) and a restore;
- `memes rebuild` of the catalog from the records (without vectors);
- the vector-index check: sealed (every search), and unsealed (the child-process probe, once
  after anything but this tool changed the files).
Prints one JSON object (seconds; medians of 5 where cheap).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archive import recordsdir, vectorcheck  # noqa: E402
from archive.backup import make_backup, restore_backup  # noqa: E402
from archive.catalog import Catalog  # noqa: E402
from archive.model import Annotation, Meme, OcrText, Sighting, utc_now  # noqa: E402
from archive.recordfile import parse_record  # noqa: E402
from archive.vectors import VectorStore  # noqa: E402
from indexer.rebuild import rebuild_catalog  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 3)


def median_of(fn, runs: int = 5) -> float:
    return round(statistics.median(timed(fn) for _ in range(runs)), 4)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memes", type=int, default=20000)
    parser.add_argument("--seed-record", type=Path)
    args = parser.parse_args()
    if args.seed_record and args.seed_record.exists():
        template = parse_record(args.seed_record.read_text())
    else:
        template = Meme(id="", sections=[Annotation("simple-description", "llava", "words " * 120),
                                         Annotation("detailed-analysis", "gemma3", "more words " * 900),
                                         OcrText("tesseract", "ocr text " * 60)])
    out: dict = {"memes": args.memes}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "archive"
        root.mkdir()
        catalog = Catalog(root / "catalog.sqlite3")
        ids = [hashlib.sha256(str(n).encode()).hexdigest()[:16] for n in range(args.memes)]  # as ids are
        now = utc_now()
        with catalog.transaction():
            for n, meme_id in enumerate(ids):
                sections = [type(s)(**{**s.__dict__, "text": f"{s.text} meme {n}"}) for s in template.sections]
                catalog.save(Meme(id=meme_id, content_hash=meme_id * 4, phash=meme_id, first_seen=now,
                                  sections=sections, sightings=[Sighting(f"/memes/{meme_id}.jpg", now)]))
        store = VectorStore(root / "vectors", catalog)
        rng = np.random.default_rng(0)
        for name, dim in (("ocr_text", 384), ("image", 768)):
            space = store.create_space(name, "bench", dim)
            for start in range(0, len(ids), 5000):
                batch = ids[start:start + 5000]
                space.upsert(batch, rng.standard_normal((len(batch), dim)).astype(np.float32),
                             [{"meme_id": i} for i in batch])
        store.close()
        folder = root / recordsdir.RECORDS_DIR
        out["records_all_s"] = timed(lambda: recordsdir.write_changed(catalog, folder))
        out["records_per_meme_ms"] = round(1000 * out["records_all_s"] / len(ids), 3)
        out["records_bytes"] = sum(p.stat().st_size for p in folder.glob("*/*.txt"))

        def one_change():
            catalog.add_sighting(ids[7], Sighting(f"/memes/again-{time.time_ns()}.jpg", now))
            recordsdir.write_changed(catalog, folder)

        out["records_one_change_s"] = median_of(one_change)
        out["checkpoint_s"] = median_of(catalog.checkpoint)
        out["catalog_bytes"] = (root / "catalog.sqlite3").stat().st_size
        out["backup_s"] = timed(lambda: make_backup(root, Path(tmp) / "backup"))
        out["restore_s"] = timed(lambda: restore_backup(Path(tmp) / "backup", Path(tmp) / "restored"))
        out["rebuild_from_records_s"] = timed(lambda: rebuild_catalog(folder, Path(tmp) / "rebuilt.sqlite3", 1))
        vectors = root / "vectors"
        out["index_check_sealed_s"] = median_of(lambda: vectorcheck.check(vectors))
        vectorcheck.unseal(vectors)
        out["index_check_probe_s"] = timed(lambda: vectorcheck.check(vectors))
        catalog.close()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
