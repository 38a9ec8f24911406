"""Reciprocal rank fusion: each signal votes 1 / (k + rank) for the memes it found."""
from __future__ import annotations

from .results import Result, SignalHit

RRF_K = 60


def fuse(rankings: dict[str, list[SignalHit]], k: int = RRF_K, snippet_order: tuple[str, ...] = (),
         weights: dict[str, float] | None = None) -> list[Result]:
    """One Result per meme, best first. Ties keep the order in which memes were first met.
    A signal's vote is `weight / (k + rank)`; signals not in `weights` weigh 1.

    The snippet comes from the first signal in `snippet_order` that has one for the meme."""
    results: dict[str, Result] = {}
    snippets: dict[str, dict[str, str]] = {}
    for signal, hits in rankings.items():
        weight = (weights or {}).get(signal, 1.0)
        for rank, hit in enumerate(hits, start=1):
            result = results.setdefault(hit.meme_id, Result(id=hit.meme_id, path=None, score=0.0))
            if signal in result.signals:
                continue  # a signal votes once per meme, at its best rank
            result.signals[signal] = rank
            result.score += weight / (k + rank)
            if hit.snippet:
                snippets.setdefault(hit.meme_id, {}).setdefault(signal, hit.snippet)
    for meme_id, by_signal in snippets.items():
        order = [s for s in snippet_order if s in by_signal] + list(by_signal)
        results[meme_id].snippet = by_signal[order[0]]
    return sorted(results.values(), key=lambda r: -r.score)
