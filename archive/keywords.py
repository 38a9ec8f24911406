"""Keyword search over the catalog's sections, per engine. Both compare character trigrams, of
the query's words as written and run together, so misread and glued words still match:
SQLite's FTS5 with the trigram tokenizer (BM25 over the query's trigrams), PostgreSQL's pg_trgm
(the sections nearest the query by trigram word similarity, through a GiST index)."""
from __future__ import annotations

import math
import re

import numpy as np

from .database import POSTGRESQL, Database, Row

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def query_words(query: str) -> list[str]:
    if query.isascii():  # lower case first, one pass: the same words where every character is ASCII
        return _WORD.findall(query.lower())
    return [w.lower() for w in _WORD.findall(query)]


def query_trigrams(query: str) -> list[str]:
    """The query's character trigrams, in order: of the words as written (they match text with
    its spaces) and of the words run together (they match OCR that glued them, "YESITIS").
    Misread letters cost a few trigrams, not the whole word, so BM25 over them tolerates OCR errors."""
    words = query_words(query)
    grams: dict[str, None] = {}
    for text in (" ".join(words), "".join(words)):
        grams.update(dict.fromkeys(text[i:i + 3] for i in range(len(text) - 2)))
    return list(grams)


def trigram_expression(query: str) -> str | None:
    """An FTS5 OR-expression of the query's character trigrams, or None if it has none."""
    grams = query_trigrams(query)
    if not grams:
        return None
    return " OR ".join('"' + g.replace('"', '""') + '"' for g in grams)


def match_sections(db: Database, query: str, limit: int, held: TrigramIndex | None = None) -> list:
    """Sections matching the query's words, best first: meme_id, type, kind, source, score
    (higher is better, comparable only within one answer), body. `held`: the sections' trigrams
    held in memory (SQLite only), which rank as FTS5 does."""
    if held is not None:
        return held.match(query_trigrams(query), limit)
    if db.dialect == POSTGRESQL:
        return _nearest_by_trigrams(db, query_words(query), limit)
    expression = trigram_expression(query)
    if expression is None:
        return []
    return db.execute(  # ranked before the join: only the best rows' bodies are read
        """SELECT s.meme_id, s.type, s.kind, s.source, s.body, f.score
           FROM (SELECT rowid, -bm25(sections_fts) AS score FROM sections_fts
                 WHERE sections_fts MATCH ? ORDER BY score DESC LIMIT ?) f
           JOIN sections s ON s.id = f.rowid ORDER BY f.score DESC""",
        (expression, limit)).fetchall()


def _nearest_by_trigrams(db: Database, words: list[str], limit: int) -> list[Row]:
    spaced, glued = " ".join(words), "".join(words)
    if len(glued) < 3:
        return []
    best: dict[int, Row] = {}
    for form in dict.fromkeys((spaced, glued)):  # nearest by trigram word similarity (GiST)
        for row in db.execute(
                """SELECT s.id, s.meme_id, s.type, s.kind, s.source, s.body,
                          1 - (:form <<-> s.body) AS score
                   FROM sections s ORDER BY :form <<-> s.body LIMIT :limit""",
                {"form": form, "limit": limit}):
            if row["score"] > 0 and (row["id"] not in best or row["score"] > best[row["id"]]["score"]):
                best[row["id"]] = row
    return sorted(best.values(), key=lambda r: (-r["score"], r["id"]))[:limit]


K1, B = 1.2, 0.75  # FTS5's bm25() constants
CHUNK_ROWS = 2000  # rows whose every trigram is sorted at once while the index is built


def _folded(text: str) -> str:
    """Text as FTS5's trigram tokenizer reads it (case folded, one character for one)."""
    lower = text.lower()
    if len(lower) == len(text):
        return lower
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _code(gram: np.ndarray) -> np.ndarray:
    """Trigrams of code points (21 bits each) as one number each."""
    return (gram[0] << np.uint64(42)) | (gram[1] << np.uint64(21)) | gram[2]


def _trigrams(rows: list, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (trigram, row) pairs of some rows, each with how often the trigram is in the row
    (rows numbered from 0, in order within a trigram); fills `sizes` with the rows' token counts."""
    codes = [np.frombuffer(_folded(r[5]).encode("utf-32-le"), dtype=np.uint32) for r in rows]
    lengths = np.array([len(c) for c in codes], dtype=np.int64)
    sizes[:] = np.maximum(lengths - 2, 0)
    if not np.any(lengths > 2):  # no row of three characters: no trigram
        return np.zeros(0, np.uint64), np.zeros(0, np.int32), np.zeros(0, np.int32)
    points = np.concatenate(codes).astype(np.uint64)
    doc = np.repeat(np.arange(len(rows), dtype=np.int32), lengths)
    at = np.flatnonzero(np.arange(len(points)) + 2 < np.cumsum(lengths)[doc])
    keys = _code((points[at], points[at + 1], points[at + 2]))
    order = np.argsort(keys, kind="stable")
    keys, docs = keys[order], doc[at][order]
    first = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1]) | (docs[1:] != docs[:-1])])
    return keys[first], docs[first], np.diff(np.r_[first, len(keys)]).astype(np.int32)


class TrigramIndex:
    """The sections' trigrams held in memory, searched and ranked as SQLite's FTS5 does (the
    trigram tokenizer and `bm25()`, the same arithmetic in the same order, ties by row id), for a
    process that searches many times: a batch of queries costs one read of the sections, then
    a few milliseconds each where FTS5 takes tens. The same rows and scores as the SQL (tested)."""

    def __init__(self, rows: list):
        """`rows`: every section, (id, meme_id, type, kind, source, body), by id."""
        self.rows = rows
        keys, docs, counts = [], [], []
        sizes = np.zeros(len(rows))
        for start in range(0, len(rows), CHUNK_ROWS):  # a chunk at a time: the trigrams of every character
            end = start + CHUNK_ROWS
            pair_keys, pair_docs, tf = _trigrams(rows[start:end], sizes[start:end])
            keys.append(pair_keys)
            docs.append(pair_docs + start)
            counts.append(tf)
        self.sizes = sizes  # tokens a row holds
        self.avgdl = float(sizes.sum()) / max(len(rows), 1)
        keys_all = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
        order = np.argsort(keys_all, kind="stable")  # rows stay in order within a trigram
        pair_keys = keys_all[order]
        self.docs = np.concatenate(docs)[order] if docs else np.zeros(0, np.int32)
        self.tf = np.concatenate(counts)[order] if counts else np.zeros(0, np.int32)  # occurrences in the row
        starts = np.flatnonzero(np.r_[True, pair_keys[1:] != pair_keys[:-1]]) if len(pair_keys) else order[:0]
        self.keys = pair_keys[starts]
        self.bounds = np.r_[starts, len(pair_keys)]

    def _postings(self, gram: str) -> tuple[np.ndarray, np.ndarray]:
        folded = _folded(gram)
        if len(folded) != 3:
            return self.docs[:0], self.tf[:0]
        key = _code(np.array([ord(c) for c in folded], dtype=np.uint64))
        i = int(np.searchsorted(self.keys, key))
        if i == len(self.keys) or self.keys[i] != key:
            return self.docs[:0], self.tf[:0]
        return self.docs[self.bounds[i]:self.bounds[i + 1]], self.tf[self.bounds[i]:self.bounds[i + 1]].astype(np.float64)

    def match(self, grams: list[str], limit: int) -> list[dict]:
        """What `match_sections` returns for a query of these trigrams (an FTS5 OR of them)."""
        n = len(self.rows)
        score = np.zeros(n)
        matched = np.zeros(n, dtype=bool)
        for gram in grams:  # in the query's order, as bm25() adds them up
            docs, tf = self._postings(gram)
            idf = math.log((n - len(docs) + 0.5) / (len(docs) + 0.5))
            idf = idf if idf > 0.0 else 1e-6
            size = self.sizes[docs]
            score[docs] += idf * ((tf * (K1 + 1.0)) / (tf + K1 * ((1 - B) + (B * size) / self.avgdl)))
            matched[docs] = True
        found = np.flatnonzero(matched)
        best = found[np.argsort(-score[found], kind="stable")[:limit]]  # ties by row id, as SQLite
        return [{"meme_id": self.rows[i][1], "type": self.rows[i][2], "kind": self.rows[i][3],
                 "source": self.rows[i][4], "body": self.rows[i][5], "score": float(score[i])} for i in best]
