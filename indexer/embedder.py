"""Making the vectors of memes from their records (and images) and storing them.

Used by indexing, by `import` (annotations from elsewhere are searchable too) and by
`reindex`, which rebuilds whole spaces from the catalog without repeating OCR.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from PIL import Image

from archive.catalog import Catalog
from archive.model import ANNOTATION_TEXT, IMAGE, OCR_TEXT, TEXT_SPACES, Meme
from archive.vectors import VectorSpace, VectorStore

from .encoders import ImageEncoder, TextEncoder
from .imageio import image_of, model_input
from .passages import split_passages


@dataclass
class EmbedReport:
    memes: int = 0
    missing_images: list[str] = field(default_factory=list)  # meme ids whose files are all gone


class Embedder:
    """Writes vectors for memes into the store and notes in the catalog which model made them."""

    def __init__(self, catalog: Catalog, store: VectorStore, text_encoder: TextEncoder,
                 image_encoder: ImageEncoder | None, max_pixels: int):
        self.catalog = catalog
        self.store = store
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.max_pixels = max_pixels

    def without_images(self) -> "Embedder":
        """This embedder for the text spaces only (no image model, no image decoded)."""
        return Embedder(self.catalog, self.store, self.text_encoder, None, self.max_pixels)

    def model(self, space: str) -> str:
        return (self.image_encoder if space == IMAGE else self.text_encoder).model_id

    def active_spaces(self) -> tuple[str, ...]:
        return TEXT_SPACES + ((IMAGE,) if self.image_encoder is not None else ())

    def target(self, space: str) -> VectorSpace:
        encoder = self.image_encoder if space == IMAGE else self.text_encoder
        return self.store.create_space(space, encoder.model_id, encoder.dim)

    def embed(self, memes: Sequence[Meme], pictures: dict[str, Image.Image] | None = None,
              targets: dict[str, VectorSpace] | None = None) -> EmbedReport:
        """Vectors for `memes` in `targets` (default: every active space).

        `pictures` (meme id -> image) saves re-reading image files."""
        report = EmbedReport(memes=len(memes))
        targets = targets or {space: self.target(space) for space in self.active_spaces()}
        for space, target in targets.items():
            if space == OCR_TEXT:
                self._embed_ocr(memes, target)
            elif space == ANNOTATION_TEXT:
                self._embed_annotations(memes, target)
            else:
                report.missing_images += self._embed_images(memes, pictures or {}, target)
            self.catalog.marks.mark([m.id for m in memes], space, self.model(space))
        return report

    def _embed_ocr(self, memes: Sequence[Meme], target: VectorSpace) -> None:
        with_text = [m for m in memes if m.ocr_text.strip()]
        empty = [m.id for m in memes if not m.ocr_text.strip()]
        if empty:
            target.delete_items(empty)
        vectors = self.text_encoder.encode_texts([m.ocr_text for m in with_text])
        target.upsert([m.id for m in with_text], vectors, [{"meme_id": m.id} for m in with_text])

    def _embed_annotations(self, memes: Sequence[Meme], target: VectorSpace) -> None:
        target.delete_memes([m.id for m in memes if m.annotations])
        ids, texts, metadatas = [], [], []
        for meme in memes:
            for a in meme.annotations:
                for n, passage in enumerate(split_passages(a.text)):
                    ids.append(f"{meme.id}/{a.kind}/{a.source}/{n}")
                    texts.append(passage.text(a.text))
                    metadatas.append({"meme_id": meme.id, "kind": a.kind, "source": a.source,
                                      "start": passage.start, "end": passage.end})
        target.upsert(ids, self.text_encoder.encode_texts(texts), metadatas)

    def _embed_images(self, memes: Sequence[Meme], pictures: dict[str, Image.Image],
                      target: VectorSpace) -> list[str]:
        ids, images, missing = [], [], []
        for meme in memes:
            if meme.content_hash is None:
                continue  # an imported record with no image yet
            picture = pictures.get(meme.id) or self._picture(meme)
            if picture is None:
                missing.append(meme.id)
                continue
            ids.append(meme.id)
            images.append(picture)
        if images:
            target.upsert(ids, self.image_encoder.encode_images(images), [{"meme_id": i} for i in ids])
        return missing

    def _picture(self, meme: Meme) -> Image.Image | None:
        """The meme's image from the first of its files that still holds the same bytes."""
        image = image_of(meme, self.max_pixels)
        return model_input(image) if image is not None else None

    def _missing(self) -> Iterator[tuple[str, list[str]]]:
        """(space, memes missing vectors there or whose vectors another model made)."""
        for space in self.active_spaces():
            ids = self.catalog.marks.needing(space, self.model(space), space == IMAGE)
            if ids:
                yield space, ids

    def pending(self) -> bool:
        """Whether any meme waits for vectors in an active space."""
        return next(self._missing(), None) is not None

    def embed_pending(self, batch_size: int) -> Iterator[EmbedReport]:
        """Make the vectors that are missing, space by space: a meme whose annotation changed
        gets new annotation vectors, not a second run of the image model."""
        for space, ids in self._missing():
            yield from self.embed_ids(ids, batch_size, {space: self.target(space)})

    def embed_ids(self, ids: Sequence[str], batch_size: int,
                  targets: dict[str, VectorSpace] | None = None) -> Iterator[EmbedReport]:
        """Embed memes by id in batches; yields a report per batch so callers can show progress."""
        for start in range(0, len(ids), batch_size):
            memes = [m for m in (self.catalog.get(i) for i in ids[start:start + batch_size]) if m]
            yield self.embed(memes, targets=targets)

    def rebuild(self, batch_size: int, spaces: Sequence[str] | None = None,
                on_batch: Callable[[EmbedReport], None] | None = None) -> None:
        """Rebuild whole spaces from the catalog; the old vectors serve until the new are complete."""
        spaces = [s for s in (spaces or self.active_spaces()) if s in self.active_spaces()]
        targets = {}
        for space in spaces:
            encoder = self.image_encoder if space == IMAGE else self.text_encoder
            targets[space] = self.store.begin_rebuild(space, encoder.model_id, encoder.dim)
        for report in self.embed_ids(self.catalog.ids(), batch_size, targets):
            if on_batch:
                on_batch(report)
        for space in spaces:
            self.store.finish_rebuild(space)
