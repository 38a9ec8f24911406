"""The text record format, as in the archive's real records (`000_3d4397e866a55657.txt`).

A record is a run of sections. Each starts with a header line and its body runs to the next
header:

    First Seen                               an ISO-8601 timestamp on the next line
    <kind> (<source>)                        an annotation, e.g. `simple-description (llama3.2-vision_11b)`
    <engine>-ocr                             OCR text, e.g. `tesseract-ocr`
    <engine>-ocr (copy <16 hex>)             OCR text of an altered copy joined to the meme (its
                                             bytes' hash; `Copies` names its file)
    Content Hash / Perceptual Hash / Sightings / Copies / Kept Apart / Joined By Hand
                                             extras this tool adds for indexed images

Parsing then formatting a record gives back the same text, byte for byte, for records in the
canonical form (no trailing newline, as the seed has none).
"""
from __future__ import annotations

import glob
import os
import re
from datetime import datetime
from pathlib import Path

from .disk import why_unreadable
from .errors import RecordFormatError
from .model import Annotation, Meme, OcrText, Sighting, as_utc

FIRST_SEEN = "First Seen"
CONTENT_HASH = "Content Hash"
PERCEPTUAL_HASH = "Perceptual Hash"
SIGHTINGS = "Sightings"
COPIES = "Copies"  # `<16 hex> <path>`: the sightings whose bytes are an altered copy of the meme's
KEPT_APART = "Kept Apart"  # content hashes of memes the user split this image from (`memes split`)
JOINED = "Joined By Hand"  # content hashes of images the user joined to this meme (`memes join`)
_FIXED = (FIRST_SEEN, CONTENT_HASH, PERCEPTUAL_HASH, SIGHTINGS, COPIES, KEPT_APART, JOINED)
_ANNOTATION = re.compile(r"([a-z][a-z0-9]*(?:-[a-z0-9]+)*) \((\S+)\)")  # the source: any word, even `<x>` or `a(b)`
_OCR = re.compile(r"([a-z][a-z0-9]*)-ocr")
_COPY_OCR = re.compile(r"([a-z][a-z0-9]*)-ocr \(copy ([0-9a-f]{16})\)")
_FILE_NAME = re.compile(r"(\d+)_([0-9a-f]{16})\.txt")


def _header(line: str) -> tuple[str, ...] | None:
    """What a header line announces, or None for a body line."""
    line = line.rstrip("\r")
    if line in _FIXED:
        return (line,)
    if m := _OCR.fullmatch(line):
        return ("ocr", m.group(1))
    if m := _COPY_OCR.fullmatch(line):
        return ("ocr", m.group(1), m.group(2))
    if m := _ANNOTATION.fullmatch(line):
        return ("annotation", m.group(1), m.group(2))
    return None


def _split(text: str) -> list[tuple[tuple[str, ...], str]]:
    sections: list[tuple[tuple[str, ...], list[str]]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        header = _header(line)
        if header is not None:
            sections.append((header, []))
        elif sections:
            sections[-1][1].append(line)
        elif line.strip():
            raise RecordFormatError(f"line {number}: expected a section header, got {line[:60]!r}")
    if not sections:
        raise RecordFormatError("no sections found")
    return [(header, "\n".join(body)) for header, body in sections]


def _timestamp(body: str, what: str) -> datetime:
    try:
        return as_utc(datetime.fromisoformat(body.strip()))
    except ValueError:
        raise RecordFormatError(f"{what}: not an ISO-8601 timestamp: {body.strip()[:40]!r}") from None


def _sightings(body: str) -> list[Sighting]:
    sightings = []
    for line in filter(None, body.split("\n")):
        when, _, path = line.partition(" ")
        sightings.append(Sighting(path=path, seen_at=_timestamp(when, SIGHTINGS)))
    return sightings


def parse_record(text: str, meme_id: str = "", phash: str | None = None) -> Meme:
    """Parse record text into a Meme. Raises RecordFormatError naming the problem. One final
    newline (as editors and `memes show` leave) is not part of the last section."""
    meme = Meme(id=meme_id, phash=phash)
    text = text[:-1] if text.endswith("\n") else text
    for header, body in _split(text):
        match header:
            case (name,) if name == FIRST_SEEN:
                meme.first_seen = _timestamp(body, FIRST_SEEN)
            case (name,) if name == CONTENT_HASH:
                meme.content_hash = body.strip() or None
            case (name,) if name == PERCEPTUAL_HASH:
                meme.phash = body.strip() or None
            case (name,) if name == SIGHTINGS:
                meme.sightings = _sightings(body)
            case (name,) if name == KEPT_APART:
                meme.kept_apart = body.split()
            case (name,) if name == JOINED:
                meme.joined_by_hand = body.split()
            case (name,) if name == COPIES:
                pass  # which file each copy is: known again from the sightings' bytes when indexed
            case ("ocr", engine):
                meme.sections.append(OcrText(engine=engine, text=body))
            case ("ocr", engine, copy):
                meme.sections.append(OcrText(engine=engine, text=body, copy=copy))
            case ("annotation", kind, source):
                meme.sections.append(Annotation(kind=kind, source=source, text=body))
    if not meme.sections and not meme.content_hash:
        raise RecordFormatError("no annotation or OCR text, and no image: nothing to keep")
    return meme


def _section(header: str, body: str) -> list[str]:
    return [header] + (body.split("\n") if body else [])


def format_record(meme: Meme, extras: bool = True) -> str:
    """The record text of a meme.

    `extras` adds what an indexed image has beyond the seed's sections: its content hash,
    perceptual hash and sightings. A record with no image (an import) prints as it came in;
    its perceptual hash lives in its file name.
    """
    extras = extras and meme.content_hash is not None
    lines: list[str] = []
    if meme.first_seen is not None:
        lines += _section(FIRST_SEEN, meme.first_seen.isoformat(timespec="seconds"))
    for section in meme.sections:
        if isinstance(section, Annotation):
            lines += _section(f"{section.kind} ({section.source})", section.text)
        elif isinstance(section, OcrText) and section.copy:
            lines += _section(f"{section.engine}-ocr (copy {section.copy})", section.text)
        elif isinstance(section, OcrText):
            lines += _section(f"{section.engine}-ocr", section.text)
    if extras:
        lines += _section(CONTENT_HASH, meme.content_hash)
    if extras and meme.phash:
        lines += _section(PERCEPTUAL_HASH, meme.phash)
    if extras and meme.sightings:
        body = "\n".join(f"{s.seen_at.isoformat(timespec='seconds')} {s.path}" for s in meme.sightings)
        lines += _section(SIGHTINGS, body)
    copies = {o.copy: meme.copy_path(o.copy) for o in meme.copy_texts}
    if extras and copies:
        lines += _section(COPIES, "\n".join(f"{copy} {path or '(file gone)'}" for copy, path in copies.items()))
    if extras and meme.kept_apart:
        lines += _section(KEPT_APART, "\n".join(meme.kept_apart))
    if extras and meme.joined_by_hand:
        lines += _section(JOINED, "\n".join(meme.joined_by_hand))
    return "\n".join(lines)


def phash_from_file_name(path: Path) -> str | None:
    """`000_3d4397e866a55657.txt` -> `3d4397e866a55657`; None for other names."""
    m = _FILE_NAME.fullmatch(path.name)
    return m.group(2) if m else None


def record_file_name(sequence: int, meme: Meme) -> str:
    """The archive's naming: a sequence number and the 16-hex perceptual hash (or the id)."""
    return f"{sequence:03d}_{meme.phash or meme.id}.txt"


def record_files(given: list[str]) -> tuple[list[Path], list[str]]:
    """The record files named by files, folders (their `.txt` files, in name order) and glob
    patterns; and what named nothing."""
    found: list[Path] = []
    missing: list[str] = []
    for entry in given:
        path = Path(entry).expanduser()
        if path.is_dir():
            matched = sorted(p for p in path.rglob("*.txt") if p.is_file())
        elif path.exists():
            matched = [path]
        elif any(c in entry for c in "*?["):
            matched = sorted(Path(p) for p in glob.glob(os.path.expanduser(entry), recursive=True))
        else:
            matched = []
        found += matched
        if not matched:
            missing.append(entry)
    return list(dict.fromkeys(found)), missing


def read_record_file(path: Path) -> Meme:
    """Raises RecordFormatError with the reason (the caller names the file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RecordFormatError("not UTF-8 text") from None
    except OSError as exc:
        raise RecordFormatError("a folder (`memes import FOLDER` reads the .txt records in it)"
                                if isinstance(exc, IsADirectoryError) else why_unreadable(exc)) from None
    return parse_record(text, phash=phash_from_file_name(path))
