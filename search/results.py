"""What a search returns."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class SignalHit:
    """One meme as one signal ranks it."""

    meme_id: str
    score: float
    snippet: str | None = None
    detail: dict | None = None  # e.g. which annotation passage matched


@dataclass
class Result:
    """One meme in the fused ranking. `signals` maps each signal that found it to its rank there."""

    id: str
    path: str | None
    score: float
    signals: dict[str, int] = field(default_factory=dict)
    snippet: str | None = None
    extra: dict[str, float | int] = field(default_factory=dict)

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("extra")
        data.update(self.extra)
        return data


@dataclass
class Answer:
    """A search's answer: the memes that match it, best first; for a text search where none
    does, the memes closest by spelling or meaning (under the relevance floor, shown apart); notices."""

    results: list[Result]
    closest: list[Result] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    itself: str | None = None  # a search by picture: the meme whose bytes the picture is, if any
    total: int | None = None  # a text search: how many memes matched in all (results holds k of them)
