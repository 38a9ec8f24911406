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
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

from PIL import Image

from archive.catalog import Catalog
from archive.errors import ModelUnavailable
from archive.likeness import Caption, Likeness
from archive.model import Meme, OcrText, Sighting, utc_now

from .annotate import AnnotationRecorder, AnnotationRun, Notice, image_for_prompt
from .embedder import Embedder
from .alignment import FeatureCache, pixel_judge
from .imageio import ImageLoadError, content_hash, decode, image_of, model_input, picture_hashes
from .ocr import MemeOcr
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
    path: Path
    meme_id: str  # the file, indexed as a new meme earlier in the run, is an altered copy of this one


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
    meme: Meme | None = None  # None: the bytes were already known or claimed by another file
    picture: Image.Image | None = None
    phashes: list[str] | None = None  # whole, and without a frame


def _sighting(path: Path, st: os.stat_result, now: datetime) -> Sighting:
    modified = datetime.fromtimestamp(st.st_mtime, timezone.utc).replace(microsecond=0)
    return Sighting(path=str(path), seen_at=min(modified, now), size=st.st_size, mtime=st.st_mtime)


def _area(meme: Meme) -> int:
    return (meme.width or 0) * (meme.height or 0)


class Reposts:
    """Finds the meme a new image repeats (the rule in `archive.likeness`, pixels compared by
    `indexer.alignment`); the archive's hashes and texts are loaded on first use."""

    def __init__(self, catalog: Catalog, max_pixels: int, likeness: Likeness | None = None):
        self.catalog = catalog
        self.max_pixels = max_pixels
        self._likeness = likeness
        self._features = FeatureCache()  # memes saved this run go in as they are saved
        self._copies: dict[str, str] = {}  # a copy joined this run (its bytes' hash) -> its meme
        # memes saved this run whose words OCR could not read: (hashes, readings, pixel count, picture)
        self._unvouched: dict[str, tuple] = {}

    @property
    def likeness(self) -> Likeness:
        if self._likeness is None:
            self._likeness = Likeness(self.catalog.likeness_rows())
        return self._likeness

    def find(self, phashes: list[str], readings: list[str], picture: Image.Image | None, area: int = 0,
             exclude: set | frozenset = frozenset()) -> str | None:
        pixels = pixel_judge(picture, self._features, self._picture)
        return self.likeness.find(phashes, readings, pixels, area, exclude)

    def remember(self, meme: Meme, picture: Image.Image | None, phashes: list[str] | None = None) -> None:
        """A meme saved this run: its picture is compared with the images after it, by every
        hash of it (whole, and without a frame: a framed repost met first still finds its original)."""
        readings = [o.text for o in meme.ocr_texts]
        for phash in dict.fromkeys(phashes or [meme.phash]):
            self.likeness.add(meme.id, phash, readings, area=_area(meme))
        if picture is not None:
            self._features.get(meme.id, lambda: picture)
            if not Caption.of(readings).words and len(self._unvouched) < 1024:
                self._unvouched[meme.id] = (phashes or [meme.phash], readings, _area(meme), picture)

    def second_look(self) -> Iterator[tuple[str, str]]:
        """(meme, meme it repeats) for memes saved this run that no larger picture could join
        when they came first: a small copy whose words OCR could not read cannot vouch for the
        original that came after it, but can join it now that both are known."""
        gone: set[str] = set()
        for meme_id, (phashes, readings, area, picture) in self._unvouched.items():
            found = self.find(phashes, readings, picture, area, exclude={meme_id} | gone)
            if found is not None:
                gone.add(meme_id)
                yield meme_id, found

    def remember_copy(self, meme: Meme, copy: "_Prepared") -> None:
        """A copy just joined to `meme`: later images are compared with it too (this run), so
        that the original met after a copy, or a copy of a copy, still finds its meme."""
        if copy.meme is None or copy.picture is None:
            return
        self._copies[copy.content_hash] = meme.id
        for phash in dict.fromkeys(copy.phashes or [copy.meme.phash]):
            self.likeness.add(meme.id, phash, [o.text for o in copy.meme.ocr_texts], copy.content_hash,
                              _area(copy.meme))
        self._features.get(copy.content_hash, lambda: copy.picture)

    def _picture(self, key: str) -> Image.Image | None:
        """The picture of a meme (by id), or of a copy joined to one (by its bytes' hash)."""
        meme = self.catalog.get(self._copies.get(key, key))
        if meme is not None and key in self._copies:
            meme = replace(meme, content_hash=key)  # the sighting with the copy's bytes
        image = image_of(meme, self.max_pixels) if meme is not None else None
        return model_input(image) if image is not None else None  # as this run's pictures are


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
        self._claims: set[str] = set()
        self._fresh: set[str] = set()  # bytes this run found new to the archive
        self._claims_lock = threading.Lock()

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
        """Join the run's unreadable small copies to the originals that came after them."""
        if self.reposts is None:
            return
        for meme_id, target in list(self.reposts.second_look()):
            meme = self.catalog.get(meme_id)
            if meme is None or len(meme.sightings) != 1 or self.catalog.get(target) is None:
                continue  # other files joined it meanwhile: it stays a meme
            self.catalog.merge_into(target, meme)
            for space in self.embedder.store.describe():
                self.embedder.store.space(space).delete_memes([meme_id])
            yield Regrouped(Path(meme.sightings[0].path), target)

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

    def _feed_annotations(self, todo: list[tuple[Found, os.stat_result]]) -> None:
        """Send every new image to the vision models ahead of OCR: the slowest stage starts
        first and runs beside the others. Decoding twice costs milliseconds; waiting costs the
        model's whole latency. Bad files are left to the OCR workers to report."""
        sent: set[str] = set()
        for item, _ in todo:
            if self.annotations.closed:
                return
            try:
                data = item.path.read_bytes()
                digest = content_hash(data)
                if self.shard is not None and not self.shard.takes(digest):
                    continue
                with self._claims_lock:  # known before this run: annotated then, if ever
                    known = digest not in self._fresh and self.catalog.has_content(digest)
                if digest in sent or known:
                    continue
                sent.add(digest)
                picture = image_for_prompt(decode(data, self.max_pixels).rgb, self.annotation_image_side)
            except (OSError, ImageLoadError):
                continue
            self.annotations.submit(digest, picture)

    def _index(self, todo: list[tuple[Found, os.stat_result]]) -> Iterator[Event]:
        feeder = None
        if self.annotations is not None:  # on an error, run() closes the annotations: the feeder stops
            feeder = threading.Thread(target=self._feed_annotations, args=(todo,), daemon=True)
            feeder.start()
        yield from self._index_files(todo)
        if feeder is not None:
            feeder.join()

    def _index_files(self, todo: list[tuple[Found, os.stat_result]]) -> Iterator[Event]:
        batch: list[_Prepared] = []
        later: list[_Prepared] = []  # copies of bytes first met in this run, saved after the original
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for result in self._prepared(pool, todo):
                if isinstance(result, (Skipped, OtherShard)):
                    yield result
                elif result.meme is None and self.catalog.id_for_content(result.content_hash) is None:
                    later.append(result)
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
            meme_id = self.catalog.id_for_content(result.content_hash)
            if meme_id is None:
                self._held.append(result)  # its meme is still in the batch being built
                continue
            if self.catalog.require(meme_id).content_hash != result.content_hash:
                continue  # a repost, joined to its meme: the meme's own image speaks for it
            yield from (Notice(m) for m in self.recorder.record(result, meme_id))

    def _prepared(self, pool: ThreadPoolExecutor, todo) -> Iterator[_Prepared | Skipped]:
        """Results of the pool as they finish, with a bounded number in flight."""
        pending: set[Future] = set()
        queue = iter(todo)
        limit = self.workers * 4
        while True:
            for item, st in queue:
                pending.add(pool.submit(self._prepare, item, st))
                if len(pending) >= limit:
                    break
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()

    def _claim(self, digest: str) -> bool:
        """True for the first file of a run with these bytes, when the archive lacks them too."""
        with self._claims_lock:
            if digest in self._claims:
                return False
            self._claims.add(digest)
            if self.catalog.has_content(digest):
                return False
            self._fresh.add(digest)
            return True

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
        if not self._claim(digest):
            return prepared
        try:
            loaded = decode(data, self.max_pixels)
            readings = self.ocr.read_all(loaded.rgb)
        except (ImageLoadError, ModelUnavailable) as exc:
            return Skipped(item.path, str(exc))
        prepared.phashes = picture_hashes(loaded.rgb)
        prepared.meme = Meme(id=digest[:16], content_hash=digest, phash=prepared.phashes[0],
                             width=loaded.width, height=loaded.height,
                             sections=[OcrText(engine, text) for engine, text in readings])
        prepared.picture = model_input(loaded.rgb)
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
        known = self.catalog.id_for_content(item.content_hash)
        if known is not None:
            self.catalog.add_sighting(known, item.sighting)
            return known, None, False
        if item.meme is None:
            return None, None, False
        meme = item.meme
        rules = self.catalog.identity_rules(item.content_hash)  # what the user said of these bytes
        repeated = next(filter(None, (self.catalog.id_for_content(o) for r, o in rules if r == "with")), None)
        if repeated is None and self.reposts is not None:
            apart = {self.catalog.id_for_content(o) for r, o in rules if r == "apart"}
            repeated = self.reposts.find(item.phashes or [meme.phash], [o.text for o in meme.ocr_texts], item.picture,
                                         _area(meme), exclude=apart)
        if repeated is not None:  # an altered copy of a meme: one more sighting of it
            self.catalog.add_sighting(repeated, item.sighting)
            # its words stay findable, even where the join was wrong
            self.catalog.add_sections(repeated, [OcrText(o.engine, o.text, copy=item.content_hash[:16])
                                                 for o in meme.ocr_texts if o.text.strip()])
            if self.reposts is not None:
                self.reposts.remember_copy(self.catalog.require(repeated), item)
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
        if self.reposts is not None:
            self.reposts.remember(meme, item.picture, item.phashes)
        return meme.id, meme, False

    def _embed_pending(self) -> Iterator[Event]:
        """Vectors a crash, an import or a missing model left unmade."""
        for report in self.embedder.embed_pending(self.batch_size):
            for meme_id in report.missing_images:
                yield Notice(f"meme {meme_id}: none of its files still holds its image; no image vector")
