"""Measuring search: labelled queries run against an archive, each signal scored on its own and
the fusion scored over them, so one can see what each signal adds.

The set is two JSON-lines files. TRUTH has one line per image (the format `render_memes.py`
writes): `id`, `file`, `template`, `text` (the caption) and `variant_of` (the id of the original
for an altered copy, else null). QUERIES has one line per query:

    {"id": "q1", "type": "known_item", "text": "one does not simpy walk", "relevant": ["m00012"]}
    {"id": "q2", "type": "repost", "image": "images/m00012_crop.jpg", "alteration": "crop",
     "relevant": ["m00012"]}
    {"id": "q3", "type": "same_template", "meme": "m00013", "relevant": ["m00001", "m00024"]}
    {"id": "n1", "type": "negative", "text": "xylophone submarine", "relevant": []}

A negative query's words are in no meme: the right answer is nothing, and it is scored by the
share of such queries that return nothing (`nothing`).

Image paths are relative to the queries file. Ids are TRUTH ids; the archive's memes are matched
to them by file name. Every query's signals are run once; fusions with other parameters (for
tuning) are computed from those rankings.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from archive.errors import MemesError
from archive.readings import letters_of, words_by_frequency

from .engine import CLOSEST, IMAGE_RRF_K, IMAGE_WEIGHTS, TEXT_RRF_K, TEXT_WEIGHTS
from .fusion import RRF_K, fuse
from .results import SignalHit

KNOWN_ITEM, REPOST, SAME_TEMPLATE, NEGATIVE = "known_item", "repost", "same_template", "negative"
FUSED = "fused"
SHOWN = "fused, else closest"  # what a user sees: where nothing matches, the closest by spelling or meaning
DEPTH = 10  # the cut for Recall@10 and nDCG@10


@dataclass
class Query:
    id: str
    type: str
    relevant: list[str]
    text: str | None = None
    image: Path | None = None
    meme: str | None = None
    alteration: str | None = None


@dataclass
class Ranked:
    """One query and each signal's ranking for it, best first, memes named by their truth ids."""

    query: Query
    hits: dict[str, list[SignalHit]] = field(default_factory=dict)
    near: dict[str, list[SignalHit]] = field(default_factory=dict)  # a text query's, under the floor too

    def ranking(self, signal: str) -> list[str]:
        return [h.meme_id for h in self.hits.get(signal, [])]


def in_truth_ids(hits: dict[str, list[SignalHit]], to_truth: dict[str, str]) -> dict[str, list[SignalHit]]:
    """Rankings of archive memes as rankings of truth ids (a meme not in the truth keeps its id)."""
    return {signal: [SignalHit(to_truth.get(h.meme_id, h.meme_id), h.score) for h in found]
            for signal, found in hits.items()}


def run_queries(catalog, searcher, pictures, queries: list[Query],
                truth: list[dict]) -> tuple[list[Ranked], list[str]]:
    """Run labelled queries on an archive (its catalog, a `Searcher` over it, and `pictures`, an
    `indexer.pictures.Pictures` that looks up query pictures): each signal's ranking for each,
    memes named by their truth ids (matched by file name). Returns them and notices."""
    by_file = {row["file"]: row["id"] for row in truth}
    to_truth: dict[str, str] = {}
    for meme_id in catalog.ids():
        for path in catalog.require(meme_id).sightings:
            if os.path.basename(path.path) in by_file:
                to_truth.setdefault(meme_id, by_file[os.path.basename(path.path)])
    to_meme = {t: m for m, t in to_truth.items()}
    ranked: list[Ranked] = []
    notices: list[str] = []
    for query in queries:
        near: dict[str, list[SignalHit]] = {}
        if query.type in (KNOWN_ITEM, NEGATIVE):
            hits, near = searcher.text_rankings(query.text or "")
        elif query.type == REPOST:
            try:
                picture = pictures.from_file(query.image)
            except MemesError as exc:
                notices.append(f"query {query.id}: {exc}")
                continue
            hits = searcher.image_rankings(exclude=catalog.id_for_content(picture.content_hash), **picture.looked_up)
        elif query.type == SAME_TEMPLATE and query.meme in to_meme:
            hits = searcher.meme_rankings(to_meme[query.meme], pictures.pixels_of(to_meme[query.meme]))
        else:
            notices.append(f"query {query.id}: {query.type} {query.meme or ''} cannot be run on this archive")
            continue
        ranked.append(Ranked(query, in_truth_ids(hits, to_truth), in_truth_ids(near, to_truth)))
    return ranked, list(dict.fromkeys(notices + searcher.notices))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def read_queries(path: Path) -> list[Query]:
    base = Path(path).resolve().parent
    return [Query(id=row["id"], type=row["type"], relevant=list(row["relevant"]), text=row.get("text"),
                  image=base / row["image"] if row.get("image") else None, meme=row.get("meme"),
                  alteration=row.get("alteration"))
            for row in read_jsonl(path)]


# --- metrics ------------------------------------------------------------------------------

def metrics(ranking: list[str], relevant: set[str]) -> dict[str, float]:
    """Recall@1 and @10 (a relevant meme at rank 1, within 10), reciprocal rank, nDCG@10."""
    first = next((rank for rank, item in enumerate(ranking, start=1) if item in relevant), None)
    gains = sum(1 / math.log2(rank + 1) for rank, item in enumerate(ranking[:DEPTH], start=1) if item in relevant)
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(len(relevant), DEPTH) + 1))
    return {"recall@1": float(first == 1), "recall@10": float(first is not None and first <= DEPTH),
            "mrr": 1 / first if first else 0.0, "ndcg@10": gains / ideal if ideal else 0.0}


def mean(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {key: round(sum(r[key] for r in rows) / len(rows), 4) for key in rows[0]} | {"queries": len(rows)}


# The searcher's own fusion settings for each kind of query, used unless others are given.
TEXT_FUSION = (TEXT_RRF_K, TEXT_WEIGHTS)
IMAGE_FUSION = (IMAGE_RRF_K, IMAGE_WEIGHTS)


def _fusion(ranked: Ranked, k: int | None, weights: dict[str, float] | None) -> tuple:
    """The fusion settings given, or else the searcher's own for the query's kind."""
    if k is None:
        return TEXT_FUSION if ranked.query.type in (KNOWN_ITEM, NEGATIVE) else IMAGE_FUSION
    return k, weights


def _fused_ids(hits: dict[str, list[SignalHit]], k: int, weights: dict[str, float] | None) -> list[str]:
    return [r.id for r in fuse({s: h for s, h in hits.items() if h}, k, weights=weights)]


def fused_ranking(ranked: Ranked, k: int | None = None, weights: dict[str, float] | None = None) -> list[str]:
    return _fused_ids(ranked.hits, *_fusion(ranked, k, weights))


def shown_ranking(ranked: Ranked, k: int | None = None, weights: dict[str, float] | None = None) -> list[str]:
    """What a user is shown for a text query: the fused results, or where nothing matches the
    closest by spelling or meaning (`Searcher.search`'s `closest`), which are shown apart, under the floor."""
    k, weights = _fusion(ranked, k, weights)
    return _fused_ids(ranked.hits, k, weights) or _fused_ids(ranked.near, k, weights)[:CLOSEST]


def report(ranked: list[Ranked], k: int | None = None, weights: dict[str, float] | None = None) -> dict:
    """Means per query type (and per alteration for reposts), for each signal alone and for
    the fusion (the searcher's own settings unless `k` is given), and overall (fused). A signal that ran for no query of a type is left out; one
    that ran but found nothing scores 0 there."""
    groups: dict[str, list[Ranked]] = {}
    for r in ranked:
        groups.setdefault(r.query.type, []).append(r)
        if r.query.alteration:
            groups.setdefault(f"{r.query.type}:{r.query.alteration}", []).append(r)
    negatives = groups.pop(NEGATIVE, [])
    positives = [r for r in ranked if r.query.type != NEGATIVE]
    out = {"overall": mean([metrics(fused_ranking(r, k, weights), set(r.query.relevant)) for r in positives]),
           "by_type": {}}
    if negatives:
        signals = sorted({s for r in negatives for s in r.hits})
        out["by_type"][NEGATIVE] = {signal: _nothing([not r.ranking(signal) for r in negatives]) for signal in signals}
        out["by_type"][NEGATIVE][FUSED] = _nothing([not fused_ranking(r, k, weights) for r in negatives])
    for name, members in sorted(groups.items()):
        signals = sorted({s for r in members for s in r.hits})
        out["by_type"][name] = {
            signal: mean([metrics(r.ranking(signal), set(r.query.relevant)) for r in members]) for signal in signals}
        out["by_type"][name][FUSED] = mean([metrics(fused_ranking(r, k, weights), set(r.query.relevant))
                                            for r in members])
        if name == KNOWN_ITEM:  # a meme the floor lost may still be shown, apart, among the closest
            out["by_type"][name][SHOWN] = mean([metrics(shown_ranking(r, k, weights), set(r.query.relevant))
                                                for r in members])
    return out


def _nothing(empty: list[bool]) -> dict[str, float]:
    """For negative queries: the share that returned nothing."""
    return {"nothing": round(sum(empty) / len(empty), 4), "queries": len(empty)}


# --- tuning -------------------------------------------------------------------------------

def split(ranked: list[Ranked]) -> tuple[list[Ranked], list[Ranked]]:
    """A fixed tuning / held-out split, half each, by a hash of the query id."""
    tuning = [r for r in ranked if int(hashlib.sha256(r.query.id.encode()).hexdigest(), 16) % 2 == 0]
    held_out = [r for r in ranked if r not in tuning]
    return tuning, held_out


def tune(ranked: list[Ranked], signals: list[str], ks=(1, 5, 10, 20, 40, 60, 100),
         weight_choices=(0.0, 0.25, 0.5, 1.0, 2.0, 4.0), rounds: int = 3) -> tuple[int, dict[str, float], float]:
    """The RRF constant and signal weights with the best mean MRR (ties: Recall@1) on `ranked`,
    by coordinate ascent from the defaults (k=60, every weight 1): each parameter in turn takes
    its best value with the others held, for a few rounds."""
    def score(k: int, weights: dict[str, float]) -> tuple[float, float]:
        if not any(weights.values()):
            return (-1.0, -1.0)
        rows = [metrics(fused_ranking(r, k, weights), set(r.query.relevant)) for r in ranked]
        return (sum(x["mrr"] for x in rows) / len(rows), sum(x["recall@1"] for x in rows) / len(rows))

    k, weights = RRF_K, dict.fromkeys(signals, 1.0)
    best = score(k, weights)
    for _ in range(rounds):
        improved = False
        for choice in ks:
            if (found := score(choice, weights)) > best:
                best, k, improved = found, choice, True
        for signal in signals:
            for choice in weight_choices:
                trial = {**weights, signal: choice}
                if (found := score(k, trial)) > best:
                    best, weights, improved = found, trial, True
        if not improved:
            break
    return k, weights, best[0]


# --- making queries -----------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z0-9']+")


def misspell(word: str, rnd: random.Random) -> str:
    """One typing slip: a letter dropped, doubled, swapped with the next, or replaced."""
    if len(word) < 4:
        return word
    i = rnd.randrange(1, len(word) - 1)
    slip = rnd.choice(["drop", "double", "swap", "replace"])
    if slip == "drop":
        return word[:i] + word[i + 1:]
    if slip == "double":
        return word[:i] + word[i] + word[i:]
    if slip == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word[:i] + rnd.choice("aeiourstnl") + word[i + 1:]


def recollection(caption: str, rnd: random.Random, slip: bool) -> tuple[str, str]:
    """3-6 consecutive words of a caption, lower case, as a person recalls them (with `slip`,
    one word left out or misspelt), and the caption's words they were taken from."""
    words = [w.lower() for w in _WORD.findall(caption)]
    if len(words) <= 3:
        return " ".join(words), " ".join(words)
    size = rnd.randint(3, min(6, len(words)))
    start = rnd.randint(0, len(words) - size)
    picked = words[start:start + size]
    exact = " ".join(picked)
    if slip:
        i = rnd.randrange(len(picked))
        if rnd.random() < 0.5 and len(picked) > 3:
            picked.pop(i)
        else:
            candidates = [j for j, w in enumerate(picked) if len(w) >= 4] or [i]
            j = rnd.choice(candidates)
            picked[j] = misspell(picked[j], rnd)
    return " ".join(picked), exact


def carries(caption: str, words: str) -> bool:
    """Whether a caption has these words one after another (case and punctuation aside)."""
    return f" {words} " in " " + " ".join(w.lower() for w in _WORD.findall(caption)) + " "


def build_queries(truth: list[dict], variants_dir: str = "images", seed: int = 11,
                  same_template_per_template: int = 2) -> list[dict]:
    """Queries from a truth file: one known-item query per original (half with a slip), one
    repost query per altered copy, and a few same-template queries per template.

    A known-item query's relevant memes are its original and every other original whose caption
    carries the same remembered words: a template's fixed phrase is on every meme of the template,
    and whichever of them comes first is a right answer to someone who remembers only that."""
    rnd = random.Random(seed)
    originals = [row for row in truth if not row.get("variant_of")]
    queries: list[dict] = []
    for n, row in enumerate(originals):
        words, exact = recollection(row["text"], rnd, slip=n % 2 == 1)
        if len(words.split()) >= 2:
            also = [other["id"] for other in originals if other is not row and carries(other["text"], exact)]
            queries.append({"id": f"k-{row['id']}", "type": KNOWN_ITEM, "text": words, "relevant": [row["id"], *also]})
    for row in truth:
        if row.get("variant_of"):
            alteration = row.get("variant") or row["id"].removeprefix(row["variant_of"]).strip("-_") or "copy"
            queries.append({"id": f"r-{row['id']}", "type": REPOST, "image": f"{variants_dir}/{row['file']}",
                            "alteration": alteration, "relevant": [row["variant_of"]]})
    by_template: dict[str, list[dict]] = {}
    for row in originals:
        by_template.setdefault(row["template"], []).append(row)
    for template, rows in sorted(by_template.items()):
        if len(rows) < 2:
            continue
        for row in rnd.sample(rows, min(same_template_per_template, len(rows))):
            others = [r["id"] for r in rows if r["id"] != row["id"]]
            queries.append({"id": f"t-{row['id']}", "type": SAME_TEMPLATE, "meme": row["id"], "relevant": others})
    return queries + negative_queries([row["text"] for row in truth], seed=seed)


def negative_queries(texts: list[str], n: int = 200, seed: int = 13) -> list[dict]:
    """`n` queries whose words are in none of `texts` (nor a typing slip away from a word that
    is): half gibberish (1-3 runs of 4-9 random letters), half 1-3 real English words drawn from
    the 2,000th-30,000th commonest (wordninja's frequency list), as a person types a search that
    has no answer in this archive."""
    from rapidfuzz import fuzz, process

    rnd = random.Random(seed)
    present = {w.lower() for text in texts for w in _WORD.findall(text)}
    glued = " ".join(letters_of(text) for text in texts)

    def absent(word: str) -> bool:
        if word in present or word in glued:
            return False
        near = process.extractOne(word, present, scorer=fuzz.ratio, score_cutoff=80) if present else None
        return near is None

    vocabulary = [w for w in words_by_frequency()[2000:30000] if w.isalpha() and len(w) >= 4]
    queries: list[dict] = []
    while len(queries) < n:
        size = rnd.randint(1, 3)
        if len(queries) % 2 == 0:
            words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(4, 9)))
                     for _ in range(size)]
        else:
            words = rnd.sample(vocabulary, size)
        if all(absent(w) for w in words):
            queries.append({"id": f"n-{len(queries):03d}", "type": NEGATIVE, "text": " ".join(words), "relevant": []})
    return queries


def tune_fusion(ranked: list[Ranked]) -> dict:
    """Choose the RRF constant and weights per kind of search (text queries; image queries)
    on the tuning half of `ranked`; report both halves' held-out figures."""
    tuning, held_out = split(ranked)
    chosen: dict[str, dict] = {}
    for kind, types in (("text", {KNOWN_ITEM}), ("image", {REPOST, SAME_TEMPLATE})):
        part = [r for r in tuning if r.query.type in types]
        signals = sorted({s for r in part for s in r.hits})
        if not part or not signals:
            continue
        k, weights, mrr = tune(part, signals)
        chosen[kind] = {"k": k, "weights": weights, "tuning_mrr": round(mrr, 4), "tuning_queries": len(part),
                        "types": sorted(types)}
    tuned_held_out = {kind: report([r for r in held_out if r.query.type in c["types"]], c["k"], c["weights"])
                      for kind, c in chosen.items()}
    return {"chosen": chosen, "held_out_defaults": report(held_out),
            "held_out_tuned": _merged(tuned_held_out), "held_out_queries": len(held_out)}


def _merged(reports: dict[str, dict]) -> dict:
    """Per-type sections of several reports in one (the overall figure left to each)."""
    merged: dict = {"overall": {}, "by_type": {}}
    for part in reports.values():
        merged["by_type"].update(part["by_type"])
    return merged
