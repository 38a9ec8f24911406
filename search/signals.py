"""The signals: each ranks memes for a query on its own."""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
from rapidfuzz import fuzz, process

from archive.catalog import Catalog
from archive.keywords import TrigramIndex, query_words
from archive.model import Annotation
from archive.readings import clean_reading
from archive.vectors import VectorSpace

from .results import SignalHit



# A keyword hit scoring under this share of the best hit's BM25 shares only stray trigrams
# ("ing", " th") with the query; letting it vote would give noise the same say as a match (and
# keyword votes weigh most). Raising it from 0.1 to 0.3 changed no known-item figure on 1,006
# queries over 1,007 rendered memes (keyword R@1 0.838, fused 0.822) and drops stray hits.
KEYWORD_MIN_SHARE = 0.3
# The trigram score's say beside phrase closeness. On the tuning half of the same 1,006 queries
# (PP-OCR + tesseract OCR), keyword Recall@1 with 0 / 0.1 / 0.2 / 0.3 / 0.5 and with BM25 alone:
# 0.945 / 0.959 / 0.963 / 0.966 / 0.957 / 0.919; on the held-out half 0.3 gives 0.982 (BM25
# alone 0.938), Recall@10 0.992 either way.
PHRASE_TRIGRAM_SHARE = 0.3


# A keyword hit votes only where its text has at least this share of the query's words (see
# `words_found`): a few shared trigrams ("one", "sub") are not a match. Chosen with the text
# vectors' floor below on 144 rendered real memes (render_memes.py --offset 20 --per-template 4
# --seed 4, PP-OCR + tesseract) with 143 known-item queries and 200 queries whose words are in no
# meme (`search.evaluate.negative_queries`): "more than half" returned nothing for 0.995 of those
# but lost 5 known items; "at least half" 0.985 and 2 (memes whose OCR read almost none of the
# words a query recalls, which stray trigrams used to find). On 1,007 rendered memes
# (--per-template 28) slips alone then matched 0.095 of the negative queries ("Watt" for "wyatt"):
# one word must be said as it is (`matches`), which returned nothing for all 200 there, and lost 5
# known items of 1,006 (R@10 0.988 -> 0.983) whose OCR read the recalled words only as slips.
MIN_WORDS_FOUND = 0.5
# A text vector (MiniLM) votes only at this cosine similarity or above. On that set the nearest
# OCR-text passage of a query whose words are in no meme reaches 0.55 (0.4: 0.955 returned nothing,
# 0.45: 0.975, 0.5: 0.985); a known item under the floor is one with a typing slip, which the
# keyword signal finds. Weaker neighbours are shown apart, as the closest by spelling or meaning.
DENSE_FLOOR = 0.5
# A stretch of text that reads as the query's words in order this closely (`phrase_closeness`)
# matches even where OCR misread most of its words one by one: on the same set it brought back
# one of the two known items lost (0.986 -> 0.993) and let no negative query through (0.9 the
# same; 0.8: 0.975 of negatives returned nothing, 0.7: 0.925).
PHRASE_VOUCHES = 0.85


def keyword_rows(catalog: Catalog, query: str, depth: int, own_connection: bool = False,
                 held: TrigramIndex | None = None) -> list:
    """The sections `keyword` ranks for `query` (read on a connection of the calling thread's own
    with `own_connection`, so that a batch reads the next query's beside this one's ranking;
    from the trigrams `held` in memory where a batch has them)."""
    return catalog.match_sections(query, depth * 4, own_connection, held)


def keyword(catalog: Catalog, query: str, depth: int, floor: bool = True, rows: list | None = None) -> list[SignalHit]:
    """Ranked keyword search over OCR text and annotations, best section per meme: the sections
    that share most character trigrams with the query (see `Catalog.match_sections`), re-ranked
    by how closely a stretch of each reads as the query's words in their order
    (`phrase_closeness`) plus PHRASE_TRIGRAM_SHARE times the section's trigram score relative to
    the best one. With `floor`, a section that does not match (`matches`) is left out, or where
    it is a slip away (half the words a slip away, or the words read closely), kept as near
    (`is_near`). `rows`: those of `keyword_rows`, read already."""
    words = query_words(query)
    if rows is None:
        rows = keyword_rows(catalog, query, depth)
    if not rows:
        return []
    top = rows[0]["score"]
    spaced, glued = " ".join(words), "".join(words)
    best: dict[str, tuple[bool, float, object]] = {}  # meme -> (matched, score, section)
    for row in rows:
        if row["score"] < top * KEYWORD_MIN_SHARE:
            break
        closeness = _closeness(spaced, glued, row["body"])
        found = words_found(words, row["body"], MIN_WORDS_FOUND) if floor else 1.0
        near = floor and not matches(words, row["body"], closeness, found)
        if near and closeness < PHRASE_VOUCHES and found < MIN_WORDS_FOUND:
            continue  # not even a slip away
        score = closeness + PHRASE_TRIGRAM_SHARE * row["score"] / top
        if row["meme_id"] not in best or (not near, score) > best[row["meme_id"]][:2]:
            best[row["meme_id"]] = (not near, score, row)
    ranked = sorted(best.items(), key=lambda item: (not item[1][0], -item[1][1]))[:depth]  # matches first
    return [SignalHit(meme_id, score, detail={"passage": row["body"], "words": words, "near": not matched})
            for meme_id, (matched, score, row) in ranked]


def is_near(hit: SignalHit) -> bool:
    """Whether a keyword hit is only a slip away from the query's words (`matches` says no): it
    does not vote, and is shown apart, among the closest, where nothing matches."""
    return bool(hit.detail and hit.detail.get("near"))


def keyword_snippets(hits: list[SignalHit]) -> None:
    """Fill each keyword hit's snippet with the stretch of its section where the query's words
    are, as a person reads it (`passage_snippets` does the same for annotation hits)."""
    for hit in hits:
        where = hit.detail or {}
        if "passage" in where:
            hit.snippet = window(clean_reading(where["passage"]), where["words"])


def matches(words: list[str], text: str, closeness: float, found: float | None = None) -> bool:
    """Whether a text really has the query's words (the keyword signal's floor): a stretch of it
    reads as two or more of them in order (`closeness`, PHRASE_VOUCHES), or it has at least
    MIN_WORDS_FOUND of them (`words_found`), one of them as it is, not only a slip away: in an
    archive of a thousand memes, some word OCR read is a slip away from almost any word (`watt`
    for "wyatt", "challengers" for "alleged"), and a query of one misspelt word is told from
    one of a word no meme says only by the meaning (the text vectors, the closest shown apart).
    `found`: `words_found`'s share, where the caller has it already."""
    if len(words) > 1 and closeness >= PHRASE_VOUCHES:
        return True
    if found is None:
        found = words_found(words, text, MIN_WORDS_FOUND)
    return found >= MIN_WORDS_FOUND and says_one(words, text)


def says_one(words: list[str], text: str) -> bool:
    """Whether `text` says one of the query's words (of 3+ letters, where it has any) as it is
    (`_said`), not only a slip away."""
    said, _, glued = _read(text)
    return any(_said(w, said, glued) for w in [w for w in words if len(w) >= 3] or words)


def _said(word: str, said: str, glued: str) -> bool:
    """Whether a text (`_read`'s spaced and glued forms) says `word`: as a word, in the singular
    or the plural ("cat" / "cats", "mondays" / "monday"), or inside a run of words OCR glued
    together (4+ letters). Other endings are not undone: "caring" is not "car", "notes" not "not"."""
    if f" {word} " in said or (len(word) >= 4 and word in glued):
        return True
    plural = len(word) >= 4 and word.endswith("s") and not word.endswith("ss")
    return f" {word}s " in said or (plural and f" {word[:-1]} " in said)


def words_found(words: list[str], text: str, enough: float | None = None) -> float:
    """The share of the query's words (those of 3+ letters, where it has any) that `text` has:
    as a word, singular or plural, or inside words OCR glued together (`_said`); or a slip away (4+
    letters: a word of the text at fuzz.ratio >= 80, or a stretch of the glued text at
    partial_ratio >= 85). Common words count like any other: leaving them out (a stopword list)
    lost known items on every set (the held-out rendered one: R@10 0.986 -> 0.958). With
    `enough`, the slow slip-away look stops once the share is sure to reach it or sure not to:
    the share returned is then on the same side of `enough`, which is all a re-rank asks."""
    wanted = [w for w in words if len(w) >= 3] or words
    if not wanted:
        return 0.0
    said, spaced, glued = _read(text)
    found, slips = 0, []
    for word in wanted:
        if _said(word, said, glued):
            found += 1
        elif len(word) >= 4:
            slips.append(word)
    for left, word in zip(range(len(slips), 0, -1), slips):
        if enough is not None and (found / len(wanted) >= enough or (found + left) / len(wanted) < enough):
            break
        if (process.extractOne(word, spaced.split(), scorer=fuzz.ratio, score_cutoff=80) is not None
                or fuzz.partial_ratio(word, glued) >= 85):
            found += 1
    return found / len(wanted)


def phrase_closeness(words: list[str], text: str) -> float:
    """How closely some stretch of `text` reads as `words` in their order, 0 to 1 (the best
    partial alignment, rapidfuzz's partial_ratio), spaces kept or, for OCR that glued the
    words, dropped on both sides."""
    return _closeness(" ".join(words), "".join(words), text)


def _closeness(spaced: str, glued: str, text: str) -> float:
    """`phrase_closeness` of the query's words spaced and run together."""
    _, body_spaced, body_glued = _read(text)
    return max(fuzz.partial_ratio(spaced, body_spaced), fuzz.partial_ratio(glued, body_glued)) / 100


@lru_cache(maxsize=32768)
def _read(text: str) -> tuple[str, str, str]:
    """A section's words as the keyword signal compares them: spaced with a space either side
    (a word is one of them where " word " is in it), spaced, and run together (a batch of
    queries meets the same sections again and again; no list or set of them is kept)."""
    if text.isascii():  # what is no word made one space, in one pass: the words `query_words` reads
        spaced = _NO_WORD.sub(" ", text.lower()).strip(" ")
    else:
        spaced = " ".join(query_words(text))
    return f" {spaced} ", spaced, spaced.replace(" ", "")


_NO_WORD = re.compile(r"[\W_]+")


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
    if start > 0:  # begin and end on word boundaries, never inside a word
        space = text.rfind(" ", 0, start + 1)
        start = space + 1 if space >= 0 else 0
    end = start + width
    if end < len(text) and text[end] != " " and text.rfind(" ", start, end) > start:
        end = text.rfind(" ", start, end)
    piece = text[start:end].strip()
    return ("…" if start > 0 else "") + piece + ("…" if end < len(text) else "")


def nearest_memes(space: VectorSpace | None, vector: np.ndarray, depth: int) -> list[SignalHit]:
    """Memes whose vector in `space` is nearest; one hit per meme (its best item), its score the
    cosine similarity."""
    if space is None:
        return []
    return memes_of(space.query(vector, depth * 3), depth)


def memes_of(found: list, depth: int) -> list[SignalHit]:
    """One hit per meme (its best item) of a space's nearest items, at most `depth`."""
    hits: dict[str, SignalHit] = {}
    for hit in found:
        meme_id = hit.metadata.get("meme_id", hit.id)
        if meme_id not in hits:
            hits[meme_id] = SignalHit(meme_id, hit.similarity, detail=hit.metadata)
        if len(hits) >= depth:
            break
    return list(hits.values())


def passage_snippets(catalog: Catalog, hits: list[SignalHit], limit: int = 240) -> None:
    """Fill each annotation hit's snippet with the passage that matched."""
    memes = catalog.get_many([h.meme_id for h in hits if "kind" in (h.detail or {})])
    for hit in hits:
        where = hit.detail or {}
        meme = memes.get(hit.meme_id)
        if meme is None or "kind" not in where:
            continue
        for a in meme.annotations:
            if isinstance(a, Annotation) and (a.kind, a.source) == (where["kind"], where["source"]):
                hit.snippet = _clean(a.text[where["start"]:where["end"]])[:limit]
                break


def _clean(text: str) -> str:
    return " ".join(text.split())
