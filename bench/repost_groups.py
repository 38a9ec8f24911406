"""Repost grouping at indexing time: are altered copies joined to their original, and are other
memes of one template (different captions) kept apart?

usage: python bench/repost_groups.py TRUTH_JSONL IMAGES_DIR ARCHIVE [--copies 100]

ARCHIVE holds the originals of TRUTH (`variant_of` null) already indexed (see bench/make_queries.py);
it is copied, never changed. Prints one JSON object:
- siblings: the originals indexed one after another as `memes index` would (hashes, OCR text
  from the archive, pixels aligned against the memes before them), how many were wrongly joined
  to another meme of their template, out of all pairs of originals of one template (the aim:
  under 1 in 100); and `joined_in_archive`, the pairs of originals with different captions that
  ARCHIVE's own indexing made one meme (those count as one meme above);
- copies: COPIES altered copies of each kind indexed into the copy of the archive, and the share
  that became a sighting of their original's meme (at least 0.95 is the aim).
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archive.config import resolve_config  # noqa: E402
from archive.lookalikes import Likeness  # noqa: E402
from indexer.imageio import load_image, picture_hashes  # noqa: E402
from indexer.reposts import Reposts  # noqa: E402
from memes.app import Archive  # noqa: E402
from search.evaluate import read_jsonl  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("truth", type=Path)
    ap.add_argument("images", type=Path)
    ap.add_argument("archive", type=Path)
    ap.add_argument("--copies", type=int, default=100)
    args = ap.parse_args()
    truth = read_jsonl(args.truth)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "archive"
        shutil.copytree(args.archive, work)
        archive = Archive(resolve_config({"archive": work}))
        meme_of = {}
        for meme_id in archive.catalog.ids():
            for s in archive.catalog.require(meme_id).sightings:
                meme_of[Path(s.path).name] = meme_id

        by_template: dict[str, list[str]] = {}
        for row in truth:
            if not row["variant_of"] and row["file"] in meme_of:
                by_template.setdefault(row["template"], []).append(meme_of[row["file"]])
        pairs = sum(len(set(m)) * (len(set(m)) - 1) // 2 for m in by_template.values())
        captions: dict[str, set[str]] = {}  # originals already one meme in ARCHIVE, by caption
        for row in truth:
            if not row["variant_of"] and row["file"] in meme_of:
                captions.setdefault(meme_of[row["file"]], set()).add(row["text"])
        joined_in_archive = sum(len(c) * (len(c) - 1) // 2 for c in captions.values())
        reposts = Reposts(archive.catalog, archive.config.max_image_pixels, Likeness([]))
        readings = {row[0]: row[2] for row in archive.catalog.likeness_rows()}
        joined = 0
        examples = []
        for row in truth:
            if row["variant_of"] or row["file"] not in meme_of:
                continue
            meme = archive.catalog.require(meme_of[row["file"]])
            picture = load_image(args.images / row["file"]).rgb
            found = reposts.find(picture_hashes(picture), readings.get(meme.id, []), picture)
            if found is not None and found != meme.id:  # (a caption rendered twice is one meme)
                joined += 1
                examples.append((meme.id, found))
            reposts.remember(meme, picture)

        rnd = random.Random(3)
        originals = {row["id"]: row for row in truth}
        by_kind: dict[str, list[dict]] = {}
        for row in truth:
            if row["variant_of"]:
                by_kind.setdefault(row["id"].removeprefix(row["variant_of"]).strip("-_"), []).append(row)
        picked = [r for rs in by_kind.values() for r in rnd.sample(rs, min(args.copies, len(rs)))]
        found = [f for f in archive.scan([args.images / r["file"] for r in picked]) if not f.problem]
        for _ in archive.index(found, annotate=False):
            pass
        outcome: dict[str, list[int]] = {}
        for row in picked:
            sighting = archive.catalog.sighting_at(str((args.images / row["file"]).resolve()))
            expected = meme_of.get(originals[row["variant_of"]]["file"])
            kind = row["id"].removeprefix(row["variant_of"]).strip("-_")
            outcome.setdefault(kind, []).append(int(sighting is not None and sighting["meme_id"] == expected))
        every = [x for v in outcome.values() for x in v]
        print(json.dumps({
            "siblings": {"pairs": pairs, "wrongly_joined": joined, "share": round(joined / max(1, pairs), 4),
                         "examples": examples[:5], "joined_in_archive": joined_in_archive},
            "copies": {"indexed": len(every), "joined_share": round(sum(every) / max(1, len(every)), 4),
                       "by_kind": {k: round(sum(v) / len(v), 4) for k, v in outcome.items()}},
        }, indent=1))


if __name__ == "__main__":
    main()
