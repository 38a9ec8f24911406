"""Meme identity: does indexing keep distinct memes apart and join their altered copies?

usage: python bench/identity.py SET_DIR [--ocr-cache FILE] [--order shuffled|originals-first] [--no-group]

SET_DIR is made by `data/make_identity_set.py` (or any folder with `identity.jsonl` in its
format). Every original and every copy is indexed by the real `memes index` pipeline into a new
archive, in one run, in a shuffled order (a copy may come before its original), default OCR,
grouping on, no annotations. Then, per style:

- `false_joins`: originals that ended up in a meme together with another original (each meme
  holding files of n distinct originals counts n - 1): the aim is 0;
- `copies_joined`, per kind of copy: the share of copies that became a sighting of the meme
  their original is in (aim: at least 0.95 of each kind);
- `copies_in_another_meme`: copies that ended up, not with their original, in a meme holding
  another original or a copy of another (two crops that cut their captions off, say) (aim: 0).

`--ocr-cache FILE` keeps what OCR read of each picture in FILE, so that a second run over the
same set spends its time on grouping only (the cache is keyed by the decoded pixels).
`--no-group` indexes with grouping off: the difference in `seconds` is what grouping costs.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archive.config import resolve_config  # noqa: E402
from indexer.pipeline import Indexed, Notice, Regrouped, Skipped  # noqa: E402
from memes.app import Archive  # noqa: E402


class CachedOcr:
    """The archive's OCR with a disk cache in front of it (measuring only)."""

    def __init__(self, ocr, path: Path | None):
        self.ocr, self.path = ocr, path
        self.cache = json.loads(path.read_text()) if path and path.exists() else {}

    def __getattr__(self, name):
        return getattr(self.ocr, name)

    def read_all(self, img):
        key = hashlib.sha1(img.tobytes() + repr(img.size).encode()).hexdigest()
        if key not in self.cache:
            self.cache[key] = self.ocr.read_all(img)
        return [tuple(r) for r in self.cache[key]]

    def save(self) -> None:
        if self.path:
            self.path.write_text(json.dumps(self.cache))


def run(set_dir: Path, ocr_cache: Path | None, order: str, seed: int = 1, group: bool = True) -> dict:
    truth = [json.loads(line) for line in (set_dir / "identity.jsonl").read_text().splitlines() if line]
    files = {r["id"]: set_dir / ("copies" if r["variant_of"] else "images") / r["file"] for r in truth}
    rows = list(truth)
    if order == "shuffled":
        random.Random(seed).shuffle(rows)
    else:
        rows.sort(key=lambda r: r["variant_of"] is not None)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Archive(resolve_config({"archive": Path(tmp) / "archive", "annotate": False,
                                          "group_reposts": group}))
        ocr = CachedOcr(archive.ocr, ocr_cache)
        archive.__dict__["ocr"] = ocr
        start = time.perf_counter()
        meme_of: dict[str, str] = {}
        path_to_id = {str(files[r["id"]].resolve()): r["id"] for r in rows}
        notices = []
        with archive.lock():
            for event in archive.index(archive.scan([files[r["id"]] for r in rows]), annotate=False):
                if isinstance(event, (Indexed, Regrouped)):
                    meme_of[path_to_id[str(event.path.resolve())]] = event.meme_id
                elif isinstance(event, (Notice, Skipped)):
                    notices.append(str(event))
        seconds = time.perf_counter() - start
        ocr.save()
    return report(truth, meme_of, seconds, notices)


def report(truth: list[dict], meme_of: dict[str, str], seconds: float, notices: list[str]) -> dict:
    originals = {r["id"]: r for r in truth if not r["variant_of"]}
    styles: dict[str, dict] = {}
    members: dict[str, set[str]] = {}
    for oid in originals:
        if oid in meme_of:
            members.setdefault(meme_of[oid], set()).add(oid)
    origin = {r["id"]: r["variant_of"] or r["id"] for r in truth}
    sources: dict[str, set[str]] = {}  # meme -> the originals its files are (copies of)
    for file_id, meme_id in meme_of.items():
        sources.setdefault(meme_id, set()).add(origin[file_id])
    examples = []
    for meme_id, ids in members.items():
        if len(ids) > 1:
            style = originals[sorted(ids)[0]]["style"]
            styles.setdefault(style, {}).setdefault("false_joins", 0)
            styles[style]["false_joins"] += len(ids) - 1
            examples.append(sorted(ids))
    for r in truth:
        style = styles.setdefault(r["style"], {})
        style.setdefault("false_joins", 0)
        if r["variant_of"] is None:
            style["originals"] = style.get("originals", 0) + 1
            continue
        kinds = style.setdefault("copies_joined", {})
        joined = r["id"] in meme_of and meme_of.get(r["id"]) == meme_of.get(r["variant_of"])
        kinds.setdefault(r["variant"], []).append(int(joined))
        if not joined and len(sources.get(meme_of.get(r["id"]), ())) > 1:  # with another original's files
            style["copies_in_another_meme"] = style.get("copies_in_another_meme", 0) + 1
    missed = [sorted(i for i, m in meme_of.items() if m == meme_of.get(r["id"]))
              for r in truth if r["variant_of"] and meme_of.get(r["id"]) != meme_of.get(r["variant_of"])]
    by_kind: dict[str, list[int]] = {}
    for style in styles.values():
        for kind, outcomes in style.get("copies_joined", {}).items():
            by_kind.setdefault(kind, []).extend(outcomes)
            style["copies_joined"][kind] = round(sum(outcomes) / len(outcomes), 3)
    return {
        "images": len(truth), "seconds": round(seconds, 1),
        "false_joins": sum(s["false_joins"] for s in styles.values()),
        "copies_in_another_meme": sum(s.get("copies_in_another_meme", 0) for s in styles.values()),
        "copies_joined": {k: round(sum(v) / len(v), 3) for k, v in sorted(by_kind.items())},
        "styles": dict(sorted(styles.items())),
        "false_join_examples": examples[:10],
        "missed_examples": missed[:40],
        "notices": notices[:10],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set_dir", type=Path)
    ap.add_argument("--ocr-cache", type=Path)
    ap.add_argument("--order", choices=["shuffled", "originals-first"], default="shuffled")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-group", action="store_true", help="index with repost grouping off")
    args = ap.parse_args()
    print(json.dumps(run(args.set_dir, args.ocr_cache, args.order, args.seed, not args.no_group), indent=1))


if __name__ == "__main__":
    main()
