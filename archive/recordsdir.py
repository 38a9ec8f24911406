"""The archive's `records/` folder: every meme's record file (the seed's format, with its
sightings, copies and identity rules), kept as the catalog changes, so that the catalog can be
made anew from records and images alone (`memes rebuild`) without losing an annotation.

Triggers in the catalog note every meme whose record changed (`record_changes`), in the same
transaction as the change; a writing command ends by writing those files (`write_changed`), so a
command that was killed leaves its notes for the next one. A file is
`records/<2 characters of the id>/<id>_<perceptual hash or id>.txt`: the name carries what the
record's text does not for a record without an image (its id and perceptual hash).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .catalog import Catalog
from .disk import aside_label
from .errors import RecordFormatError
from .model import Meme
from .recordfile import COPIES, format_record, parse_record

RECORDS_DIR = "records"
BATCH = 500


def record_path(folder: Path, meme: Meme) -> Path:
    return folder / meme.id[:2] / f"{meme.id}_{meme.phash or meme.id}.txt"


def write_changed(catalog: Catalog, folder: Path) -> int:
    """Write the record file of every meme noted as changed (remove those of memes gone);
    returns how many were written or removed."""
    done = 0
    while ids := catalog.changed_records(BATCH):
        for meme_id in ids:
            meme = catalog.get(meme_id)
            target = record_path(folder, meme) if meme is not None else None
            if target is None or not target.exists():  # gone, or new, or its perceptual hash changed
                shelf = folder / meme_id[:2]
                for stale in shelf.glob(f"{meme_id}_*.txt") if shelf.exists() else ():
                    stale.unlink(missing_ok=True)
            if meme is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(f"{target.name}.{os.getpid()}.part")
                partial.write_text(format_record(meme), encoding="utf-8", errors="surrogateescape")  # paths as bytes
                partial.replace(target)
        catalog.records_written(ids)
        done += len(ids)
    return done


@dataclass
class Kept:
    """One record file read back: the meme, and the copies' files named in its `Copies`."""

    path: Path
    meme: Meme | None = None
    copies: dict[str, str] | None = None  # sighting path -> the copy's 16 hex digits
    error: str | None = None


def put_aside(folder: Path) -> None:
    """Keep a records folder written from a catalog that is being replaced beside it, renamed."""
    if folder.exists():
        folder.rename(folder.with_name(f"{folder.name}.{aside_label('replaced')}"))


def read_folder(folder: Path) -> Iterator[Kept]:
    """Every record file in `folder` (as `write_changed` names them), parsed."""
    for path in sorted(folder.glob("*/*.txt")):
        meme_id, _, tail = path.stem.partition("_")
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
            meme = parse_record(text, meme_id=meme_id, phash=tail if tail != meme_id else None)
        except (OSError, UnicodeDecodeError, RecordFormatError) as exc:
            yield Kept(path, error=f"{path}: {exc}")
            continue
        yield Kept(path, meme, _copies(text))


def _copies(text: str) -> dict[str, str]:
    """`Copies` lines (`<16 hex> <path>`) as path -> copy."""
    lines = text.split("\n")
    if COPIES not in lines:
        return {}
    found = {}
    for line in lines[lines.index(COPIES) + 1:]:
        copy, _, path = line.partition(" ")
        if len(copy) != 16 or not path:
            break
        if path != "(file gone)":
            found[path] = copy
    return found
