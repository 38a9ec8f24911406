"""Keyword search over the catalog's sections, per engine. Both compare character trigrams, of
the query's words as written and run together, so misread and glued words still match:
SQLite's FTS5 with the trigram tokenizer (BM25 over the query's trigrams), PostgreSQL's pg_trgm
(the sections nearest the query by trigram word similarity, through a GiST index)."""
from __future__ import annotations

import re

from .database import POSTGRESQL, Database, Row

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def query_words(query: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(query)]


def trigram_expression(query: str) -> str | None:
    """An FTS5 OR-expression of the query's character trigrams, or None if it has none.

    Trigrams of the words as written match text with its spaces; trigrams of the words run
    together match OCR that glued them ("YESITIS"). Misread letters cost a few trigrams, not
    the whole word, so BM25 over trigrams tolerates OCR errors."""
    words = query_words(query)
    grams: dict[str, None] = {}
    for text in (" ".join(words), "".join(words)):
        grams.update(dict.fromkeys(text[i:i + 3] for i in range(len(text) - 2)))
    if not grams:
        return None
    return " OR ".join('"' + g.replace('"', '""') + '"' for g in grams)


def match_sections(db: Database, query: str, limit: int) -> list[Row]:
    """Sections matching the query's words, best first: meme_id, type, kind, source, score
    (higher is better, comparable only within one answer), body."""
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
