"""The indexing pipeline: files in, records and vectors out.

Unchanged files (same size and modification time as at their last sighting) are skipped
without being read. Known bytes under a new path become a new sighting of the same meme. New
images are decoded, hashed and read by OCR on a pool of threads (tesseract runs as its own
process, so threads keep every core busy), then saved to the catalog and embedded in batches.
Each batch is committed before the next one starts: an interrupted run loses at most the batch
in flight, and vectors missing after a crash are made by the next run.
"""
from __future__ import annotations

import os
import stat
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

from PIL import Image

from archive.catalog import Catalog
from archive.errors import ModelUnavailable
from archive.model import Meme, OcrText, Sighting, utc_now

from .annotate import AnnotationRecorder, AnnotationRun, Notice, image_for_prompt
from .embedder import Embedder
from .imageio import ImageLoadError, content_hash, decode, model_input, picture_hashes
from .ocr import MemeOcr
from .regrid import comparable
from .reposts import Reposts, area
from .scan import Found


# --- what a run reports, one event per file (plus notices) --------------------------------

@dataclass
class Indexed:
    path: Path
    meme_id: str
    new_meme: bool  # False: a new sighting of a meme already in the archive
    joined: bool = False  # a new sighting because it is an altered copy (other bytes) of the meme


@dataclass
class Regrouped:
    """A file indexed earlier in the run is a sighting of another meme now: the file that was a
    new meme (`new_meme`; an altered copy of this one), or a file that had joined it."""
    path: Path
    meme_id: str
    new_meme: bool = True


@dataclass
class Unchanged:
    path: Path


@dataclass
class Skipped:
    path: Path
    reason: str


@dataclass
class OtherShard:
    path: Path  # new bytes another shard's indexer takes


Event = Indexed | Regrouped | Unchanged | Skipped | Notice | OtherShard


@dataclass(frozen=True)
class Shard:
    """Share `number` of `count` (1-based): the files whose bytes' hash falls to it. Every
    indexer of a collection reads every new file to hash it, and takes only its share, so N
    indexers together take each file exactly once, and copies of one file go to one of them."""

    number: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        number, _, count = text.partition("/")
        try:
            shard = cls(int(number), int(count))
        except ValueError:
            raise ValueError(f"a shard is I/N, like 1/4; got {text!r}") from None
        if not 1 <= shard.number <= shard.count:
            raise ValueError(f"a shard is I/N with 1 <= I <= N; got {text!r}")
        return shard

    def takes(self, content_hash: str) -> bool:
        return int(content_hash[:15], 16) % self.count == self.number - 1

    def __str__(self) -> str:
        return f"{self.number}/{self.count}"


# --- work done on the thread pool -----------------------------------------------------------

@dataclass
class _Prepared:
    found: Found
    sighting: Sighting
    content_hash: str
    known: str | None = None  # the meme that held these bytes before this run
    meme: Meme | None = None  # None: the bytes were already known or claimed by another file
    picture: Image.Image | None = None  # for the image model
    # for repost grouping, no larger than its pixel judge keeps it (`regrid.comparable`)
    image: Image.Image | None = None
    phashes: list[str] | None = None  # whole, and without a frame


def _sighting(path: Path, st: os.stat_result, now: datetime) -> Sighting:
    modified = datetime.fromtimestamp(st.st_mtime, timezone.utc).replace(microsecond=0)
    return Sighting(path=str(path), seen_at=min(modified, now), size=st.st_size, mtime=st.st_mtime)


class Indexer:
    """Indexes image files into an archive. Build one per run; not thread-safe itself."""

    def __init__(self, catalog: Catalog, embedder: Embedder, ocr: MemeOcr, *, workers: int = 2,
                 batch_size: int = 16, max_pixels: int = 64_000_000, clock: Callable[[], datetime] = utc_now,
                 annotations: AnnotationRun | None = None, annotation_image_side: int = 1024,
                 group_reposts: bool = True, shard: Shard | None = None):
        self.catalog = catalog
        self.shard = shard
        self.reposts = Reposts(catalog, max_pixels) if group_reposts else None
        self.annotations = annotations
        self.annotation_image_side = annotation_image_side
        self.recorder = AnnotationRecorder(catalog)
        self._held: list = []  # annotation results whose meme is not committed yet
        self.embedder = embedder
        self.ocr = ocr
        self.workers = workers
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        self.clock = clock
        self._claims: dict[str, str | None] = {}  # bytes met this run -> the meme that held them before
        self._claims_lock = threading.Lock()
        self._placed: dict[str, tuple[str, bool]] = {}  # bytes -> (their meme, whether its own image)
        self._unsent: list[tuple[Path, str, list]] = []  # new images the vision models had no room for

    def run(self, found: Iterable[Found]) -> Iterator[Event]:
        """Index every file; yields one event per file once its outcome is committed."""
        self.ocr.check()
        todo: list[tuple[Found, os.stat_result]] = []
        for item in found:
            event_or_stat = self._triage(item)
            if isinstance(event_or_stat, os.stat_result):
                todo.append((item, event_or_stat))
            else:
                yield event_or_stat
        if todo or self.embedder.pending():
            yield from self._check_image_model()
        if todo and self.annotations is not None:
            yield from (Notice(m) for m in self.recorder.already_said(self.annotations.start()))
        try:
            yield from self._index(todo)
            yield from self._collect_annotations(wait=True)
            yield from self._second_look()
        finally:
            if self.annotations is not None:
                self.annotations.close()
        yield from self._embed_pending()
        if summary := self.recorder.summary():
            yield Notice(summary)

    def _second_look(self) -> Iterator[Event]:
        """Join the run's copies met before their originals to the memes they repeat."""
        if self.reposts is None:
            return
        for meme_id, target in self.reposts.second_look():
            meme = self.catalog.get(meme_id)
            if meme is None or self.catalog.get(target) is None:
                continue
            self.catalog.merge_into(target, meme)
            self.reposts.merged(meme, target)
            for space in self.embedder.store.describe():
                self.embedder.store.space(space).delete_memes([meme_id])
            own = next((s for s in meme.sightings if s.content_hash == meme.content_hash), meme.sightings[0])
            for sighting in meme.sightings:
                yield Regrouped(Path(sighting.path), target, new_meme=sighting is own)

    def _triage(self, item: Found) -> Event | os.stat_result:
        if item.problem:
            return Skipped(item.path, item.problem)
        try:
            st = item.path.stat()
        except OSError as exc:
            return Skipped(item.path, exc.strerror or str(exc))
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the run forever on read
            return Skipped(item.path, "not a regular file")
        known = self.catalog.sighting_at(str(item.path))
        if known is not None and known["size"] == st.st_size and known["mtime"] == st.st_mtime:
            return Unchanged(item.path)
        return st

    def _check_image_model(self) -> Iterator[Event]:
        encoder = self.embedder.image_encoder
        if encoder is None:
            return
        try:
            encoder.load()
        except ModelUnavailable as exc:
            self.embedder = self.embedder.without_images()
            yield Notice(f"{exc}; going on without image vectors (text search and perceptual-hash "
                         "similarity still work; `memes reindex` adds them later)")

    def _index(self, todo: list[tuple[Found, os.stat_result]]) -> Iterator[Event]:
        yield from self._index_files(todo)
        if self._unsent:  # the vision models are the slowest stage: feed them the rest now
            feeder = threading.Thread(target=self._feed_unsent, daemon=True)
            feeder.start()
            while feeder.is_alive():
                feeder.join(0.5)
                yield from self._collect_annotations()

    def _offer_annotation(self, path: Path, digest: str, rgb: Image.Image) -> None:
        """Send a new image to the vision models as soon as it is decoded, ahead of its OCR, where
        they have room; what they have none for is sent once the files are read (the models are
        then still busy, so the second decoding costs the run nothing)."""
        left = self.annotations.offer(digest, lambda: image_for_prompt(rgb, self.annotation_image_side))
        if left:
            self._unsent.append((path, digest, left))

    def _feed_unsent(self) -> None:
        """On an error, run() closes the annotations: this stops. Files changed since are left."""
        for path, digest, specs in self._unsent:
            if self.annotations.closed:
                return
            try:
                data = path.read_bytes()
                if content_hash(data) != digest:
                    continue
                picture = image_for_prompt(decode(data, self.max_pixels).rgb, self.annotation_image_side)
            except (OSError, ImageLoadError):
                continue
            self.annotations.submit(digest, picture, specs)

    def _index_files(self, todo: list[tuple[Found, os.stat_result]]) -> Iterator[Event]:
        batch: list[_Prepared] = []
        later: list[_Prepared] = []  # copies of bytes first met in this run, saved after the original
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for result in self._prepared(pool, todo):
                if isinstance(result, (Skipped, OtherShard)):
                    yield result
                elif result.meme is None and result.known is None and result.content_hash not in self._placed:
                    later.append(result)  # the file with these bytes that this run reads is not saved yet
                else:
                    batch.append(result)
                    if len(batch) >= self.batch_size:
                        yield from self._commit(batch)
                        batch = []
                yield from self._collect_annotations()
        yield from self._commit(batch + later)

    def _collect_annotations(self, wait: bool = False) -> Iterator[Event]:
        """Save the annotations that came back (each committed at once: Ctrl-C keeps them)."""
        if self.annotations is None:
            return
        waiting, self._held = self._held + self.annotations.finished(wait), []
        for result in waiting:
            placed = self._placed.get(result.content_hash)
            if placed is None:
                self._held.append(result)  # its meme is still in the batch being built
                continue
            meme_id, own = placed
            if not own:
                continue  # a repost, joined to its meme: the meme's own image speaks for it
            yield from (Notice(m) for m in self.recorder.record(result, meme_id))

    def _prepared(self, pool: ThreadPoolExecutor, todo) -> Iterator[_Prepared | Skipped]:
        """Results of the pool in the files' order, a bounded number in flight: which of an
        original and its copy becomes the meme never depends on which finished reading first."""
        pending: deque[Future] = deque()
        for item, st in todo:
            pending.append(pool.submit(self._prepare, item, st))
            if len(pending) >= self.workers * 4:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def _claim(self, digest: str) -> tuple[bool, str | None]:
        """(whether this is the first file of the run with these bytes and the archive lacks them,
        the meme that held them before the run): a file's one catalog lookup of its bytes."""
        with self._claims_lock:
            if digest in self._claims:
                return False, self._claims[digest]
            known = self._claims[digest] = self.catalog.committed_owner(digest)
            return known is None, known

    def _prepare(self, item: Found, st: os.stat_result) -> _Prepared | Skipped | OtherShard:
        try:
            data = item.path.read_bytes()
        except OSError as exc:
            return Skipped(item.path, exc.strerror or str(exc))
        digest = content_hash(data)
        if self.shard is not None and not self.shard.takes(digest):
            return OtherShard(item.path)
        prepared = _Prepared(item, _sighting(item.path, st, self.clock()), digest)
        prepared.sighting.content_hash = digest
        first, prepared.known = self._claim(digest)
        if not first:
            return prepared
        try:
            loaded = decode(data, self.max_pixels)
            if self.annotations is not None:
                self._offer_annotation(item.path, digest, loaded.rgb)
            readings = self.ocr.read_all(loaded.rgb)
        except (ImageLoadError, ModelUnavailable) as exc:
            return Skipped(item.path, str(exc))
        prepared.phashes = picture_hashes(loaded.rgb)
        prepared.meme = Meme(id=digest[:16], content_hash=digest, phash=prepared.phashes[0],
                             width=loaded.width, height=loaded.height,
                             sections=[OcrText(engine, text) for engine, text in readings])
        prepared.picture = model_input(loaded.rgb)
        prepared.image = comparable(loaded.rgb) if self.reposts is not None else None
        return prepared

    def _commit(self, batch: list[_Prepared]) -> Iterator[Event]:
        if not batch:
            return
        events: list[Event] = []
        to_embed: dict[str, Meme] = {}
        pictures: dict[str, Image.Image] = {}
        with self.catalog.transaction():
            for item in batch:
                meme_id, saved, joined = self._save(item)
                if meme_id is None:
                    events.append(Skipped(item.found.path, "its copy in this run could not be read"))
                    continue
                events.append(Indexed(item.found.path, meme_id, saved is not None, joined))
                if saved is not None:  # embedded as saved: nothing is read back
                    to_embed[meme_id] = saved
                    if item.picture is not None:
                        pictures[meme_id] = item.picture
        if to_embed:
            self.embedder.embed(list(to_embed.values()), pictures)
        yield from events

    def _save(self, item: _Prepared) -> tuple[str | None, Meme | None, bool]:
        """Write one file's outcome; returns (meme id, the meme where its record is new or changed,
        whether it joined a meme as an altered copy)."""
        known = item.known or self._placed.get(item.content_hash, (None,))[0]
        if known is not None:
            self.catalog.add_sighting(known, item.sighting)
            return known, None, False
        if item.meme is None:
            return None, None, False
        meme = item.meme
        rules = self.catalog.identity_rules(item.content_hash)  # what the user said of these bytes
        repeated = next(filter(None, (self.catalog.id_for_content(o) for r, o in rules if r == "with")), None)
        if repeated is None and self.reposts is not None:
            repeated = self.reposts.find(item.phashes or [meme.phash], [o.text for o in meme.ocr_texts], item.image,
                                         area(meme), exclude=self.reposts.apart(rules))
        if repeated is not None:  # an altered copy of a meme: one more sighting of it
            self._placed[item.content_hash] = (repeated, False)
            self.catalog.add_sighting(repeated, item.sighting)
            # its words stay findable, even where the join was wrong
            self.catalog.add_sections(repeated, [OcrText(o.engine, o.text, copy=item.content_hash[:16])
                                                 for o in meme.ocr_texts if o.text.strip()])
            if self.reposts is not None:
                self.reposts.remember_copy(repeated, meme, item.image, item.phashes)
            return repeated, None, True
        imported = self.catalog.ids_for_phash(meme.phash, without_image=True)
        if imported:  # an imported record of this very picture: it gains its image
            record = self.catalog.require(imported[0])
            record.content_hash, record.width, record.height = meme.content_hash, meme.width, meme.height
            engines = {o.engine for o in record.ocr_texts}
            record.sections += [o for o in meme.ocr_texts if o.engine not in engines]
            meme = record
            self.catalog.marks.unmark(meme.id)
        meme.first_seen = min(filter(None, [meme.first_seen, item.sighting.seen_at]))
        meme.sightings = [item.sighting]
        self.catalog.save(meme)
        self._placed[item.content_hash] = (meme.id, True)
        if self.reposts is not None:
            self.reposts.remember(meme, item.image, item.phashes)
        return meme.id, meme, False

    def _embed_pending(self) -> Iterator[Event]:
        """Vectors a crash, an import or a missing model left unmade."""
        for report in self.embedder.embed_pending(self.batch_size):
            for meme_id in report.missing_images:
                yield Notice(f"meme {meme_id}: none of its files still holds its image; no image vector")
