"""The composition root: builds the pieces of one archive in one place and runs the use cases.

Nothing here prints; the CLI (and later the web gallery) turn what these return into output.
"""
from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable, Iterator

from archive.catalog import Catalog
from archive.database import without_password
from archive.config import Config
from archive.errors import ArchiveDamaged, DiskFull, MemeNotFound, MemesError, RecordFormatError
from archive.lock import search_lock, writer_lock
from archive.model import Meme, OcrText, Sighting, merge_record
from archive import disk, readings, recordsdir
from archive.backup import Backup, make_backup, restore_backup
from archive.recordfile import format_record, read_record_file, record_file_name
from archive.vectors import IMAGE, SPACES, CatalogVectors, MendedVectors, VectorStore
from indexer.annotate import (DEFAULT_ANNOTATORS, Annotated, AnnotationRecorder, AnnotationRun,
                              AnnotatorSpec, OllamaAnnotator, image_for_prompt)
from indexer.embedder import TEXT_SPACES, Embedder
from indexer.encoders import ClipEncoder, SentenceEncoder
from indexer import queryencoders
from indexer.imageio import (IMAGE_SUFFIXES, ImageLoadError, decode, file_of, image_of, load_image, thumbnail_file,
                             picture_hashes)
from indexer import upkeep
from indexer.rebuild import Rebuilt, rebuild_catalog, take_back_vectors
from indexer.ocr import MemeOcr
from indexer.pictures import Pictures
from indexer.pipeline import Event, Indexed, Indexer, Notice, Regrouped, Shard, Skipped
from indexer.scan import Found, scan
from search.engine import Searcher
from search.evaluate import KNOWN_ITEM, NEGATIVE, REPOST, SAME_TEMPLATE, Query, Ranked, in_truth_ids
from search.groups import lookalike_groups
from search.query import Filters
from search.results import Answer

CATALOG_FILE = "catalog.sqlite3"
VECTORS_DIR = "vectors"
THUMBNAILS_DIR = "thumbnails"
ADDED_DIR = "added"  # images added through the gallery


@dataclass
class Group:
    """Memes that are one meme seen several times: the same bytes in several files, or
    look-alike copies (re-encoded, resized, cropped) saying the same thing."""

    memes: list[Meme]

    @property
    def earliest(self) -> tuple[Meme, Sighting] | None:
        seen = [(s.seen_at, m.id, s.path, m, s) for m in self.memes for s in m.sightings if s.seen_at]
        return min(seen)[3:] if seen else None


@dataclass
class ImportOutcome:
    path: Path
    meme_id: str | None = None
    merged: bool = False  # folded into a meme already in the archive
    error: str | None = None


@dataclass
class QueryPicture:
    """A picture to search by: its bytes' hash (the meme that is those bytes is no answer) and
    what `Searcher.similar_to_image` needs of it (`Pictures.looked_up`)."""

    content_hash: str
    looked_up: dict


@dataclass
class ExportOutcome:
    written: list[Path] = field(default_factory=list)


class Archive:
    """One archive directory: its catalog, its vectors and the models configured for it."""

    def __init__(self, config: Config, resident: bool = False):
        """`resident`: a long-lived process (the gallery) that keeps the vector index open
        between searches; a command closes it after each, leaving it sealed (`archive.vectorcheck`)."""
        self.config = config
        self.directory = config.archive
        self.resident = resident
        self.disk_full = False  # found full when the catalog was opened: it is then read only
        self._vectors_generation = ""
        self._scanned: tuple[int | None, CatalogVectors] | None = None

    def _require_folder(self) -> None:
        if not self.config.records_url and self.directory.exists() and not self.directory.is_dir():
            raise MemesError(f"the archive path {self.directory} is a file, not a folder: name a folder with "
                             "--archive or MEMES_ARCHIVE")

    @cached_property
    def catalog(self) -> Catalog:
        self._require_folder()
        if self.read_only:
            return Catalog(self.directory / CATALOG_FILE, read_only=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        location = self.config.records_url or self.directory / CATALOG_FILE
        if not self.config.records_url and disk.emptied(location, self.directory / VECTORS_DIR):
            raise disk.catalog_damaged(location, "is empty though the archive has vectors (it was truncated or "
                                             "replaced)")
        try:
            return Catalog(location)
        except DiskFull:
            if self.config.records_url:
                raise
            self.disk_full = True  # read what there is; `lock()` refuses writers
            return Catalog(location, read_only=True)

    @cached_property
    def read_only(self) -> bool:
        """An embedded archive in a folder this process cannot write (a read-only mount, a DVD):
        searched from the catalog alone, with nothing written."""
        return (not self.config.records_url and self.directory.is_dir()
                and not os.access(self.directory, os.W_OK))

    @cached_property
    def store(self) -> VectorStore:
        c = self.config
        return VectorStore(self.directory / VECTORS_DIR, self.catalog, url=c.chroma_url,
                           database=c.chroma_database, token=c.chroma_token)

    @cached_property
    def text_encoder(self) -> SentenceEncoder:
        return SentenceEncoder(self.config.text_model)

    @cached_property
    def image_encoder(self) -> ClipEncoder:
        arch, pretrained = self.config.clip_architecture
        if self.config.clip_checkpoint:
            pretrained = str(self.config.clip_checkpoint)
        return ClipEncoder(arch, pretrained, batch_size=self.config.batch_size)

    @cached_property
    def query_encoders(self) -> tuple:
        """The encoders a search uses: the exported copies of the models where the archive has
        them (no PyTorch; `indexer.queryencoders`), else the models themselves."""
        text, image = self.text_encoder, self.image_encoder
        if not self.config.fast_queries:
            return text, image
        fast_text = queryencoders.exported(self.directory, text)
        image_parts = [queryencoders.exported(self.directory, image, part) for part in ("texts", "images")]
        if fast_text is not None:
            fast_text.preload()
        if any(image_parts):
            image = queryencoders.QueryImageModel(*image_parts, image)
            image.preload()
        return fast_text or text, image

    def prepare_fast_queries(self) -> list[str]:
        """Export the query-side models the archive's vectors need and lacks copies of (call
        under `lock()`; loads the models, once); returns what happened, in words."""
        if not self.config.fast_queries:
            return []
        said = []
        spaces = {name: self.catalog.embedding_models(name) for name in SPACES}
        wanted = [(self.text_encoder, "texts", queryencoders.export_text_model)] if any(
            spaces[n] for n in TEXT_SPACES) else []
        if spaces[IMAGE] == [self.image_encoder.model_id]:
            wanted += [(self.image_encoder, "texts", queryencoders.export_clip_text),
                       (self.image_encoder, "images", queryencoders.export_clip_images)]
        for encoder, part, export in wanted:
            if queryencoders.exported(self.directory, encoder, part) is not None:
                continue
            try:
                said.append(export(encoder, self.directory))
            except MemesError as exc:
                said.append(f"{encoder.model_id}: {part} not exported for fast searches: {exc}")
            except Exception as exc:  # noqa: BLE001 - an exporter's failure leaves searches on PyTorch
                said.append(f"{encoder.model_id}: {part} not exported for fast searches ({type(exc).__name__}: "
                            f"{str(exc).strip()[:160]}); searches use PyTorch")
        self.__dict__.pop("query_encoders", None)
        return said

    def exists(self) -> bool:
        """Whether there is an archive to read (its records were ever written)."""
        self._require_folder()
        return Catalog.exists_at(self.config.records_url or self.directory / CATALOG_FILE)

    @property
    def where(self) -> str:
        """Where the archive lives, in words for messages."""
        if not (self.config.records_url or self.config.chroma_url):
            return str(self.directory)
        records = without_password(self.config.records_url) or str(self.directory / CATALOG_FILE)
        return f"records at {records}, vectors at {self.store.where}"

    @contextmanager
    def lock(self, wait: bool = False, on_wait=None) -> Iterator[None]:
        """The single-writer lock of the embedded default (with records and vectors both on
        servers the servers take concurrent writers, and there is no lock). A writing command
        leaves the archive settled: the catalog's main file whole, the vector index sealed."""
        self._require_folder()
        if self.read_only:
            raise disk.read_only(self.directory)
        if not self.config.records_url and (self.disk_full or disk.disk_full(self.directory)):
            raise self.no_space()
        with nullcontext() if self.config.servers_only else writer_lock(self.directory, wait=wait, on_wait=on_wait):
            try:
                yield
            except BaseException:
                with suppress(Exception):  # the first failure is the one to report
                    self._settle()
                raise
            self._settle()

    def no_space(self) -> DiskFull:
        return disk.no_space(self.directory, CATALOG_FILE)

    def explain(self, exc: BaseException) -> MemesError | None:
        """A failure no layer translated, as a domain error where it is about the archive's disk."""
        return disk.explain(exc, self.directory, CATALOG_FILE)

    def _settle(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
        if "catalog" in self.__dict__:
            if self.keeps_records:
                recordsdir.write_changed(self.catalog, self.directory / recordsdir.RECORDS_DIR)
            self.catalog.checkpoint()

    @property
    def keeps_records(self) -> bool:
        return self.config.keep_records and not self.config.records_url

    @cached_property
    def ocr(self) -> MemeOcr:
        """The configured OCR engines; PP-OCR's models load once per thread and stay."""
        return MemeOcr(self.config.ocr_languages, self.config.ocr_engine_names)

    @cached_property
    def pictures(self) -> Pictures:
        return Pictures(self.catalog, self.ocr, self.config.max_image_pixels)

    def embedder(self) -> Embedder:
        return Embedder(self.catalog, self.store, self.text_encoder, self.image_encoder,
                        self.config.max_image_pixels)

    @contextmanager
    def reading(self, scan_small: bool = False) -> Iterator[tuple[VectorStore | CatalogVectors | MendedVectors,
                                                                  list[str]]]:
        """The vectors to search, and notices: Chroma, or while another process writes the
        archive, the catalog's copies of what it has committed (see `archive.lock`); the copies
        too where Chroma is damaged or lacks a space, and in a read-only archive. `scan_small`:
        a command's search of an archive whose spaces hold at most `exact_scan_limit` vectors
        scans the copies (exact, and Chroma stays shut: opening it costs more than the scan)."""
        if self.read_only:
            yield CatalogVectors(self.catalog), []
            return
        if self.disk_full or (not self.store.on_server and disk.disk_full(self.directory)):  # Chroma writes as it opens
            yield CatalogVectors(self.catalog), [f"the disk holding {self.directory} is full: searching the catalog's "
                                                 "copies of the vectors; free some space for the faster index"]
            return
        if self.store.on_server:  # the server serves readers beside writers
            yield self.store, []
            return
        with search_lock(self.directory) as reading:
            if reading.writer is not None:
                yield CatalogVectors(self.catalog), [
                    f"{reading.writer} is writing this archive; searching what it has committed so far"]
                return
            if scan_small and not self.resident and self._scannable():
                yield self._copies(), []
                return
            if "store" in self.__dict__ and reading.generation != self._vectors_generation:
                self.store.close()  # a writer changed Chroma under this long-lived process
                del self.__dict__["store"]
            self._vectors_generation = reading.generation
            try:
                vectors = MendedVectors(self.store, self.catalog)
            except ArchiveDamaged as exc:
                yield CatalogVectors(self.catalog), [f"{exc}; meanwhile searching those copies"]
                return
            try:
                yield vectors, vectors.notices
            finally:
                if not self.resident:  # Chroma rewrites its files as it closes: sealed as it leaves them
                    self.store.close()

    def _copies(self) -> CatalogVectors:
        """The catalog's vector copies, loaded once and kept (by a process that searches again)
        until another connection commits to the catalog."""
        version = self.catalog.data_version()
        if self._scanned is None or version is None or self._scanned[0] != version:
            self._scanned = (version, CatalogVectors(self.catalog))
        return self._scanned[1]

    def generation(self) -> tuple:
        """What a long-lived process compares to know it still has the same archive: the catalog
        file (a restore or a rebuild puts another in its place) and the exported query models."""
        marks = []
        for path in (self.directory / CATALOG_FILE, self.directory / queryencoders.MODELS_DIR):
            try:
                found = path.stat()
                marks.append((found.st_dev, found.st_ino, found.st_mtime_ns if path.is_dir() else 0))
            except OSError:
                marks.append(None)
        return tuple(marks)

    def _scannable(self) -> bool:
        """Small, and in SQLite here (from a PostgreSQL server every search would fetch them all)."""
        limit = self.config.exact_scan_limit
        return limit > 0 and not self.config.records_url and max(map(self.catalog.embedding_count, SPACES)) <= limit

    @contextmanager
    def searcher(self) -> Iterator[Searcher]:
        """A searcher over the archive, with the query encoders."""
        with self.reading(scan_small=True) as (store, notices):
            searcher = Searcher(self.catalog, store, *self.query_encoders)
            searcher.notices.extend(notices)
            yield searcher

    # --- use cases ---------------------------------------------------------------------------

    def scan(self, paths: Iterable[Path]) -> list[Found]:
        return list(scan(paths))

    def prune(self, roots: Iterable[Path], drop_orphans: bool) -> tuple[int, list[str], bool]:
        """Forget files under `roots` that are gone (call under `lock()`). Returns how many were
        forgotten, the memes left with no file, and whether those were removed (with their
        vectors) or kept (their records stay searchable)."""
        prefixes = [os.path.abspath(r) for r in roots]
        gone = [p for p in self.catalog.sighting_paths()
                if any(p == r or p.startswith(r.rstrip("/") + "/") for r in prefixes) and not os.path.lexists(p)]
        self.catalog.forget_sightings(gone)
        orphans = self.catalog.orphans()
        if drop_orphans and orphans:
            for space in self.store.describe():
                self.store.space(space).delete_memes(orphans)
            with self.catalog.transaction():
                for meme_id in orphans:
                    self.catalog.delete(meme_id)
        return len(gone), orphans, drop_orphans

    def annotators(self, kind: str | None = None, model: str | None = None) -> list[AnnotatorSpec]:
        """The configured annotators (the defaults where none are), optionally filtered."""
        specs = [AnnotatorSpec(*a) for a in self.config.annotators] or list(DEFAULT_ANNOTATORS)
        return [s for s in specs if kind in (None, s.kind) and model in (None, s.model, s.source)]

    def annotation_run(self, specs: list[AnnotatorSpec]) -> AnnotationRun:
        c = self.config
        annotator = OllamaAnnotator(c.ollama_hosts, timeout=c.annotate_timeout, retries=c.annotate_retries,
                                    backoff=c.annotate_backoff, keep_alive=c.keep_alive)
        return AnnotationRun(annotator, specs, c.annotate_concurrency * len(c.ollama_hosts))

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
        return sum(len(self.catalog.annotation_todo(s.kind, s.source, s.prompt_hash, mode))
                   for s in self.annotators(kind, model))

    def annotate(self, kind: str | None = None, model: str | None = None,
                 mode: str = "missing") -> Iterator[Annotated | Notice]:
        """Run annotators over memes already in the archive (call under `lock()`).

        mode: `missing` (no current annotation: never made, pending, failed or stale),
        `pending` (left pending when a server was down), `redo` (all)."""
        specs = self.annotators(kind, model)
        if not specs:
            raise MemesError(f"no configured annotator matches kind={kind} model={model}")
        todo: dict[str, list[AnnotatorSpec]] = {}
        for spec in specs:
            for meme_id in self.catalog.annotation_todo(spec.kind, spec.source, spec.prompt_hash, mode):
                todo.setdefault(meme_id, []).append(spec)
        if not todo:
            return
        run = self.annotation_run(specs)
        recorder = AnnotationRecorder(self.catalog)
        yield from (Notice(m) for m in recorder.already_said(run.start()))
        touched: list[str] = []
        try:
            for meme_id, wanted in todo.items():
                meme = self.catalog.require(meme_id)
                image = image_of(meme, self.config.max_image_pixels)
                if image is None:
                    yield Notice(f"meme {meme_id}: none of its files still holds its image; not annotated")
                    continue
                run.submit(meme.content_hash, image_for_prompt(image, self.config.annotate_image_side), wanted)
                yield from self._record(run.finished(), recorder, touched)
            yield from self._record(run.finished(wait=True), recorder, touched)
        finally:
            run.close()
            self._embed_texts(touched)
        if summary := recorder.summary():
            yield Notice(summary)

    def _record(self, results, recorder: AnnotationRecorder, touched: list[str]) -> Iterator[Annotated | Notice]:
        for result in results:
            meme_id = self.catalog.id_for_content(result.content_hash)
            yield from (Notice(m) for m in recorder.record(result, meme_id))
            touched.append(meme_id)
            yield Annotated(meme_id, result.spec.kind, result.spec.source, result.error is None)

    def _embed_texts(self, meme_ids: list[str]) -> None:
        """Text vectors for memes whose records changed (imports, annotations)."""
        embedder = self.embedder().without_images()  # texts changed, images did not
        for _ in embedder.embed_ids(list(dict.fromkeys(meme_ids)), self.config.batch_size):
            pass

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
        with self.searcher() as searcher:
            if meme_id is None:
                try:
                    loaded = load_image(path, self.config.max_image_pixels)
                except ImageLoadError as exc:
                    raise MemesError(f"{path}: {exc}") from None
                return self._similar_to_picture(
                    searcher, QueryPicture(loaded.content_hash, self.pictures.looked_up(loaded.rgb)), k)
            return Answer(searcher.similar_to_meme(meme_id, k, self.pictures.pixels_of(meme_id)),
                          notices=searcher.notices)

    def similar_to_meme(self, meme_id: str, k: int) -> Answer:
        """Memes like one in the archive, given by its exact id."""
        meme_id = self.catalog.require(meme_id).id
        with self.searcher() as searcher:
            return Answer(searcher.similar_to_meme(meme_id, k, self.pictures.pixels_of(meme_id)),
                          notices=searcher.notices)

    def similar_to_bytes(self, data: bytes, k: int) -> Answer:
        """Memes like an image given as bytes (an upload); raises MemesError for a bad one."""
        return self.similar_to_picture(self.query_picture(data), k)

    def query_picture(self, data: bytes) -> QueryPicture:
        """An image given as bytes made ready to search by: decoded, hashed, its words read. The
        heavy part of a search by image, and it touches nothing of the archive (a gallery runs it
        beside other requests). Raises MemesError for a bad image."""
        try:
            loaded = decode(data, self.config.max_image_pixels)
        except ImageLoadError as exc:
            raise MemesError(str(exc)) from None
        return QueryPicture(loaded.content_hash, self.pictures.looked_up(loaded.rgb))

    def similar_to_picture(self, query: QueryPicture, k: int) -> Answer:
        with self.searcher() as searcher:
            return self._similar_to_picture(searcher, query, k)

    def _similar_to_picture(self, searcher: Searcher, query: QueryPicture, k: int) -> Answer:
        """Search by a looked-up picture; the meme that is its very bytes is not an answer, and
        is named as `itself`."""
        itself = self.catalog.id_for_content(query.content_hash)
        return Answer(searcher.similar_to_image(k=k, exclude=itself, **query.looked_up), notices=searcher.notices,
                      itself=itself)

    def evaluate(self, queries: list[Query], truth: list[dict]) -> tuple[list[Ranked], list[str]]:
        """Run labelled queries (see `search.evaluate`): each signal's ranking for each, memes
        named by their truth ids (matched by file name). Returns them and notices."""
        by_file = {row["file"]: row["id"] for row in truth}
        to_truth: dict[str, str] = {}
        for meme_id in self.catalog.ids():
            for path in self.catalog.require(meme_id).sightings:
                if os.path.basename(path.path) in by_file:
                    to_truth.setdefault(meme_id, by_file[os.path.basename(path.path)])
        to_meme = {t: m for m, t in to_truth.items()}
        ranked: list[Ranked] = []
        notices: list[str] = []
        with self.searcher() as searcher:
            for query in queries:
                if query.type in (KNOWN_ITEM, NEGATIVE):
                    hits = searcher.text_rankings(query.text or "")
                elif query.type == REPOST:
                    try:
                        loaded = load_image(query.image, self.config.max_image_pixels)
                    except ImageLoadError as exc:
                        notices.append(f"query {query.id}: {query.image}: {exc}")
                        continue
                    hits = searcher.image_rankings(exclude=self.catalog.id_for_content(loaded.content_hash),
                                                   **self.pictures.looked_up(loaded.rgb))
                elif query.type == SAME_TEMPLATE and query.meme in to_meme:
                    hits = searcher.meme_rankings(to_meme[query.meme], self.pictures.pixels_of(to_meme[query.meme]))
                else:
                    notices.append(f"query {query.id}: {query.type} {query.meme or ''} cannot be run on this archive")
                    continue
                ranked.append(Ranked(query, in_truth_ids(hits, to_truth)))
            notices += searcher.notices
        return ranked, list(dict.fromkeys(notices))

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
        jobs = self.catalog.annotation_stats({})["by_annotator"].values()
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
        found = lookalike_groups(self.catalog)
        grouped = {i for g in found for i in g}
        found += [[i] for i in self.catalog.with_several_sightings() if i not in grouped]
        groups = [Group([self.catalog.require(i) for i in ids]) for ids in found]
        return sorted(groups, key=lambda g: (g.earliest[1].seen_at.isoformat() if g.earliest else "", g.memes[0].id))

    def add_image(self, data: bytes, name: str) -> tuple[str, bool]:
        """Keep an uploaded image in the archive's own folder and index it (call under `lock()`).
        Returns its meme id and whether the meme is new to the archive."""
        try:
            loaded = decode(data, self.config.max_image_pixels)
        except ImageLoadError as exc:
            raise MemesError(str(exc)) from None
        suffix = Path(name).suffix.lower()
        suffix = suffix if suffix in IMAGE_SUFFIXES else f".{(loaded.format or 'png').lower()}"
        target = self.directory / ADDED_DIR / f"{loaded.content_hash[:16]}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            partial = target.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(target)
        events = list(self.index(self.scan([target])))
        for event in events:
            if isinstance(event, Skipped):
                raise MemesError(event.reason)
        meme_id = self.catalog.id_for_content(loaded.content_hash)
        if meme_id is None:
            raise MemesError("the image could not be indexed")
        return meme_id, any(isinstance(e, Indexed) and e.new_meme for e in events) and not any(
            isinstance(e, Regrouped) for e in events)

    def import_records(self, paths: Iterable[Path]) -> Iterator[ImportOutcome]:
        """Read record files into the archive (call under `lock()`) and embed their texts."""
        touched: list[str] = []
        for path in paths:
            try:
                incoming = read_record_file(path)
            except RecordFormatError as exc:
                yield ImportOutcome(path, error=str(exc))
                continue
            meme_id, merged = self._import_one(incoming, path)
            touched.append(meme_id)
            yield ImportOutcome(path, meme_id, merged)
        self._embed_texts(touched)

    def _import_one(self, incoming: Meme, path: Path) -> tuple[str, bool]:
        target = None
        if incoming.content_hash:
            target = self.catalog.id_for_content(incoming.content_hash)
        if target is None and incoming.phash:
            # a record of an image goes with a record of the same picture that has no image yet,
            # never with another image: memes of one template share perceptual hashes
            candidates = self.catalog.ids_for_phash(incoming.phash, without_image=bool(incoming.content_hash))
            target = candidates[0] if candidates else None
        with self.catalog.transaction():
            if target is not None:
                meme = merge_record(self.catalog.require(target), incoming)
                self.catalog.unmark_vectors(target, list(TEXT_SPACES))  # its image is unchanged
            else:
                meme = incoming
                meme.id = _new_record_id(incoming, path)
            self.catalog.save(meme)
        return meme.id, target is not None

    def split(self, meme_ref: str, path: str) -> Meme:
        """Make the file at `path`, an altered copy joined to a meme, a meme of its own (call
        under `lock()`): its sightings, and the words OCR read on it, move to the new meme, and
        no later indexing joins it to that meme again. Returns the new meme."""
        meme = self.meme(meme_ref)
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
            loaded = load_image(Path(sighting.path), self.config.max_image_pixels)
        except ImageLoadError as exc:
            raise MemesError(f"{path}: {exc}") from None
        if loaded.content_hash != digest:
            raise MemesError(f"{path} has changed since it was indexed; run `memes index` on it first")
        if not texts:  # joined before copies' words were kept
            texts = [OcrText(engine, text) for engine, text in self.ocr.read_all(loaded.rgb)]
        moved = [s for s in meme.sightings if s.content_hash == digest]
        new = Meme(id=copy, content_hash=digest, phash=picture_hashes(loaded.rgb)[0], width=loaded.width,
                   height=loaded.height, sections=texts, first_seen=min(s.seen_at for s in moved),
                   kept_apart=[meme.content_hash])
        with self.catalog.transaction():
            self.catalog.save(new)
            self.catalog.move_sightings(digest, new.id)
            self.catalog.drop_sections(meme.id, [o for o in meme.copy_texts if o.copy == copy])
            kept = [s.seen_at for s in meme.sightings if s.content_hash != digest]
            if kept and meme.first_seen == new.first_seen:  # it was first seen as that copy
                self.catalog.set_first_seen(meme.id, min(kept))
        self._embed_texts([new.id])
        return self.catalog.require(new.id)

    def join(self, meme_ref: str, other_ref: str) -> Meme:
        """Make meme `other_ref` one more sighting of meme `meme_ref` (call under `lock()`): its
        files become the meme's sightings, the words OCR read on them stay searchable as the
        copy's, its vision-model annotations are dropped (the meme keeps its own), and no later
        indexing separates them. Returns the meme."""
        meme, other = self.meme(meme_ref), self.meme(other_ref)
        if meme.id == other.id:
            raise MemesError(f"{meme_ref} and {other_ref} are one meme already")
        if not meme.content_hash or not other.content_hash:
            raise MemesError("only memes indexed from images can be joined (a record without one is imported)")
        with self.catalog.transaction():
            self.catalog.merge_into(meme.id, other)
            self.catalog.put_identity_rule(other.content_hash, "with", meme.content_hash)
        for space in self.store.describe():
            self.store.space(space).delete_memes([other.id])
        return self.catalog.require(meme.id)

    def export(self, directory: Path) -> ExportOutcome:
        """Write every meme as a record file named `NNN_<perceptual hash>.txt`, oldest first."""
        directory.mkdir(parents=True, exist_ok=True)
        outcome = ExportOutcome()
        for sequence, meme_id in enumerate(self.catalog.ids()):
            meme = self.catalog.require(meme_id)
            target = directory / record_file_name(sequence, meme)
            target.write_text(format_record(meme), encoding="utf-8")
            outcome.written.append(target)
        return outcome

    def reindex(self, on_batch=None, text_only: bool = False) -> None:
        """Rebuild vector spaces from the catalog and the images (call under `lock()`);
        `text_only` rebuilds the text spaces and decodes no image."""
        embedder = self.embedder()
        if text_only:
            embedder = embedder.without_images()
        else:
            embedder.image_encoder.load()  # raises ModelUnavailable: better now than half-way
        embedder.rebuild(self.config.batch_size, on_batch=on_batch)

    def doctor(self, repair: bool = True) -> dict:
        """Check the catalog and the vector index, and repair what can be (call under `lock()`):
        see `indexer.upkeep`."""
        return upkeep.checkup(self.catalog, self.store, self.embedder(), self.config.batch_size, repair)

    def backup(self, dest: Path) -> Backup:
        """A whole copy of the catalog in the folder `dest`, taken while searches and writers go on."""
        self._records_here("back them up with pg_dump")
        if not self.exists():
            raise MemesError(f"no archive at {self.where}")
        return make_backup(self.directory, dest)

    def restore(self, source: Path) -> Backup:
        """Put a backup's catalog in place (call under `lock()`); the catalog it replaces and the
        records folder written from it are kept beside them. Run `doctor` next: it makes the
        vector index agree with the restored catalog."""
        self._records_here("restore them with the server's own tools")
        self._forget_catalog()
        restored = restore_backup(source, self.directory)
        records = self.directory / recordsdir.RECORDS_DIR
        if records.exists():  # written from the catalog replaced; written anew from the restored one
            records.rename(records.with_name(f"{records.name}.{disk.aside_label('replaced')}"))
        self.catalog.note_every_record()
        return restored

    def _records_here(self, otherwise: str) -> None:
        """Backups, restores and rebuilds are of a SQLite catalog in the archive directory."""
        if self.config.records_url:
            raise MemesError(f"the records are on a PostgreSQL server: {otherwise}")

    def _forget_catalog(self) -> None:
        if "catalog" in self.__dict__:
            self.__dict__.pop("catalog").close()

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
        numbers["pending_vectors"] = {space: len(self.catalog.needing_vectors(space, model, space == IMAGE))
                                      for space, model in models.items()}
        numbers["annotation_jobs"] = self.catalog.annotation_stats(
            {(s.kind, s.source): s.prompt_hash for s in self.annotators()})
        numbers["archive"] = self.where
        numbers["size_bytes"] = disk.tree_size(self.directory)
        return numbers


def _new_record_id(meme: Meme, path: Path) -> str:
    """Ids are content hashes for images; an imported record without one goes by its
    perceptual hash (as its file name says), or failing that by a hash of its text."""
    if meme.content_hash:
        return meme.content_hash[:16]
    if meme.phash:
        return meme.phash
    return hashlib.sha256(format_record(meme).encode()).hexdigest()[:16]
