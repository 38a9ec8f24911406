"""`memes rebuild`: the catalog made anew from the archive's records/ and the images, for when
the catalog is lost or damaged and no backup is at hand.

Every record file becomes a meme again, with its id, annotations, OCR text, sightings and
identity rules; what a record does not say is read from the images where they still are (each
sighting's bytes, size and time, the picture's size). Vectors are not in records: those the
vector index still holds are taken back into the catalog (no model runs), and only memes without
any are embedded again. The catalog it replaces is kept beside it.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from archive.backup import set_aside
from archive.disk import aside_label
from archive.catalog import Catalog
from archive.errors import MemesError
from archive.model import Meme
from archive.recordsdir import Kept, read_folder
from archive.model import SPACES
from archive.vectors import VectorStore

from .imageio import ImageLoadError, decode

BATCH = 200


@dataclass
class Rebuilt:
    memes: int = 0
    skipped: list[str] = field(default_factory=list)  # record files that could not be read, and why
    replaced: str | None = None  # where the catalog it replaced was moved
    vectors_taken: dict[str, int] = field(default_factory=dict)  # space -> vectors taken from the index


def rebuild_catalog(folder: Path, target: Path, max_pixels: int) -> Rebuilt:
    """Write a catalog at `target` from the record files in `folder`; the file there before is
    moved aside (with its write-ahead log) once the new one is complete."""
    kept = list(read_folder(folder)) if folder.is_dir() else []
    if not any(k.meme for k in kept):
        raise MemesError(f"no record files in {folder}: nothing to rebuild the catalog from")
    outcome = Rebuilt(skipped=[k.error for k in kept if k.error])
    partial = target.with_name(target.name + ".rebuilding")
    for suffix in ("", "-wal", "-shm"):
        partial.with_name(partial.name + suffix).unlink(missing_ok=True)
    catalog = Catalog(partial)
    try:
        memes = [_completed(k, max_pixels) for k in kept if k.meme]
        for start in range(0, len(memes), BATCH):
            with catalog.transaction():
                for meme in memes[start:start + BATCH]:
                    catalog.save(meme)
        catalog.records_written([m.id for m in memes])  # the files are where these came from
        catalog.checkpoint()
        outcome.memes = len(memes)
    finally:
        catalog.close()
    aside = set_aside(target, aside_label("replaced"))
    outcome.replaced = str(aside) if aside else None
    partial.rename(target)
    return outcome


def take_back_vectors(catalog: Catalog, store: VectorStore) -> dict[str, int]:
    """The vectors the index holds for memes of a rebuilt catalog, copied into it and marked as
    made (by the model that made them)."""
    taken = {}
    for name in SPACES:
        space = store.space(name)
        if space is None:
            continue
        space.reconcile()
        items = catalog.copies.items(name)
        catalog.marks.mark(sorted(set(items.values())), name, space.model)
        taken[name] = len(items)
    return taken


def _completed(kept: Kept, max_pixels: int) -> Meme:
    """The meme of a record file, with what only its files know."""
    meme = kept.meme
    for sighting in meme.sightings:
        try:
            data = Path(sighting.path).read_bytes()
            info = os.stat(sighting.path)
        except OSError:  # the file is gone: its bytes are the meme's own or a copy's, as the record says
            sighting.content_hash = kept.copies.get(sighting.path, meme.content_hash)
            continue
        sighting.content_hash = hashlib.sha256(data).hexdigest()
        sighting.size, sighting.mtime = info.st_size, info.st_mtime
        if sighting.content_hash == meme.content_hash and meme.width is None:
            try:
                picture = decode(data, max_pixels)
                meme.width, meme.height = picture.width, picture.height
            except ImageLoadError:
                pass
    return meme
