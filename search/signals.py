"""The signals: each ranks memes for a query on its own."""
from __future__ import annotations

import re

import numpy as np

from archive.catalog import Catalog, query_words
from archive.model import Annotation
from archive.vectors import VectorSpace

from .results import SignalHit



# A keyword hit scoring under this share of the best hit's BM25 shares only stray trigrams
# ("ing", " th") with the query; letting it vote would give noise the same say as a match (and
# keyword votes weigh 3). Raising it from 0.1 to 0.3 changed no known-item figure on 1,006
# queries over 1,007 rendered memes (keyword R@1 0.838, fused 0.822) and drops stray hits.
KEYWORD_MIN_SHARE = 0.3


def keyword(catalog: Catalog, query: str, depth: int) -> list[SignalHit]:
    """Ranked keyword search over OCR text and annotations (character trigrams; see
    `Catalog.match_sections`), best section per meme."""
    words = query_words(query)
    hits: dict[str, SignalHit] = {}
    rows = catalog.match_sections(query, depth * 4)
    floor = rows[0]["score"] * KEYWORD_MIN_SHARE if rows else 0
    for row in rows:
        if row["score"] < floor:
            break
        if row["meme_id"] not in hits:
            hits[row["meme_id"]] = SignalHit(row["meme_id"], row["score"], window(row["body"], words))
        if len(hits) >= depth:
            break
    return list(hits.values())


def window(text: str, query_words: list[str], width: int = 160) -> str:
    """About `width` characters of `text` where the most distinct query words occur together."""
    text = _clean(text)
    lower = text.lower()
    hits = sorted((m.start(), w) for w in {w for w in query_words if len(w) >= 3}
                  for m in re.finditer(re.escape(w), lower))
    start, best = 0, 0
    for position, _ in hits:
        begin = max(0, position - width // 4)
        covered = len({w for p, w in hits if begin <= p < begin + width - len(w)})
        if covered > best:
            start, best = begin, covered
    piece = text[start:start + width]
    return ("…" if start > 0 else "") + piece + ("…" if start + width < len(text) else "")


def nearest_memes(space: VectorSpace | None, vector: np.ndarray, depth: int) -> list[SignalHit]:
    """Memes whose vector in `space` is nearest; one hit per meme (its best item)."""
    if space is None:
        return []
    hits: dict[str, SignalHit] = {}
    for hit in space.query(vector, depth * 3):
        meme_id = hit.metadata.get("meme_id", hit.id)
        if meme_id not in hits:
            hits[meme_id] = SignalHit(meme_id, hit.similarity, detail=hit.metadata)
        if len(hits) >= depth:
            break
    return list(hits.values())


def passage_snippets(catalog: Catalog, hits: list[SignalHit], limit: int = 240) -> None:
    """Fill each annotation hit's snippet with the passage that matched."""
    for hit in hits:
        where = hit.detail or {}
        meme = catalog.get(hit.meme_id)
        if meme is None or "kind" not in where:
            continue
        for a in meme.annotations:
            if isinstance(a, Annotation) and (a.kind, a.source) == (where["kind"], where["source"]):
                hit.snippet = _clean(a.text[where["start"]:where["end"]])[:limit]
                break


def _clean(text: str) -> str:
    return " ".join(text.split())
