"""The record model: a meme, what was written about it, and where it was seen."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to it."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


@dataclass
class Annotation:
    """Text a vision model wrote about a meme, e.g. kind `simple-description`, source `llama3.2-vision`."""

    kind: str
    source: str
    text: str


@dataclass
class OcrText:
    """Text an OCR engine read from the image; `engine` is e.g. `tesseract`. `copy` names the
    altered copy it was read from (the first 16 hex digits of that file's SHA-256) where a
    repost joined to this meme carries words of its own: every file stays findable by its words."""

    engine: str
    text: str
    copy: str | None = None


Section = Annotation | OcrText

# The vector spaces: the picture, and the two kinds of text a meme's record holds.
IMAGE, OCR_TEXT, ANNOTATION_TEXT = "image", "ocr_text", "annotation_text"
SPACES = (IMAGE, OCR_TEXT, ANNOTATION_TEXT)
TEXT_SPACES = (OCR_TEXT, ANNOTATION_TEXT)


@dataclass
class Sighting:
    """One place a meme's bytes were found."""

    path: str
    seen_at: datetime
    size: int | None = None
    mtime: float | None = None
    content_hash: str | None = None  # the file's own bytes: a repost's differ from its meme's


@dataclass
class Meme:
    """Everything the archive keeps about one distinct image (or one imported record)."""

    id: str
    first_seen: datetime | None = None
    sections: list[Section] = field(default_factory=list)
    content_hash: str | None = None
    phash: str | None = None
    sightings: list[Sighting] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    kept_apart: list[str] = field(default_factory=list)  # bytes of memes the user split it from
    joined_by_hand: list[str] = field(default_factory=list)  # bytes of images the user joined to it

    @property
    def annotations(self) -> list[Annotation]:
        return [s for s in self.sections if isinstance(s, Annotation)]

    @property
    def ocr_texts(self) -> list[OcrText]:
        """What OCR read on the meme's own picture."""
        return [s for s in self.sections if isinstance(s, OcrText) and s.copy is None]

    @property
    def copy_texts(self) -> list[OcrText]:
        """What OCR read on altered copies joined to the meme."""
        return [s for s in self.sections if isinstance(s, OcrText) and s.copy is not None]

    @property
    def ocr_text(self) -> str:
        return "\n".join(o.text for o in self.ocr_texts if o.text)

    def copy_path(self, copy: str) -> str | None:
        """The path of the sighting whose bytes are the copy `copy` (16 hex digits)."""
        return next((s.path for s in self.sightings if s.content_hash and s.content_hash.startswith(copy)), None)

    @property
    def path(self) -> str | None:
        """The most recently seen path, the one a user would open."""
        if not self.sightings:
            return None
        return max(self.sightings, key=lambda s: s.seen_at).path


def _section_key(section: Section) -> tuple[str, ...]:
    if isinstance(section, OcrText):
        return ("ocr", section.engine, section.copy or "")
    return (section.kind, section.source)


def merge_record(into: Meme, incoming: Meme) -> Meme:
    """Fold an imported record into a meme already in the archive.

    Sections of the same kind and source are replaced by the incoming text (the record is the
    newer word on it), others are added in the record's order; `first_seen` is the earliest
    known; hashes already known are kept."""
    positions = {_section_key(s): i for i, s in enumerate(into.sections)}
    for section in incoming.sections:
        key = _section_key(section)
        if key in positions:
            into.sections[positions[key]] = section
        else:
            positions[key] = len(into.sections)
            into.sections.append(section)
    into.first_seen = min(filter(None, [into.first_seen, incoming.first_seen]), default=None)
    into.content_hash = into.content_hash or incoming.content_hash
    into.phash = into.phash or incoming.phash
    into.kept_apart += [h for h in incoming.kept_apart if h not in into.kept_apart]
    into.joined_by_hand += [h for h in incoming.joined_by_hand if h not in into.joined_by_hand]
    known_paths = {s.path for s in into.sightings}
    into.sightings += [s for s in incoming.sightings if s.path not in known_paths]
    return into
