"""What OCR read, as a person reads it.

Indexing keeps, after each token OCR read glued together (`MONDAYAGAIN`), the words it splits
into (`monday again`), so that both forms are found (`indexer.ocr.restore_word_breaks`). Shown
to a person that reads twice; `clean_reading` folds the added words back into the token, in its
case (`MONDAY AGAIN`). `matched_spans` says where a query's words stand in a text, for the edges
to mark (bold in a terminal, `<mark>` in the gallery).
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, Iterator

_WORD = re.compile(r"[A-Za-z0-9']+")


@lru_cache(maxsize=1)
def known_words() -> dict:
    import wordninja

    return wordninja.DEFAULT_LANGUAGE_MODEL._wordcost  # the words wordninja knows (no public accessor)


@lru_cache(maxsize=1)
def words_by_frequency() -> list[str]:
    """English words, commonest first (wordninja's frequency list)."""
    return [word for word, _ in sorted(known_words().items(), key=lambda item: item[1])]


def glued_words(letters: str) -> list[str]:
    """The words of a run of lower-case letters OCR read without spaces; [] where it is short
    or a word itself."""
    if len(letters) <= 3 or letters in known_words():
        return []
    import wordninja

    return wordninja.split(letters)


@lru_cache(maxsize=1)
def _frequency_ranks() -> dict[str, int]:
    return {word: rank for rank, word in enumerate(words_by_frequency())}


COMMON_WORDS = 150  # the commonest English words (the, and, you…): no phrase starts or ends with one
RARE_WORD = 1500  # an example phrase holds at least one word rarer than this rank


def example_phrases(texts: Iterable[str], n: int = 3) -> list[str]:
    """Up to `n` short phrases to offer as example searches, one from each of the first texts
    that has one: two or three consecutive dictionary words (no OCR noise), neither end a
    common word, at least one of them uncommon."""
    ranks = _frequency_ranks()
    found: list[str] = []
    for text in texts:
        words = [w.lower() for w in _WORD.findall(clean_reading(text))]
        phrase = next((" ".join(run) for size in (3, 2) for run in _runs(words, size)
                       if all(len(w) >= 3 and w in ranks for w in run)
                       and min(ranks[run[0]], ranks[run[-1]]) >= COMMON_WORDS
                       and max(ranks[w] for w in run) >= RARE_WORD), None)
        if phrase and phrase not in found:
            found.append(phrase)
            if len(found) == n:
                break
    return found


def _runs(words: list[str], size: int) -> Iterator[list[str]]:
    return (words[i:i + size] for i in range(len(words) - size + 1))


def letters_of(token: str) -> str:
    if token.isascii():  # lower case first: the same letters where every character is ASCII
        return "".join(_WORD.findall(token.lower()))
    return "".join(w.lower() for w in _WORD.findall(token))


def clean_reading(text: str) -> str:
    """`text` with the word forms indexing added folded back into their tokens, spaces
    collapsed: one reading of what the picture says."""
    out: list[str] = []
    for token, pieces in as_read(text):
        # a caption's words run together read better apart, in its case ("hungrylizardhatesmy"
        # too); a short or mixed-case token (MMLU, LLaMA2) stays as it was read, and so does a
        # fragment OCR cut off a word, which splits into no words ("mmercials": "m mercia ls")
        glued_caption = (bool(pieces) and (token.isupper() or token.islower()) and len(letters_of(token)) >= 6
                         and not any(len(p) == 1 and p not in "ai" and not p.isdigit() for p in pieces))
        out += ([p.upper() for p in pieces] if token.isupper() else pieces) if glued_caption else [token]
    return " ".join(out)


def as_read(text: str) -> Iterator[tuple[str, list[str]]]:
    """Each token OCR read, with the words indexing wrote after it (`_added_words`; [] if none)."""
    tokens = text.split()
    i = 0
    while i < len(tokens):
        pieces = _added_words(tokens[i], tokens[i + 1:])
        yield tokens[i], pieces
        i += 1 + len(pieces)


def _added_words(token: str, following: list[str]) -> list[str]:
    """The words indexing wrote after a glued token (`glued_words(letters)`, in lower case): the
    tokens that follow and spell `letters` exactly, two or more, or one where `letters` holds a
    digit or an apostrophe (`2019 2019`, `friend's friend's`; a word said twice is no such
    form). Found by spelling; the word list is asked only where the token is in lower case."""
    letters = letters_of(token)
    if len(letters) <= 3:
        return []
    pieces, spelt = [], ""
    for word in following:
        if word != letters_of(word) or not letters.startswith(spelt + word):
            break
        pieces.append(word)
        spelt += word
        if spelt == letters:
            if len(pieces) < 2 and letters.isalpha():
                return []
            # an upper-case token followed by its letters in lower case is indexing's doing; a
            # lower-case one may be prose ("together to get her"): indexing adds forms only
            # after a token that is no word, so ask the word list (loaded only then)
            return pieces if token != token.lower() or letters not in known_words() else []
    return []


def matched_spans(text: str, query: str) -> list[tuple[int, int]]:
    """Where the query's words (of 3+ letters, or all where none is) stand in `text`, as
    (start, end) pairs in order, case aside; a word found inside a longer one counts."""
    wanted = [w.lower() for w in _WORD.findall(query)]
    wanted = [w for w in wanted if len(w) >= 3] or wanted
    if not wanted:
        return []
    pattern = re.compile("|".join(re.escape(w) for w in sorted(set(wanted), key=len, reverse=True)), re.IGNORECASE)
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


def marked(text: str, query: str, opening: str, closing: str, escape=str) -> str:
    """`text` with each of the query's words (`matched_spans`) between `opening` and `closing`;
    `escape` applies to the text itself (HTML for a page)."""
    out, at = [], 0
    for start, end in matched_spans(text, query):
        out += [escape(text[at:start]), opening, escape(text[start:end]), closing]
        at = end
    return "".join(out) + escape(text[at:])
