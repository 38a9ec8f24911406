"""The searcher: runs every signal for a query and fuses them; finds similar images."""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np
from PIL import Image

from archive.catalog import Catalog
from archive.errors import MemesError, ModelUnavailable
from archive.caption import text_similarity, trigrams
from archive.hashes import hash_array, nearest_distances
from archive.likeness import MAX_PIXEL_DIFFERENCE
from archive.readings import clean_reading
from archive.keywords import TrigramIndex
from archive.model import ANNOTATION_TEXT, IMAGE, OCR_TEXT
from archive.vectors import Hit

from . import signals
from .fusion import fuse
from .query import Filters, Query, checked_sort, parse
from .results import Result, SignalHit

# Perceptual hashes further apart than this are different pictures (random ones sit near 32).
PHASH_MAX_DISTANCE = 16
# Among memes that look like the query, those whose OCR text shares at least this share of
# character trigrams with the query's say the same thing: the repost, not a sibling of its template.
CAPTION_MIN_SIMILARITY = 0.3
PIXEL_CANDIDATES = 5  # the top look-alikes of each signal (and of a keyword search with the query's
# OCR text) whose pixels are compared with the query's
SNIPPET_ORDER = ("keyword", ANNOTATION_TEXT, OCR_TEXT)
TEXT_RRF_K = 1  # see Searcher for how these were chosen
TEXT_WEIGHTS = {"keyword": 4.0, OCR_TEXT: 0.5}
IMAGE_RRF_K = 5
IMAGE_WEIGHTS = {"pixels": 3.0}


Pixels = Callable[[str], "float | None"]


class TextEncoder(Protocol):
    """What a search needs of a text model (`indexer.encoders`, `indexer.queryencoders`)."""

    model_id: str

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...


class ImageEncoder(TextEncoder, Protocol):
    """An image model, which embeds texts and pictures into one space."""

    def load(self, part: str = "texts") -> None: ...

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...


class Space(Protocol):
    """One space of vectors (`archive.vectors`: Chroma's, or the catalog's copies)."""

    def count(self) -> int: ...

    def query(self, vector: np.ndarray, n: int) -> list[Hit]: ...

    def query_many(self, vectors: Sequence[np.ndarray], n: int) -> list[list[Hit]]: ...

    def vector(self, item_id: str) -> np.ndarray | None: ...


class Vectors(Protocol):
    """Where the spaces are: `VectorStore`, `CatalogVectors` or `MendedVectors`."""

    def space(self, name: str, model: str | None = None) -> Space | None: ...
DENSE = (ANNOTATION_TEXT, OCR_TEXT, IMAGE)  # signals that rank every meme by closeness of meaning
CLOSEST = 5  # memes shown as closest by spelling or meaning where nothing matches
CLOSEST_SLIPS = 3  # of them at most this many only a slip away: the rest by meaning
# With a filter, a phrase, an exclusion or a sort by date, each signal looks among this many
# nearest memes (not the usual 50), so that filtering leaves k where k qualify.
NARROWED_DEPTH = 2000
# A batch of this many queries or more reads every section's trigrams once and ranks each query's
# keyword hits in memory (`archive.keywords.TrigramIndex`: the same rows and scores as FTS5, 5 ms
# a query where FTS5 takes 70 on 10,000 memes; reading them takes 2 s there).
# Such a batch also makes its queries' vectors, and scans each space for them, this many at a time.
HOLD_TRIGRAMS_FROM = 30
VECTORS_AT_ONCE = 64


def matching(hits: dict[str, list[SignalHit]]) -> dict[str, list[SignalHit]]:
    """The relevance floor: the keyword signal votes where the query's words are (see
    `signals.keyword`), a text vector at `signals.DENSE_FLOOR` or above, and the image vector
    only for memes a text signal matched. An image model's similarity to a text cannot be given
    a floor here (no real weights to measure it on), so it orders what matches but never makes
    a meme match alone; where nothing does, its nearest show as closest by meaning (with the texts a slip away)."""
    ranked = {name: [h for h in found if (name not in (ANNOTATION_TEXT, OCR_TEXT) or h.score >= signals.DENSE_FLOOR)
                     and not signals.is_near(h)]
              for name, found in hits.items() if name != IMAGE}
    if IMAGE in hits:
        matched = {h.meme_id for found in ranked.values() for h in found}
        ranked[IMAGE] = [h for h in hits[IMAGE] if h.meme_id in matched]
    return ranked


def by_meaning(hits: dict[str, list[SignalHit]]) -> dict[str, list[SignalHit]]:
    """The vector signals' hits, under the floor too, and the keyword hits only a slip away
    (`signals.is_near`): where nothing matches, the closest by spelling or meaning."""
    slips = [h for h in hits.get("keyword", []) if signals.is_near(h)][:CLOSEST_SLIPS]
    return {**({"keyword": slips} if slips else {}), **{name: hits[name] for name in DENSE if name in hits}}


@dataclass
class Searcher:
    """Search over one archive. Encoders are the text encoder and an optional CLIP encoder."""

    catalog: Catalog
    store: Vectors
    text_encoder: TextEncoder
    image_encoder: ImageEncoder | None = None
    depth: int = 50
    # Fusion of text searches. Chosen with `memes eval --tune` on 1,007 rendered real memes
    # (render_memes.py --per-template 28; 1,006 known-item queries of 3-6 remembered words, half
    # with a word dropped or misspelt; PP-OCR + tesseract OCR, keyword re-ranked by phrase
    # closeness, no annotations, no image weights here), on the tuning half, reported on the
    # held-out half: k=5 with keyword x3 (the previous default) gave Recall@1 0.966 / @10 0.992,
    # k=1 with keyword x4 and ocr_text x0.5 (the tuner's pick) 0.980 / 0.992. Re-indexed with the
    # final repost grouping, the tuner picks the same and the held-out half gives 0.982 / 0.994;
    # the keyword signal alone 0.974 / 0.993 over all 1,006.
    text_rrf_k: int = TEXT_RRF_K
    text_weights: dict[str, float] = field(default_factory=lambda: dict(TEXT_WEIGHTS))
    # Fusion of look-alike searches (phash, image, caption, pixels). On the same set, 200 repost
    # queries (crops and framed copies) and 72 same-template ones: k=60 with equal weights gave
    # repost Recall@1 0.93 (crops 0.86), k=5 with pixels x3 gives 0.97 (crops 0.94); same
    # template 1.00 either way. A verified pixel match is the strongest evidence there is.
    image_rrf_k: int = IMAGE_RRF_K
    image_weights: dict[str, float] = field(default_factory=lambda: dict(IMAGE_WEIGHTS))
    notices: list[str] = field(default_factory=list)
    closest: list[Result] = field(default_factory=list)  # of the last search, when it found nothing
    matched: int = 0  # of the last search: how many memes matched in all (it returned k of them)

    def _space(self, name: str, encoder) -> Space | None:
        if encoder is None:
            return None
        space = self.store.space(name, encoder.model_id)
        return space if space is not None and space.count() > 0 else None

    def _image_space(self, by: str = "texts") -> Space | None:
        """The image space, or None when the archive has none or its encoder cannot load (the
        part of it that a query `by` texts or by pictures needs)."""
        space = self.store.space(IMAGE, self.image_encoder.model_id) if self.image_encoder is not None else None
        if space is None:
            return None
        try:
            self.image_encoder.load(by)
        except ModelUnavailable as exc:
            self.notices.append(f"{exc}; searching without image vectors")
            self.image_encoder = None
            return None
        return space if space.count() > 0 else None

    def warm_up(self) -> None:
        """Load what a first text search would wait for: the encoders (a model that cannot be
        loaded says so in `notices`)."""
        self.text_encoder.encode_texts(["warm up"])
        if self._image_space() is not None:
            try:
                self.image_encoder.encode_texts(["warm up"])
            except ModelUnavailable as exc:
                self.notices.append(f"{exc}; searching without image vectors")

    def text_rankings(self, query: str) -> tuple[dict[str, list[SignalHit]], dict[str, list[SignalHit]]]:
        """Each signal's own ranking for a text query (the evaluation reads these): of the memes
        that match it (see `matching`), and the vector signals' under the floor too, from which
        `search` shows the closest by spelling or meaning where nothing matches."""
        hits = self._text_hits(query)
        return matching(hits), by_meaning(hits)

    def _text_hits(self, query: str, depth: int | None = None, rows: Future | None = None,
                   dense: dict[str, list[SignalHit]] | None = None) -> dict[str, list[SignalHit]]:
        """Each signal's nearest memes, the text vectors' and the image's under their floor too.
        `rows`: the keyword signal's sections, being read on another thread (`search_each`) while
        the query's vectors are made here; `dense`: the vector signals' hits, made already."""
        depth = depth or self.depth
        rankings: dict[str, list[SignalHit]] = {"keyword": []}  # first: fusion meets signals in this order
        rankings.update(dense if dense is not None else self._dense_hits([query], depth)[0])
        rankings["keyword"] = signals.keyword(self.catalog, query, depth, rows=rows.result() if rows is not None else None)
        return rankings

    def _dense_hits(self, texts: list[str], depth: int) -> list[dict[str, list[SignalHit]]]:
        """The vector signals' nearest memes for each of `texts`: their vectors made together and
        each space scanned once for them all."""
        found: list[dict[str, list[SignalHit]]] = [{} for _ in texts]
        text_vectors = self.text_encoder.encode_texts(texts)
        for name in (ANNOTATION_TEXT, OCR_TEXT):
            space = self._space(name, self.text_encoder)
            nearest = space.query_many(text_vectors, depth * 3) if space is not None else [[] for _ in texts]
            for rankings, hits in zip(found, nearest):
                rankings[name] = signals.memes_of(hits, depth)
        image_space = self._image_space()
        if image_space is not None:
            try:
                nearest = image_space.query_many(self.image_encoder.encode_texts(texts), depth * 3)
            except ModelUnavailable as exc:
                self.notices.append(f"{exc}; searching without image vectors")
            else:
                for rankings, hits in zip(found, nearest):
                    rankings[IMAGE] = signals.memes_of(hits, depth)
        return found

    def _dense_ahead(self, queries: list[str], filters: Filters | None, sort: str) -> Iterator[dict | None]:
        """For each query of a batch, its vector signals' hits (None where `search` must make
        them itself: a query it refuses, or one that looks deeper), VECTORS_AT_ONCE at a time."""
        for start in range(0, len(queries), VECTORS_AT_ONCE):
            texts: list[str | None] = []
            for query in queries[start:start + VECTORS_AT_ONCE]:
                try:
                    parsed = parse(query)
                    texts.append(parsed.words if self._depth(parsed, filters, sort) == self.depth else None)
                except MemesError:
                    texts.append(None)
            wanted = [t for t in texts if t is not None]
            made = iter(self._dense_hits(wanted, self.depth) if wanted else [])
            yield from (next(made) if t is not None else None for t in texts)

    def search_each(self, queries: Iterable[str], k: int = 10, filters: Filters | None = None,
                    sort: str = "relevance") -> Iterator[tuple[str, list[Result]]]:
        """`search` of each query in turn. A few queries: each one's keyword sections read from
        SQLite on a thread of their own, beside the making of its vectors and the ranking of the
        query before (SQLite lets go of the interpreter as it reads: both cores of a small
        machine work). A batch: the vectors made VECTORS_AT_ONCE queries at a time, and every
        section's trigrams held in memory (SQLite), ranked in line: numpy arithmetic in short
        steps, which a second thread would spend waiting for the interpreter. The same answers as one
        `search` at a time."""
        queries = list(queries)
        batch = len(queries) >= HOLD_TRIGRAMS_FROM
        held = self.catalog.trigram_index() if batch else None
        dense = self._dense_ahead(queries, filters, sort) if batch else iter(lambda: None, 0)
        if held is not None:
            for query in queries:
                rows: Future = Future()
                rows.set_result(self._keyword_rows(query, filters, sort, held))
                yield query, self.search(query, k, filters, sort, rows=rows, dense=next(dense))
            return
        with ThreadPoolExecutor(1) as reader:  # (on a server, trigrams are not held: pg_trgm ranks)
            ahead = [reader.submit(self._keyword_rows, q, filters, sort) for q in queries[:1]]
            for at, query in enumerate(queries):
                if at + 1 < len(queries):
                    ahead.append(reader.submit(self._keyword_rows, queries[at + 1], filters, sort))
                yield query, self.search(query, k, filters, sort, rows=ahead.pop(0), dense=next(dense))

    def _keyword_rows(self, query: str, filters: Filters | None, sort: str,
                      held: TrigramIndex | None = None) -> list | None:
        """The keyword sections `search` would read for `query`, on this thread's own connection;
        None where the query is one `search` itself must refuse (it says why)."""
        try:
            checked_sort(sort)
            parsed = parse(query)
        except MemesError:
            return None
        return signals.keyword_rows(self.catalog, parsed.words, self._depth(parsed, filters, sort),
                                    own_connection=held is None, held=held)

    @staticmethod
    def _narrowed(parsed: Query, filters: Filters | None, sort: str) -> bool:
        """Whether filters, phrases or a sort choose among the signals' hits (who then look deeper)."""
        return bool(filters) or bool(parsed.phrases or parsed.excluded) or sort != "relevance"

    def _depth(self, parsed: Query, filters: Filters | None, sort: str) -> int:
        return max(self.depth, NARROWED_DEPTH) if self._narrowed(parsed, filters, sort) else self.depth

    def search(self, query: str, k: int = 10, filters: Filters | None = None, sort: str = "relevance",
               rows: Future | None = None, dense: dict[str, list[SignalHit]] | None = None) -> list[Result]:
        """Memes matching a text query (see `search.query`), best first or sorted by `sort`,
        fused over every signal that applies, among the memes `filters` admit. Where none
        matches, `closest` holds the memes nearest by spelling or meaning (under the floor), apart.
        `rows`, `dense`: the keyword signal's sections, being read, and the vector signals' hits,
        made already (`search_each`)."""
        checked_sort(sort)
        parsed = parse(query)
        narrowed = self._narrowed(parsed, filters, sort)
        hits = self._text_hits(parsed.words, self._depth(parsed, filters, sort), rows, dense)
        if narrowed:
            hits = self._admitted(hits, parsed, filters)
        results = self._fused(matching(hits), k if sort == "relevance" else NARROWED_DEPTH)
        if sort != "relevance":
            seen = self.catalog.seen_between([r.id for r in results])
            at = 0 if sort == "first-seen" else 1
            results = sorted(results, key=lambda r: seen[r.id][at], reverse=True)[:k]
        matched = self.matched
        self.closest = [] if results else self._fused(by_meaning(hits), CLOSEST)
        self.matched = matched
        return results

    def _admitted(self, hits: dict[str, list[SignalHit]], parsed: Query,
                  filters: Filters | None) -> dict[str, list[SignalHit]]:
        """Each signal's hits among the memes the filters, phrases and exclusions admit."""
        candidates = {h.meme_id for found in hits.values() for h in found}
        if filters:
            candidates &= self.catalog.meme_ids_where(filters.after, filters.before, filters.folder,
                                                      filters.has_text, filters.annotated)
        if parsed.phrases or parsed.excluded:
            texts = self.catalog.texts(sorted(candidates))
            candidates = {i for i in candidates if parsed.admits(texts[i])}
        return {s: [h for h in found if h.meme_id in candidates] for s, found in hits.items()}

    def _fused(self, rankings: dict[str, list[SignalHit]], k: int) -> list[Result]:
        results = fuse({s: h for s, h in rankings.items() if h}, self.text_rrf_k, SNIPPET_ORDER,
                       self.text_weights)
        self.matched, results = len(results), results[:k]
        shown = {r.id for r in results}  # passages are cut for these only: cleaning a reading costs
        keyword_hits = [h for h in rankings.get("keyword", []) if h.meme_id in shown]
        annotation_hits = [h for h in rankings.get(ANNOTATION_TEXT, []) if h.meme_id in shown]
        signals.keyword_snippets(keyword_hits)
        signals.passage_snippets(self.catalog, annotation_hits)
        by_keyword = {h.meme_id: h.snippet for h in keyword_hits if h.snippet}
        by_annotation = {h.meme_id: h.snippet for h in annotation_hits if h.snippet}
        for result in results:  # the words that matched, else the described passage that did, else fusion's pick
            result.snippet = by_keyword.get(result.id) or by_annotation.get(result.id, result.snippet)
        return self._finish(results)

    def similar_to_image(self, picture: Image.Image, phashes: list[str], k: int = 10,
                         exclude: str | None = None, text: str | None = None,
                         pixels: Pixels | None = None) -> list[Result]:
        """Memes that look like a picture (which need not be in the archive)."""
        return self._similar(self.image_rankings(picture, phashes, exclude, text, pixels), k)

    def similar_to_meme(self, meme_id: str, k: int = 10, pixels: Pixels | None = None) -> list[Result]:
        """Memes that look like one in the archive, using its stored vector and hash."""
        return self._similar(self.meme_rankings(meme_id, pixels), k)

    def image_rankings(self, picture: Image.Image, phashes: list[str], exclude: str | None = None,
                       text: str | None = None, pixels: Pixels | None = None) -> dict[str, list[SignalHit]]:
        """Each signal's ranking of memes like a picture: `phashes` are its perceptual hashes
        (whole, and with any frame trimmed), `text` what OCR read on it, `pixels(meme_id)` how
        much it and a meme's picture differ once aligned (`indexer.alignment.difference`, or None)."""
        space = self._image_space("pictures")
        vector = self.image_encoder.encode_images([picture])[0] if space is not None else None
        return self._look_alikes(space, vector, phashes, exclude, text, pixels)

    def meme_rankings(self, meme_id: str, pixels: Pixels | None = None) -> dict[str, list[SignalHit]]:
        meme = self.catalog.require(meme_id)
        space = self._image_space()
        vector = space.vector(meme_id) if space is not None else None
        return self._look_alikes(space, vector, [meme.phash] if meme.phash else [], meme_id, meme.ocr_text, pixels)

    def _look_alikes(self, space, vector, phashes: list[str], exclude: str | None,
                     text: str | None, pixels: Pixels | None) -> dict[str, list[SignalHit]]:
        """`space`: the image space (None where there is none), `vector` the query's in it."""
        rankings: dict[str, list[SignalHit]] = {}
        if space is None and self.image_encoder is not None:  # (a model that failed to load said so)
            self.notices.append("no image vectors in this archive: alike by perceptual hash, the words OCR read "
                                "and the aligned pixels")
        if phashes:
            rankings["phash"] = self._phash_neighbours(phashes)
        if vector is not None:
            rankings[IMAGE] = signals.nearest_memes(space, vector, self.depth + 1)
        rankings = {s: [h for h in hits if h.meme_id != exclude] for s, hits in rankings.items()}
        worded: list[SignalHit] = []
        if text is not None:  # memes whose text the query's matches: a crop's hash may be far off
            worded = [h for h in signals.keyword(self.catalog, text, PIXEL_CANDIDATES * 2, floor=False) if h.meme_id != exclude]
            rankings["caption"] = self._same_caption(text, {**rankings, "worded": worded})
        if pixels is not None:
            rankings["pixels"] = self._same_pixels(pixels, {**rankings, "worded": worded})
        return rankings

    def _same_pixels(self, pixels: Pixels, rankings: dict[str, list[SignalHit]]) -> list[SignalHit]:
        """The top look-alikes of every signal whose aligned pixels nearly all agree with the
        query's (the rule of archive.likeness), least different first."""
        candidates = dict.fromkeys(h.meme_id for hits in rankings.values() for h in hits[:PIXEL_CANDIDATES])
        hits = []
        for meme_id in candidates:
            share = pixels(meme_id)
            if share is not None and share < MAX_PIXEL_DIFFERENCE:
                hits.append(SignalHit(meme_id, -share))
        return sorted(hits, key=lambda h: -h.score)

    def _same_caption(self, text: str, rankings: dict[str, list[SignalHit]]) -> list[SignalHit]:
        """The look-alikes found by the picture signals, re-ranked by how much of the query's
        text they carry; only those that carry enough."""
        query = trigrams(text)
        if len(query) < 6:
            return []
        candidates = dict.fromkeys(h.meme_id for hits in rankings.values() for h in hits)
        texts = self.catalog.ocr_texts(list(candidates))
        scored = [SignalHit(i, text_similarity(query, trigrams(texts.get(i, "")))) for i in candidates]
        return sorted((h for h in scored if h.score >= CAPTION_MIN_SIMILARITY), key=lambda h: -h.score)

    def _similar(self, rankings: dict[str, list[SignalHit]], k: int) -> list[Result]:
        distances = {h.meme_id: int(-h.score) for h in rankings.get("phash", [])}
        similar_text = {h.meme_id: round(h.score, 3) for h in rankings.get("caption", [])}
        results = fuse({s: h for s, h in rankings.items() if h}, self.image_rrf_k, weights=self.image_weights)[:k]
        for result in results:
            if result.id in distances:
                result.extra["phash_distance"] = distances[result.id]
            if result.id in similar_text:
                result.extra["caption_similarity"] = similar_text[result.id]
        return self._finish(results)

    def _phash_neighbours(self, phashes: list[str]) -> list[SignalHit]:
        pairs = self.catalog.phashes()
        if not pairs:
            return []
        ids = [i for i, _ in pairs]
        hashes = hash_array([h for _, h in pairs])
        dist = nearest_distances(phashes, hashes)
        order = np.argsort(dist, kind="stable")[: self.depth + 1]
        return [SignalHit(ids[i], float(-dist[i])) for i in order if dist[i] <= PHASH_MAX_DISTANCE]

    def _finish(self, results: list[Result]) -> list[Result]:
        memes = self.catalog.get_many([r.id for r in results])
        for result in results:
            meme = memes.get(result.id)
            result.path = meme.path if meme else None
            reading = next((o.text for o in meme.ocr_texts if o.text.strip()), "") if meme is not None else ""
            if result.snippet is None and reading:  # the first engine's reading, as a person reads it
                result.snippet = clean_reading(reading)[:160]
            result.score = round(result.score, 6)
        return results
