"""Splitting long annotations into passages, so one matching passage can surface a meme."""
from __future__ import annotations

import re
from dataclasses import dataclass

# A numbered heading ("2. Foucauldian Genealogical Discourse Analysis") starts a new passage.
_HEADING = re.compile(r"^\s*\d+[.)]\s+\S")


@dataclass
class Passage:
    start: int  # character offsets into the annotation text
    end: int

    def text(self, whole: str) -> str:
        return whole[self.start:self.end]


def split_passages(text: str, max_chars: int = 700) -> list[Passage]:
    """Passages of whole lines, at most about `max_chars` long, breaking at numbered headings."""
    passages: list[Passage] = []
    start = end = 0
    offset = 0
    for line in text.splitlines(keepends=True):
        line_start, offset = offset, offset + len(line)
        heading = bool(_HEADING.match(line))
        if end > start and (heading or offset - start > max_chars):
            passages.append(Passage(start, end))
            start = line_start
        end = offset
    if text[start:end].strip():
        passages.append(Passage(start, end))
    return [p for p in passages if text[p.start:p.end].strip()]
