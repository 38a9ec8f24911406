"""The user's word on meme identity, which indexing then keeps: an altered copy joined to a meme
split off as a meme of its own, and two memes joined as one (`Catalog.put_identity_rule`)."""
from __future__ import annotations

import os
from pathlib import Path

from archive.catalog import Catalog
from archive.errors import MemesError
from archive.model import Meme, OcrText
from archive.vectors import VectorStore

from .imageio import ImageLoadError, load_image, picture_hashes
from .ocr import MemeOcr


def split_copy(catalog: Catalog, ocr: MemeOcr, meme: Meme, path: str, max_pixels: int) -> str:
    """Make the file at `path`, an altered copy joined to `meme`, a meme of its own: its
    sightings, and the words OCR read on it, move to the new meme, and the catalog remembers the
    two apart. Returns the new meme's id (its text vectors are still to be made)."""
    where = os.path.abspath(os.path.expanduser(path))
    sighting = next((s for s in meme.sightings if s.path in (where, os.path.realpath(where))), None)
    if sighting is None:
        raise MemesError(f"{path} is not a file of meme {meme.id}")
    digest = sighting.content_hash
    if not digest or digest == meme.content_hash:
        raise MemesError(f"{path} holds meme {meme.id}'s own bytes: there is nothing to split from it")
    copy = digest[:16]
    texts = [OcrText(o.engine, o.text) for o in meme.copy_texts if o.copy == copy]
    try:
        loaded = load_image(Path(sighting.path), max_pixels)
    except ImageLoadError as exc:
        raise MemesError(f"{path}: {exc}") from None
    if loaded.content_hash != digest:
        raise MemesError(f"{path} has changed since it was indexed; run `memes index` on it first")
    if not texts:  # joined before copies' words were kept
        texts = [OcrText(engine, text) for engine, text in ocr.read_all(loaded.rgb)]
    moved = [s for s in meme.sightings if s.content_hash == digest]
    new = Meme(id=copy, content_hash=digest, phash=picture_hashes(loaded.rgb)[0], width=loaded.width,
               height=loaded.height, sections=texts, first_seen=min(s.seen_at for s in moved),
               kept_apart=[meme.content_hash])
    with catalog.transaction():
        catalog.save(new)
        catalog.move_sightings(digest, new.id)
        catalog.drop_sections(meme.id, [o for o in meme.copy_texts if o.copy == copy])
        kept = [s.seen_at for s in meme.sightings if s.content_hash != digest]
        if kept and meme.first_seen == new.first_seen:  # it was first seen as that copy
            catalog.set_first_seen(meme.id, min(kept))
    return new.id


def join_memes(catalog: Catalog, store: VectorStore, meme: Meme, other: Meme) -> None:
    """Make `other` one more sighting of `meme`: its files become the meme's sightings, the words
    OCR read on them stay searchable as the copy's, its vision-model annotations are dropped
    (the meme keeps its own), its vectors go, and no later indexing separates them."""
    if not meme.content_hash or not other.content_hash:
        raise MemesError("only memes indexed from images can be joined (a record without one is imported)")
    with catalog.transaction():
        catalog.merge_into(meme.id, other)
        catalog.put_identity_rule(other.content_hash, "with", meme.content_hash)
    for space in store.describe():
        store.space(space).delete_memes([other.id])
