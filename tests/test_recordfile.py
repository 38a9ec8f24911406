from datetime import datetime, timezone
from pathlib import Path

import pytest

from archive.errors import RecordFormatError
from archive.model import Annotation, Meme, OcrText, Sighting
from archive.recordfile import (format_record, parse_record, phash_from_file_name, read_record_file,
                                record_file_name)
from tests.conftest import SEED


def test_seed_parses_into_its_sections_in_order():
    meme = read_record_file(SEED)
    assert meme.phash == "3d4397e866a55657"
    assert meme.first_seen == datetime(2023, 12, 18, 6, 47, 43, tzinfo=timezone.utc)
    kinds = [(type(s).__name__, getattr(s, "kind", None), getattr(s, "source", getattr(s, "engine", None)))
             for s in meme.sections]
    assert kinds == [
        ("Annotation", "simple-description", "llama3.2-vision_11b"),
        ("Annotation", "detailed-analysis", "gemma3-27b-vision"),
        ("OcrText", None, "tesseract"),
        ("Annotation", "simple-description", "llama3.2-vision"),
    ]
    analysis = meme.annotations[1].text
    assert analysis.startswith("Okay, here's an analysis")
    assert "6. Queer Feminist Intersectional Analysis" in analysis
    assert meme.ocr_text.startswith("70 72 —e— LLaMA 2")


def test_seed_formats_back_byte_for_byte():
    assert format_record(read_record_file(SEED)) == SEED.read_text(encoding="utf-8")


def test_extras_of_an_indexed_image_round_trip():
    seen = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    meme = Meme(id="abc", first_seen=seen, content_hash="ab" * 32, phash="0123456789abcdef",
                sections=[OcrText("tesseract", "HELLO THERE"), Annotation("simple-description", "m_1", "A cat.\nTwo lines.")],
                sightings=[Sighting("/memes/a b.jpg", seen), Sighting("/memes/c.png", seen)])
    text = format_record(meme)
    again = parse_record(text)
    assert format_record(again) == text
    assert [s.path for s in again.sightings] == ["/memes/a b.jpg", "/memes/c.png"]
    assert again.content_hash == "ab" * 32 and again.phash == "0123456789abcdef"
    assert again.annotations[0].text == "A cat.\nTwo lines."


def test_empty_body_and_several_sources_of_one_kind():
    text = "First Seen\n2020-01-01T00:00:00+00:00\ntesseract-ocr\nsimple-description (a)\none\nsimple-description (b)\ntwo"
    meme = parse_record(text)
    assert meme.ocr_text == ""
    assert [(a.source, a.text) for a in meme.annotations] == [("a", "one"), ("b", "two")]
    assert format_record(meme) == text


@pytest.mark.parametrize("text, message", [
    ("hello\nFirst Seen\n2020-01-01T00:00:00", "line 1: expected a section header"),
    ("First Seen\nyesterday", "not an ISO-8601 timestamp"),
    ("", "no sections found"),
])
def test_bad_records_name_the_problem(text, message):
    with pytest.raises(RecordFormatError, match=message):
        parse_record(text)


def test_file_names_carry_the_perceptual_hash(tmp_path):
    assert phash_from_file_name(Path("000_3d4397e866a55657.txt")) == "3d4397e866a55657"
    assert phash_from_file_name(Path("notes.txt")) is None
    assert record_file_name(7, Meme(id="x", phash="00ff00ff00ff00ff")) == "007_00ff00ff00ff00ff.txt"


def test_unreadable_record_file_is_a_format_error(tmp_path):
    bad = tmp_path / "001_0000000000000000.txt"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RecordFormatError, match="not UTF-8"):
        read_record_file(bad)
