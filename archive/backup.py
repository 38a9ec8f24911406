"""Backups of an archive, and the way back.

A backup is a folder: `catalog.sqlite3`, a whole copy of the catalog made by SQLite's online
backup (a consistent moment, taken while searches and an index run go on: what was committed
before it began is in it), the archive's `config.toml` when it has one, and `backup.json` saying
when and from where. The vector index is not copied: the catalog keeps a copy of every vector,
and `memes restore` (through `memes doctor`) makes the index anew from them with no model.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .database import SqliteDatabase
from .disk import aside_label
from .errors import ArchiveDamaged, MemesError
from .model import utc_now

CATALOG_FILE = "catalog.sqlite3"
CONFIG_FILE = "config.toml"
MANIFEST = "backup.json"


@dataclass
class Backup:
    folder: Path
    memes: int
    size_bytes: int


def make_backup(archive_dir: Path, dest: Path) -> Backup:
    """Copy the catalog (and config) of the archive at `archive_dir` into the folder `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    target, partial = dest / CATALOG_FILE, dest / f"{CATALOG_FILE}.part"
    _copy(archive_dir / CATALOG_FILE, partial)
    memes = _verified(partial)
    partial.replace(target)
    if (archive_dir / CONFIG_FILE).exists():
        shutil.copy2(archive_dir / CONFIG_FILE, dest / CONFIG_FILE)
    (dest / MANIFEST).write_text(json.dumps({"made": utc_now().isoformat(timespec="seconds"),
                                             "archive": str(archive_dir), "memes": memes}, indent=1))
    return Backup(dest, memes, target.stat().st_size)


def restore_backup(source: Path, archive_dir: Path) -> Backup:
    """Put the catalog of the backup at `source` (its folder or its catalog file) in place of the
    archive's; the catalog there before is kept beside it (`catalog.sqlite3.replaced-<time>`)."""
    folder = source if source.is_dir() else source.parent
    backup_file = source / CATALOG_FILE if source.is_dir() else source
    if not backup_file.is_file():
        raise MemesError(f"no backup at {source} (a folder made by `memes backup`, or its catalog.sqlite3)")
    memes = _verified(backup_file)
    archive_dir.mkdir(parents=True, exist_ok=True)
    target = archive_dir / CATALOG_FILE
    partial = target.with_name(f"{CATALOG_FILE}.restoring")
    _copy(backup_file, partial)
    set_aside(target, aside_label("replaced"))
    partial.replace(target)
    if (folder / CONFIG_FILE).exists() and not (archive_dir / CONFIG_FILE).exists():
        shutil.copy2(folder / CONFIG_FILE, archive_dir / CONFIG_FILE)
    return Backup(folder, memes, target.stat().st_size)


def set_aside(catalog: Path, label: str) -> Path | None:
    """Move a catalog file and its write-ahead log out of the way (kept beside them)."""
    if not catalog.exists():
        return None
    aside = catalog.with_name(f"{catalog.name}.{label}")
    for suffix in ("", "-wal", "-shm"):
        path = catalog.with_name(catalog.name + suffix)
        if path.exists():
            path.rename(aside.with_name(aside.name + suffix))
    return aside


def _copy(catalog: Path, target: Path) -> None:
    """A consistent copy of the catalog file at `target`, made while it may be written."""
    source = SqliteDatabase(catalog, read_only=True)
    try:
        source.backup_to(target)
    finally:
        source.close()


def _verified(catalog: Path) -> int:
    """How many memes a copied catalog holds; raises where it is not whole."""
    db = SqliteDatabase(catalog, read_only=True)
    try:
        problems = db.problems()
        if problems:
            raise ArchiveDamaged(f"the backup {catalog} is damaged ({problems[0]})")
        return db.execute("SELECT count(*) FROM memes").fetchone()[0]
    finally:
        db.close()
