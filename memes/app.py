"""The facade: the use cases of one archive, each a short method over its parts (`memes.wiring`).

Nothing here prints; the CLI (and later the web gallery) turn what these return into output.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

from archive.errors import ArchiveDamaged, MemeNotFound, MemesError
from archive.model import IMAGE, TEXT_SPACES, Meme
from archive import disk, readings, recordsdir, transfer
from archive.backup import Backup, make_backup, restore_backup
from archive.recordfile import format_record
from archive.transfer import ExportOutcome, ImportOutcome
from indexer.annotate import Annotated, Notice, annotate_memes, annotation_todo
from indexer import identity, upkeep
from indexer.imageio import ImageLoadError, file_of, keep_upload, thumbnail_file
from indexer.rebuild import Rebuilt, rebuild_catalog, take_back_vectors
from indexer.pictures import QueryPicture
from indexer.pipeline import Event, Indexed, Indexer, Regrouped, Shard, Skipped
from indexer.scan import Found, scan
from search.engine import Searcher
from search.evaluate import Query, Ranked, run_queries
from search.groups import Group, seen_more_than_once
from search.query import Filters
from search.results import Answer

from .wiring import ADDED_DIR, CATALOG_FILE, THUMBNAILS_DIR, ArchiveParts


class Archive(ArchiveParts):
    """One archive and what can be done with it: one short method per use case, over the pieces
    `ArchiveParts` builds."""

    def scan(self, paths: Iterable[Path]) -> list[Found]:
        return list(scan(paths))

    def prune(self, roots: Iterable[Path], drop_orphans: bool) -> tuple[int, list[str], bool]:
        """Forget files under `roots` that are gone (call under `lock()`; `indexer.upkeep.forget_missing`)."""
        return upkeep.forget_missing(self.catalog, self.store, roots, drop_orphans)

    def index(self, found: list[Found], annotate: bool | None = None, shard: Shard | None = None) -> Iterator[Event]:
        """Index files (call under `lock()`); yields one event per file, and notices. With a
        shard, only the files whose bytes fall to it (the others as `OtherShard`)."""
        annotate = self.config.annotate if annotate is None else annotate
        specs = self.annotators() if annotate else []
        indexer = Indexer(self.catalog, self.embedder(), self.ocr,
                          workers=self.config.workers, batch_size=self.config.batch_size,
                          max_pixels=self.config.max_image_pixels,
                          annotations=self.annotation_run(specs) if specs else None,
                          annotation_image_side=self.config.annotate_image_side,
                          group_reposts=self.config.group_reposts, shard=shard)
        return indexer.run(found)

    def annotation_jobs(self, kind: str | None, model: str | None, mode: str) -> int:
        """How many (meme, annotator) requests `annotate` would make."""
        return sum(map(len, annotation_todo(self.catalog, self.annotators(kind, model), mode).values()))

    def annotate(self, kind: str | None = None, model: str | None = None,
                 mode: str = "missing") -> Iterator[Annotated | Notice]:
        """Run annotators over memes already in the archive (call under `lock()`); `mode` as in
        `indexer.annotate.annotation_todo`."""
        specs = self.annotators(kind, model)
        if not specs:
            raise MemesError(f"no configured annotator matches kind={kind} model={model}")
        todo = annotation_todo(self.catalog, specs, mode)
        if todo:
            yield from annotate_memes(self.catalog, self.annotation_run(specs), todo, self.config.max_image_pixels,
                                      self.config.annotate_image_side, after=self._embed_texts)

    def warm_up(self) -> list[str]:
        """Load the models and open the index a first search would wait for; returns notices."""
        with self.searcher() as searcher:
            searcher.warm_up()
            return searcher.notices

    def search(self, query: str, k: int, filters: Filters | None = None, sort: str = "relevance") -> Answer:
        """Memes matching a query in the query language (`search.query`), among those `filters`
        admit, best first or newest first (`sort`)."""
        with self.searcher() as searcher:
            results = searcher.search(query, k, filters, sort)
            return Answer(results, searcher.closest, searcher.notices, total=searcher.matched)

    def search_each(self, queries: Iterable[str], k: int, filters: Filters | None = None,
                    sort: str = "relevance") -> Iterator[tuple[str, Answer]]:
        """Several queries with the index opened once: each with its answer (and the notices new
        with it)."""
        with self.searcher() as searcher:
            for query, results in searcher.search_each(queries, k, filters, sort):
                yield query, Answer(results, searcher.closest, list(searcher.notices), total=searcher.matched)
                searcher.notices.clear()

    def similar(self, ref: str, k: int) -> Answer:
        """Memes like an image file (in the archive or not) or like a meme given by id or hash.
        A file whose bytes are a meme of the archive is no answer; the answer names it (`itself`)."""
        path = Path(ref).expanduser()
        meme_id = None
        if not path.is_file():
            try:
                meme_id = self.catalog.resolve(ref)
            except MemeNotFound:
                if not (path.exists() or os.sep in ref):  # not a path: an id or hash that matches nothing
                    raise
                raise MemesError(f"{ref}: " + ("a folder, not an image file" if path.is_dir() else "not a regular "
                                               "file" if path.exists() else "no such file or meme")) from None
        with self.searcher("pictures" if meme_id is None else "texts") as searcher:
            if meme_id is None:  # its OCR runs beside the loading of the image model
                return self._similar_to_picture(searcher, self.pictures.from_file(path), k)
            return Answer(searcher.similar_to_meme(meme_id, k, self.pictures.pixels_of(meme_id)),
                          notices=searcher.notices)

    def similar_to_meme(self, meme_id: str, k: int) -> Answer:
        """Memes like one in the archive, given by its exact id."""
        meme_id = self.catalog.require(meme_id).id
        with self.searcher() as searcher:
            return Answer(searcher.similar_to_meme(meme_id, k, self.pictures.pixels_of(meme_id)),
                          notices=searcher.notices)

    def query_picture(self, data: bytes) -> QueryPicture:
        """An image given as bytes made ready to search by (`Pictures.from_bytes`): the heavy part
        of a search by image, touching nothing of the archive. Raises MemesError for a bad image."""
        return self.pictures.from_bytes(data)

    def similar_to_picture(self, query: QueryPicture, k: int) -> Answer:
        with self.searcher("pictures") as searcher:
            return self._similar_to_picture(searcher, query, k)

    def _similar_to_picture(self, searcher: Searcher, query: QueryPicture, k: int) -> Answer:
        """The meme that is the picture's very bytes is not an answer, and is named as `itself`."""
        itself = self.catalog.id_for_content(query.content_hash)
        return Answer(searcher.similar_to_image(k=k, exclude=itself, **query.looked_up), notices=searcher.notices,
                      itself=itself)

    def evaluate(self, queries: list[Query], truth: list[dict]) -> tuple[list[Ranked], list[str]]:
        """Run labelled queries (`search.evaluate.run_queries`); returns the rankings and notices."""
        with self.searcher() as searcher:
            return run_queries(self.catalog, searcher, self.pictures, queries, truth)

    def show(self, ref: str) -> str:
        return format_record(self.meme(ref))

    def meme(self, ref: str) -> Meme:
        """A meme given by id, id prefix, content hash or file path."""
        return self.catalog.require(self.catalog.resolve(ref))

    def record(self, meme_id: str) -> Meme:
        """The meme with exactly this id (raises MemeNotFound)."""
        return self.catalog.require(meme_id)

    def recent(self, page: int, per_page: int) -> tuple[int, list[Meme]]:
        """Memes most recently first seen first, one page of them (pages count from 1)."""
        total, ids = self.catalog.recent((max(page, 1) - 1) * per_page, per_page)
        return total, [self.catalog.require(i) for i in ids]

    def summary(self) -> dict:
        """What the home page says the archive holds: memes, sightings, annotations pending."""
        numbers = self.catalog.stats()
        jobs = self.catalog.jobs.stats({})["by_annotator"].values()
        return {"memes": numbers["memes"], "sightings": numbers["sightings"],
                "pending_annotations": sum(j["pending"] for j in jobs)}

    def example_queries(self, n: int = 3, among: int = 200) -> list[str]:
        """A few searches drawn from the words of the `among` most recently first seen memes."""
        _, ids = self.catalog.recent(0, among)
        texts = self.catalog.ocr_texts(ids)
        return readings.example_phrases((texts[i] for i in ids if i in texts), n)

    def with_image(self, meme_ids: list[str]) -> set[str]:
        """Those of `meme_ids` that have an image to show."""
        return self.catalog.with_image(meme_ids)

    def image_of_meme(self, ref: str) -> tuple[str, bytes]:
        """The first file of a meme (given by id, hash or path) that still holds its image, and
        its bytes; MemesError where there is none."""
        meme = self.meme(ref)
        found = file_of(meme)
        if found is None:
            raise MemesError(f"meme {meme.id} " + ("was imported without an image" if meme.content_hash is None
                                                    else "has no file left that holds its image"))
        return found

    def image_file(self, meme_id: str) -> tuple[str, bytes] | None:
        """The meme's image: the first of its files that still holds its bytes, and the bytes."""
        return file_of(self.catalog.require(meme_id))

    def thumbnail(self, meme_id: str) -> Path | None:
        """A small WebP of the meme, made once and kept in the archive."""
        return thumbnail_file(self.catalog.require(meme_id), self.directory / THUMBNAILS_DIR,
                              self.config.max_image_pixels)

    def groups(self) -> list[Group]:
        """Every meme seen more than once: in several files, or as look-alike copies."""
        return seen_more_than_once(self.catalog)

    def add_image(self, data: bytes, name: str) -> tuple[str, bool]:
        """Keep an uploaded image in the archive's own folder and index it (call under `lock()`).
        Returns its meme id and whether the meme is new to the archive."""
        try:
            target, digest = keep_upload(data, name, self.directory / ADDED_DIR, self.config.max_image_pixels)
        except ImageLoadError as exc:
            raise MemesError(str(exc)) from None
        events = list(self.index(self.scan([target])))
        for event in events:
            if isinstance(event, Skipped):
                raise MemesError(event.reason)
        meme_id = self.catalog.id_for_content(digest)
        if meme_id is None:
            raise MemesError("the image could not be indexed")
        return meme_id, any(isinstance(e, Indexed) and e.new_meme for e in events) and not any(
            isinstance(e, Regrouped) for e in events)

    def import_records(self, paths: Iterable[Path]) -> Iterator[ImportOutcome]:
        """Read record files into the archive (call under `lock()`) and embed their texts."""
        touched: list[str] = []
        for outcome in transfer.import_records(self.catalog, paths):
            touched += [outcome.meme_id] if outcome.meme_id else []
            yield outcome
        self._embed_texts(touched)

    def split(self, meme_ref: str, path: str) -> Meme:
        """Make the file at `path`, an altered copy joined to a meme, a meme of its own (call
        under `lock()`; `indexer.identity.split_copy`). Returns the new meme."""
        new_id = identity.split_copy(self.catalog, self.ocr, self.meme(meme_ref), path, self.config.max_image_pixels)
        self._embed_texts([new_id])
        return self.catalog.require(new_id)

    def join(self, meme_ref: str, other_ref: str) -> Meme:
        """Make meme `other_ref` one more sighting of meme `meme_ref` (call under `lock()`;
        `indexer.identity.join_memes`). Returns the meme."""
        meme, other = self.meme(meme_ref), self.meme(other_ref)
        if meme.id == other.id:
            raise MemesError(f"{meme_ref} and {other_ref} are one meme already")
        identity.join_memes(self.catalog, self.store, meme, other)
        return self.catalog.require(meme.id)

    def export(self, directory: Path) -> ExportOutcome:
        """Write every meme as a record file named `NNN_<perceptual hash>.txt`, oldest first."""
        return transfer.export_records(self.catalog, directory)

    def reindex(self, on_batch=None, text_only: bool = False) -> None:
        """Rebuild vector spaces from the catalog and the images (call under `lock()`);
        `text_only` rebuilds the text spaces and decodes no image."""
        embedder = self.embedder().without_images() if text_only else self.embedder()
        if not text_only:
            embedder.image_encoder.load()  # raises ModelUnavailable: better now than half-way
        embedder.rebuild(self.config.batch_size, on_batch=on_batch)

    def doctor(self, repair: bool = True) -> dict:
        """Check the catalog and the vector index, and repair what can be (call under `lock()`):
        see `indexer.upkeep`."""
        return upkeep.checkup(self.catalog, self.store, self.embedder(), self.config.batch_size, repair)

    def backup(self, dest: Path) -> Backup:
        """A whole copy of the catalog in the folder `dest`, taken while searches and writers go on."""
        self._records_here("back them up with pg_dump")
        self.require_existing()
        return make_backup(self.directory, dest)

    def restore(self, source: Path) -> Backup:
        """Put a backup's catalog in place (call under `lock()`); the catalog it replaces and the
        records folder written from it are kept beside them. Run `doctor` next: it makes the
        vector index agree with the restored catalog."""
        self._records_here("restore them with the server's own tools")
        self._forget_catalog()
        restored = restore_backup(source, self.directory)
        recordsdir.put_aside(self.directory / recordsdir.RECORDS_DIR)  # written anew from the restored catalog
        self.catalog.note_every_record()
        return restored

    def rebuild(self) -> Rebuilt:
        """Make the catalog anew from records/ and the images (call under `lock()`), then take
        back the vectors the index holds and embed only what is missing (see `indexer.rebuild`)."""
        self._records_here("restore them with the server's own tools")
        self._forget_catalog()  # the damaged one is not read again
        outcome = rebuild_catalog(self.directory / recordsdir.RECORDS_DIR, self.directory / CATALOG_FILE,
                                  self.config.max_image_pixels)
        try:
            outcome.vectors_taken = take_back_vectors(self.catalog, self.store)
        except ArchiveDamaged:
            pass  # `doctor` (run next) moves a damaged index aside and rebuilds it
        return outcome

    def stats(self) -> dict:
        numbers = self.catalog.stats()
        with self.reading() as (store, _):
            numbers["vectors"] = store.describe() if self.store.exists() else {}
        models = {space: self.text_encoder.model_id for space in TEXT_SPACES}
        models[IMAGE] = self.image_encoder.model_id
        numbers["configured_models"] = models
        numbers["pending_vectors"] = {space: len(self.catalog.marks.needing(space, model, space == IMAGE))
                                      for space, model in models.items()}
        numbers["annotation_jobs"] = self.catalog.jobs.stats(
            {(s.kind, s.source): s.prompt_hash for s in self.annotators()})
        numbers["archive"] = self.where
        numbers["size_bytes"] = disk.tree_size(self.directory)
        return numbers

