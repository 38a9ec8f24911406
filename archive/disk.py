"""The archive's files on their disk: sizes, a full or read-only disk, a catalog emptied."""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from .errors import ArchiveDamaged, DiskFull, MemesError, ReadOnlyArchive
from .model import utc_now


def no_space(directory: Path, catalog_name: str) -> DiskFull:
    """A full disk, in words with figures: what is free, what the archive takes."""
    free = shutil.disk_usage(directory).free if directory.exists() else 0
    catalog = sum(p.stat().st_size for p in directory.glob(catalog_name + "*") if p.is_file())
    return DiskFull(f"no space left on the disk holding {directory} ({free / 1e6:.1f} MB free; the archive takes "
                    f"{tree_size(directory) / 1e6:.1f} MB): free at least {max(catalog, 10 ** 7) / 1e6:.0f} MB "
                    "(as much as its catalog takes, for SQLite to write safely) and run the command again; "
                    "everything committed before is kept, and searches still work")


def disk_full(folder: Path, margin: int = 1 << 20) -> bool:
    """Whether the disk holding `folder` has (next to) no space left."""
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def catalog_damaged(path: Path, what: str) -> ArchiveDamaged:
    """A catalog that cannot be read as one, and the two ways back."""
    return ArchiveDamaged(f"the catalog {path} {what}: put back a backup with `memes restore BACKUP`, or make it "
                          "anew from the archive's records/ and the images with `memes rebuild`")


def aside_label(kind: str) -> str:
    """The suffix of a file or folder moved aside now: `replaced-20261203T143000`."""
    return f"{kind}-{utc_now().strftime('%Y%m%dT%H%M%S')}"


def read_only(directory: Path) -> ReadOnlyArchive:
    return ReadOnlyArchive(f"{directory} cannot be written (a read-only folder or mount): searching works, "
                           "commands that write do not")


def explain(exc: BaseException, directory: Path, catalog_name: str) -> MemesError | None:
    """A failure no layer translated, as a domain error where it is about the archive's disk."""
    said = str(exc).lower()
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "no space left" in said or "disk is full" in said:
        return no_space(directory, catalog_name)
    if isinstance(exc, OSError) and exc.errno == errno.EROFS:
        return read_only(directory)
    return None


def emptied(catalog: Path, vectors: Path) -> bool:
    """A catalog file cut to nothing beside an index that holds vectors: SQLite would take the
    empty file for a new archive, and the next `doctor` would drop every vector as an orphan."""
    try:
        return catalog.stat().st_size == 0 and any(vectors.iterdir())
    except OSError:
        return False


def tree_size(directory: Path) -> int:
    total = 0
    for folder, _, files in os.walk(directory):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(folder, name))
            except OSError:
                pass
    return total


def why_unreadable(exc: OSError) -> str:
    """Why a file could not be read, in a few words."""
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc)
