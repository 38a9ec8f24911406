"""The JSON shapes of the edges: `memes ... --json` and the gallery's API give the same ones."""
from __future__ import annotations

from archive.model import Meme, OcrText
from search.results import Result


def meme_json(meme: Meme) -> dict:
    """A meme as JSON: `memes show --json` and the gallery's API give this shape."""
    return {
        "id": meme.id,
        "path": meme.path,
        "first_seen": meme.first_seen.isoformat() if meme.first_seen else None,
        "content_hash": meme.content_hash,
        "phash": meme.phash,
        "width": meme.width,
        "height": meme.height,
        "annotations": [{"kind": a.kind, "source": a.source, "text": a.text} for a in meme.annotations],
        "ocr": [_ocr_json(meme, o) for o in meme.sections if isinstance(o, OcrText)],
        "sightings": [{"path": s.path, "seen_at": s.seen_at.isoformat() if s.seen_at else None}
                      for s in meme.sightings],
    }


def _ocr_json(meme: Meme, ocr: OcrText) -> dict:
    """An OCR section as JSON; one read from an altered copy names the copy and its file."""
    found = {"engine": ocr.engine, "text": ocr.text}
    if ocr.copy:
        found["copy"] = {"id": ocr.copy, "path": meme.copy_path(ocr.copy)}
    return found


def results_json(query: str, results: list[Result], notices: list[str], closest: list[Result] | None = None,
                 itself: str | None | bool = False) -> dict:
    """Search results as JSON: `memes search --json`, `memes similar --json` and the API agree.
    A text search adds `closest` (where nothing matches, the memes nearest by spelling or meaning); a search
    by picture `itself` (the meme whose bytes the picture is, or null)."""
    found = {"query": query, "results": [r.to_json() for r in results], "notices": notices}
    if closest is not None:
        found["closest"] = [r.to_json() for r in closest]
    if itself is not False:
        found["itself"] = itself
    return found
