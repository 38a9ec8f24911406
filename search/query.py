"""The query language, the same in the CLI and the gallery.

    one does not simply            words (typos and glued words allowed; see `signals.keyword`)
    "one does not" simply          a phrase: the meme's text has these words one after another
    monday -coffee -"stack trace"  a word or phrase to exclude: memes whose text has it go

Filters (`Filters`: first seen after / before a date, a file under a folder, with or without
text read on the picture, annotated) choose the memes a query ranks among, before ranking.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime, timezone

from archive.keywords import query_words
from archive.errors import MemesError

SORTS = ("relevance", "first-seen", "last-seen")
_TERM = re.compile(r'(-?)"([^"]*)"?|(\S+)')


@dataclass(frozen=True)
class Query:
    """A query as typed, taken apart: `words` go to every signal; a meme must carry each of
    `phrases`, and none of `excluded`, in its text."""

    words: str
    phrases: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    def admits(self, text: str) -> bool:
        """Whether `text` has each phrase's words one after another, and none of an exclusion's
        (its words as `query_words` reads them; a term without words is never said)."""
        if text.isascii():  # one search a term, no list of the text's words
            lowered = text.lower()
            said = lambda term: term is not None and term.search(lowered) is not None  # noqa: E731
            phrases, excluded = self._patterns
        else:
            words = f" {' '.join(query_words(text))} "
            said = lambda term: bool(term) and f" {' '.join(term)} " in words  # noqa: E731
            phrases, excluded = ([query_words(t) for t in terms] for terms in (self.phrases, self.excluded))
        return all(said(p) for p in phrases) and not any(said(x) for x in excluded)

    @cached_property
    def _patterns(self) -> tuple[list, list]:
        """Each phrase's and exclusion's words as a pattern over lower-case ASCII text: the words
        whole, apart only by what is no word (so exactly where `query_words` of the text has them
        one after another)."""
        def pattern(term: str) -> re.Pattern | None:
            words = query_words(term)
            return re.compile(r"(?<![^\W_])" + r"[\W_]+".join(map(re.escape, words)) + r"(?![^\W_])") if words else None
        return [pattern(p) for p in self.phrases], [pattern(x) for x in self.excluded]


def parse(text: str) -> Query:
    """Raises MemesError for an empty or all-space query, and one with nothing to look for (only
    exclusions)."""
    if not text.strip():
        raise MemesError("the query is empty: give some words to search for")
    words: list[str] = []
    phrases: list[str] = []
    excluded: list[str] = []
    for match in _TERM.finditer(text):
        minus, quoted, bare = match.groups()
        if quoted is not None:
            (excluded if minus else phrases).append(quoted)
            if not minus:
                words.append(quoted)
        elif bare.startswith("-") and len(bare) > 1:
            excluded.append(bare[1:])
        elif bare != "-":
            words.append(bare)
    found = Query(" ".join(w for w in words if w.strip()), tuple(p for p in phrases if query_words(p)),
                  tuple(x for x in excluded if query_words(x)))
    if not query_words(found.words):
        raise MemesError("the query has nothing to look for: give some words besides the ones to leave out")
    return found


def moment(text: str, what: str) -> datetime:
    """A date (`2024-01-31`) or ISO-8601 time as typed, in UTC where no zone is given."""
    try:
        found = datetime.fromisoformat(text.strip())
    except ValueError:
        raise MemesError(f"{what}: not a date (YYYY-MM-DD) or ISO-8601 time: {text!r}") from None
    return found if found.tzinfo else found.replace(tzinfo=timezone.utc)


def checked_sort(sort: str) -> str:
    """`sort` if it is one of SORTS; raises MemesError otherwise."""
    if sort not in SORTS:
        raise MemesError(f"sort must be one of {', '.join(SORTS)}")
    return sort


@dataclass(frozen=True)
class Filters:
    """Which memes a search ranks among. `after` / `before`: first seen on or after / before;
    `folder`: a file of the meme under it; `has_text`: OCR read words on it (or, False, none);
    `annotated`: a vision model described it."""

    after: datetime | None = None
    before: datetime | None = None
    folder: str | None = None
    has_text: bool | None = None
    annotated: bool | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.after, self.before, self.folder, self.has_text, self.annotated))

    @classmethod
    def given(cls, after: str | None = None, before: str | None = None, folder: str | None = None,
              has: str | None = None, annotated: bool | None = None) -> "Filters":
        """Filters as the CLI and the gallery take them (text; `has`: `text` or `no-text`)."""
        if has not in (None, "", "text", "no-text"):
            raise MemesError(f"has must be text or no-text, not {has!r}")
        return cls(moment(after, "after") if after else None, moment(before, "before") if before else None,
                   folder or None, None if not has else has == "text", annotated or None)

