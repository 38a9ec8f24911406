"""How the catalog's columns hold the model's values: moments as ISO text, paths (whatever
their bytes) as UTF-8 text, sections as (type, kind, source) and a body, sightings as rows."""
from __future__ import annotations

import os
from datetime import datetime

from .database import Row
from .model import Annotation, OcrText, Section, Sighting


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


_RAW = "raw:"  # stored paths are absolute; one starting with this holds undecodable bytes


def path_to_db(path: str) -> str:
    """File names need not be UTF-8 (Python keeps their bytes as surrogates); SQLite text must be.
    Such a path is stored as `raw:` and its bytes in hex."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return _RAW + os.fsencode(path).hex()


def path_from_db(text: str) -> str:
    return os.fsdecode(bytes.fromhex(text[len(_RAW):])) if text.startswith(_RAW) else text


COPY_KIND = "copy:"  # an OCR section read from an altered copy: kind "copy:<16 hex digits of its bytes>"


def section_key(section: Section) -> tuple[str, str, str]:
    if isinstance(section, OcrText):
        return ("ocr", COPY_KIND + section.copy if section.copy else "ocr", section.engine)
    return ("annotation", section.kind, section.source)


def section_of(row: Row) -> Section:
    """The section a `sections` row holds (`section_key` the other way)."""
    if row["type"] == "ocr":
        copy = row["kind"][len(COPY_KIND):] if row["kind"].startswith(COPY_KIND) else None
        return OcrText(engine=row["source"], text=row["body"], copy=copy)
    return Annotation(kind=row["kind"], source=row["source"], text=row["body"])


def sighting_of(row: Row) -> Sighting:
    return Sighting(path=path_from_db(row["path"]), seen_at=moment(row["seen_at"]), size=row["size"],
                    mtime=row["mtime"], content_hash=row["content_hash"])
