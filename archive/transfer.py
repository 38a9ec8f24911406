"""Records in and out of an archive: record files read into the catalog (joined to the meme they
describe where there is one) and every meme written out as a record file."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .catalog import Catalog
from .errors import RecordFormatError
from .model import TEXT_SPACES, Meme, merge_record
from .recordfile import format_record, read_record_file, record_file_name


@dataclass
class ImportOutcome:
    path: Path
    meme_id: str | None = None
    merged: bool = False  # folded into a meme already in the archive
    error: str | None = None


@dataclass
class ExportOutcome:
    written: list[Path] = field(default_factory=list)


def import_records(catalog: Catalog, paths: Iterable[Path]) -> Iterator[ImportOutcome]:
    """Read record files into the catalog, one outcome each; a bad file is an outcome with an
    error, and the others go on. The memes' text vectors are then out of date (marked so)."""
    for path in paths:
        try:
            incoming = read_record_file(path)
        except RecordFormatError as exc:
            yield ImportOutcome(path, error=str(exc))
            continue
        yield ImportOutcome(path, *_import_one(catalog, incoming, path))


def _import_one(catalog: Catalog, incoming: Meme, path: Path) -> tuple[str, bool]:
    target = None
    if incoming.content_hash:
        target = catalog.id_for_content(incoming.content_hash)
    if target is None and incoming.phash:
        # a record of an image goes with a record of the same picture that has no image yet,
        # never with another image: memes of one template share perceptual hashes
        candidates = catalog.ids_for_phash(incoming.phash, without_image=bool(incoming.content_hash))
        target = candidates[0] if candidates else None
    with catalog.transaction():
        if target is not None:
            meme = merge_record(catalog.require(target), incoming)
            catalog.marks.unmark(target, list(TEXT_SPACES))  # its image is unchanged
        else:
            meme = incoming
            meme.id = _new_record_id(incoming, path)
        catalog.save(meme)
    return meme.id, target is not None


def _new_record_id(meme: Meme, path: Path) -> str:
    """Ids are content hashes for images; an imported record without one goes by its
    perceptual hash (as its file name says), or failing that by a hash of its text."""
    if meme.content_hash:
        return meme.content_hash[:16]
    if meme.phash:
        return meme.phash
    return hashlib.sha256(format_record(meme).encode()).hexdigest()[:16]


def export_records(catalog: Catalog, directory: Path) -> ExportOutcome:
    """Write every meme as a record file named `NNN_<perceptual hash>.txt`, oldest first."""
    directory.mkdir(parents=True, exist_ok=True)
    outcome = ExportOutcome()
    for sequence, meme_id in enumerate(catalog.ids()):
        meme = catalog.require(meme_id)
        target = directory / record_file_name(sequence, meme)
        target.write_text(format_record(meme), encoding="utf-8")
        outcome.written.append(target)
    return outcome
