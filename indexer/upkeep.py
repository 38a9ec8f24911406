"""`memes doctor`: check that the catalog and the vector index agree, and repair what can be
repaired from what the archive has.

The catalog is checked by SQLite's integrity check. The embedded vector index is opened in a
child process first (`archive.vectorcheck`): a damaged one is moved aside, never opened here.
Every space the catalog keeps vectors for is then made whole from the catalog's copies (no model
runs); vectors of memes the catalog no longer has go, unless the catalog holds no memes at all
(a truncated or replaced catalog: its vectors are the last trace of the archive); files of
collections Chroma no longer uses are removed; only memes with no vector anywhere are embedded
again, which needs the models.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from archive.catalog import Catalog
from archive.errors import ArchiveDamaged, MemesError, first_line
from archive.model import IMAGE, SPACES
from archive.vectors import VectorStore

from .embedder import Embedder

EMPTY_CATALOG = ("the catalog holds no memes but the vector index holds vectors: nothing was dropped; put back a "
                 "backup with `memes restore BACKUP` or make the catalog anew with `memes rebuild`")


def forget_missing(catalog: Catalog, store: VectorStore, roots: Iterable[Path],
                   drop_orphans: bool) -> tuple[int, list[str], bool]:
    """Forget the files under `roots` that are gone. Returns how many were forgotten, the memes
    left with no file, and whether those were removed (with their vectors) or kept (their
    records stay searchable)."""
    prefixes = [os.path.abspath(r) for r in roots]
    gone = [p for p in catalog.sighting_paths()
            if any(p == r or p.startswith(r.rstrip("/") + "/") for r in prefixes) and not os.path.lexists(p)]
    catalog.forget_sightings(gone)
    orphans = catalog.orphans()
    if drop_orphans and orphans:
        for space in store.describe():
            store.space(space).delete_memes(orphans)
        with catalog.transaction():
            for meme_id in orphans:
                catalog.delete(meme_id)
    return len(gone), orphans, drop_orphans


def _index_damage(store: VectorStore) -> str | None:
    damage = store.check()
    if damage is None:
        try:
            store.describe()
        except ArchiveDamaged as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - Chroma's own files unreadable
            return first_line(exc)
    return damage


def checkup(catalog: Catalog, store: VectorStore, embedder: Embedder, batch_size: int, repair: bool) -> dict:
    """What is wrong, and (with `repair`) what was done about it; see the module's note."""
    report: dict = {"catalog": {"problems": catalog.problems()}, "index": {}, "spaces": {}}
    index = report["index"]
    index["damage"] = damage = _index_damage(store)
    if damage is not None and repair:
        index["moved_aside"] = str(store.set_aside())
    usable = damage is None or repair
    if repair:
        index["recreated"] = store.restore_spaces()
    known = set(catalog.ids())
    spaces = [s for s in SPACES if s in embedder.active_spaces() or catalog.copies.count(s)]
    for space in spaces:
        existing = store.space(space) if usable else None
        indexed = existing.meme_ids() if existing is not None else set()
        kept = set(catalog.copies.items(space).values())
        expected = catalog.marks.expecting(space)
        found = report["spaces"][space] = {
            "vectors_for": len(indexed), "missing": len(expected - indexed), "orphans": len(indexed - known),
            "not_kept": len((indexed & known) - kept)}
        if not repair:
            continue
        if existing is not None and not known and indexed:
            report["refused"] = EMPTY_CATALOG
            continue
        if existing is not None:
            found["repaired"] = existing.reconcile()
        lost = expected - set(catalog.copies.items(space).values())
        for meme_id in lost:
            catalog.marks.unmark(meme_id, [space])
        found["reembedded"] = len(lost)
    if repair and "refused" not in report:
        index["removed_folders"] = store.sweep()
        try:
            for _ in embedder.embed_pending(batch_size):
                pass
        except MemesError as exc:
            report["repair_error"] = str(exc)
    report["pending"] = {space: len(catalog.marks.needing(space, embedder.model(space), space == IMAGE))
                         for space in embedder.active_spaces()}
    return report


def healthy(report: dict) -> bool:
    """Whether a checkup found nothing to repair and nothing waiting."""
    return not (report["catalog"]["problems"] or report["index"].get("damage") or report.get("refused")
                or any(f["missing"] or f["orphans"] or f["not_kept"] for f in report["spaces"].values())
                or any(report["pending"].values()))


def unrepaired(report: dict) -> bool:
    """Whether a repairing checkup left something wrong or waiting."""
    return bool(report["catalog"]["problems"] or report.get("refused") or report.get("repair_error")
                or any(report["pending"].values()))
