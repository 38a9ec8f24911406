"""The pieces of one archive, built in one place from its configuration: the catalog, the vector
store, the models, the writer lock, and the vectors a search reads. `memes.app.Archive` runs
the use cases on them; nothing here prints.
"""
from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext, suppress
from functools import cached_property
from typing import Iterator

from archive.catalog import Catalog
from archive.config import Config
from archive.database import without_password
from archive.errors import ArchiveDamaged, DiskFull, MemesError
from archive.lock import search_lock, writer_lock
from archive.model import SPACES
from archive import disk, recordsdir
from archive.vectors import CatalogVectors, MendedVectors, VectorStore
from indexer.annotate import DEFAULT_ANNOTATORS, AnnotationRun, AnnotatorSpec, OllamaAnnotator
from indexer.embedder import Embedder
from indexer.encoders import ClipEncoder, SentenceEncoder
from indexer import queryencoders, queryexport
from indexer.ocr import MemeOcr
from indexer.pictures import Pictures
from search.engine import Searcher

CATALOG_FILE = "catalog.sqlite3"
VECTORS_DIR = "vectors"
THUMBNAILS_DIR = "thumbnails"
ADDED_DIR = "added"  # images added through the gallery


class ArchiveParts:
    """One archive directory: its catalog, its vectors and the models configured for it, each
    made when first used."""

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
        if not self.config.fast_queries:
            return self.text_encoder, self.image_encoder
        return queryencoders.query_side(self.directory, self.text_encoder, self.image_encoder)

    def prepare_fast_queries(self) -> list[str]:
        """Export the query-side models the archive's vectors need and lacks copies of (call
        under `lock()`; loads the models, once); returns what happened, in words."""
        if not self.config.fast_queries:
            return []
        spaces = {name: self.catalog.copies.models(name) for name in SPACES}
        said = queryexport.export_missing(self.directory, spaces, self.text_encoder, self.image_encoder)
        self.__dict__.pop("query_encoders", None)
        return said

    def exists(self) -> bool:
        """Whether there is an archive to read (its records were ever written)."""
        self._require_folder()
        return Catalog.exists_at(self.config.records_url or self.directory / CATALOG_FILE)

    def require_existing(self) -> None:
        """The one guard of every use case that reads or changes what an archive holds."""
        if not self.exists():
            raise MemesError(f"no archive at {self.where}; run `memes index PATH` first")

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
                self.store.close()  # a writer changed Chroma under this long-lived process: read afresh
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
        return limit > 0 and not self.config.records_url and max(map(self.catalog.copies.count, SPACES)) <= limit

    @contextmanager
    def searcher(self, by: str = "texts") -> Iterator[Searcher]:
        """A searcher over the archive, with the query encoders; those a search `by` texts or by
        pictures needs start loading at once."""
        queryencoders.preload(*self.query_encoders, by)
        with self.reading(scan_small=True) as (store, notices):
            searcher = Searcher(self.catalog, store, *self.query_encoders)
            searcher.notices.extend(notices)
            yield searcher

    def annotators(self, kind: str | None = None, model: str | None = None) -> list[AnnotatorSpec]:
        """The configured annotators (the defaults where none are), optionally filtered."""
        specs = [AnnotatorSpec(*a) for a in self.config.annotators] or list(DEFAULT_ANNOTATORS)
        return [s for s in specs if kind in (None, s.kind) and model in (None, s.model, s.source)]

    def annotation_run(self, specs: list[AnnotatorSpec]) -> AnnotationRun:
        c = self.config
        annotator = OllamaAnnotator(c.ollama_hosts, timeout=c.annotate_timeout, retries=c.annotate_retries,
                                    backoff=c.annotate_backoff, keep_alive=c.keep_alive)
        return AnnotationRun(annotator, specs, c.annotate_concurrency * len(c.ollama_hosts))

    def _embed_texts(self, meme_ids: list[str]) -> None:
        """Text vectors for memes whose records changed (imports, annotations)."""
        embedder = self.embedder().without_images()  # texts changed, images did not
        for _ in embedder.embed_ids(list(dict.fromkeys(meme_ids)), self.config.batch_size):
            pass

    def _records_here(self, otherwise: str) -> None:
        """Backups, restores and rebuilds are of a SQLite catalog in the archive directory."""
        if self.config.records_url:
            raise MemesError(f"the records are on a PostgreSQL server: {otherwise}")

    def _forget_catalog(self) -> None:
        if "catalog" in self.__dict__:
            self.__dict__.pop("catalog").close()

