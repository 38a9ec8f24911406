from collections import Counter

import pytest

from indexer.imageio import load_image
from indexer.ocr import MemeOcr, TesseractOcr, merge_readings, reading_order, restore_word_breaks, words
from tests.conftest import SAMPLES

CAPTIONS = {
    "one-does-not-simply.jpg": "one does not simply index fifty thousand memes",
    "ocr-finally-works.jpg": "when the ocr finally reads the caption",
    "explaining-embeddings.jpg": "me explaining embeddings to my cat",
    "deploy-friday.jpg": "deploying on friday what could possibly go wrong",
    "coffee-code.jpg": "first coffee of the day now i can read the stack trace",
    "monday-flat.png": "monday again nobody asked for this",
    "loading.gif": "loading memes please wait",
}


@pytest.mark.parametrize("ocr", [TesseractOcr(), MemeOcr()], ids=["tesseract", "rapidocr+tesseract"])
def test_reads_outlined_captions_over_photos_and_flat_colours(ocr):
    hit = total = 0
    for name, truth in CAPTIONS.items():
        found = Counter(words(ocr.read(load_image(SAMPLES / name).rgb)))
        want = Counter(words(truth))
        hit += sum(min(n, found[w]) for w, n in want.items())
        total += sum(want.values())
    assert hit / total >= 0.85, f"word recall {hit / total:.2f}"


@pytest.mark.parametrize("ocr", [TesseractOcr(), MemeOcr()], ids=["tesseract", "rapidocr+tesseract"])
def test_reads_dark_text_on_a_chart(ocr):
    text = ocr.read(load_image(SAMPLES / "llama-mistral-chart.png").rgb)
    found = set(words(text))
    assert {"mistral", "model", "size", "billion", "parameters", "effective"} <= found


def test_lines_are_read_top_to_bottom_on_a_small_picture():
    """A half-size text post (as PP-OCR found it): its second line's box starts a pixel left of the
    first's and 9 pixels below it; rapidocr took the two for one line and read the second first."""
    def box(left, top, right, bottom, text):
        return [[[left, top], [right, top], [right, bottom], [left, bottom]], text, 0.9]

    found = [box(60, 4, 120, 14, "QuietBanana"), box(7, 47, 250, 57, "follows a balloon"),
             box(8, 38, 270, 48, "wild walrus misses socks"), box(8, 70, 80, 78, "9:41AM")]
    assert [b[1] for b in reading_order(found)] == ["QuietBanana", "wild walrus misses socks",
                                                      "follows a balloon", "9:41AM"]
    beside = [box(200, 10, 260, 30, "world"), box(10, 12, 80, 31, "hello")]  # one line, left to right
    assert [b[1] for b in reading_order(beside)] == ["hello", "world"]


def test_a_line_of_small_type_that_runs_to_the_edges_is_read():
    """Pillow's bitmap font on a flat colour, the line a few pixels from either edge (a caption
    on flat colour, 278 px wide): PP-OCR's detection found no line at all; with a margin of the
    edge's colour around the picture it reads the line."""
    from PIL import Image, ImageDraw

    from data.make_identity_set import bitmap_font
    from indexer.ocr import PaddleOcr

    img = Image.new("RGB", (278, 208), (180, 10, 215))
    ImageDraw.Draw(img).text((4, 110), "lonely pirate misses the garden at the gym 72", font=bitmap_font(),
                             fill=(10, 10, 10))
    assert {"pirate", "misses", "gym", "72"} <= set(words(PaddleOcr().read(img)))


def test_merge_keeps_the_first_reading_whole_and_adds_new_words_once():
    assert merge_readings("I SAW A CAT", "i saw a dog dog , x") == "I SAW A CAT dog"


def test_missing_tesseract_is_a_clear_error(monkeypatch):
    from archive.errors import ModelUnavailable

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ModelUnavailable, match="apt-get install tesseract-ocr"):
        TesseractOcr().check()


def test_word_breaks_are_restored_beside_the_glued_form():
    assert restore_word_breaks(["THEDABISDEAD, really"]) == "THEDABISDEAD, the dab is dead really"
    assert restore_word_breaks(["WHEN THE", "CODE"]) == "WHEN THE CODE"  # words stay as they are
    assert "halloween" in restore_word_breaks(["HALLOWEE", "N IS BS"]).split()  # broken across lines
    # detection cut "balloon" to "oon" at a line's start: joining the ends finds no word across the
    # break, and adds none ("lovesaoon" splits into "love sao on": "love" was never read there)
    cut = restore_word_breaks(["tiny cactus lovesa", "oon at midnight"]).split()
    assert "love" not in cut and {"loves", "oon", "midnight"} <= set(cut)


def test_each_engine_keeps_its_own_reading():
    readings = MemeOcr().read_all(load_image(SAMPLES / "monday-flat.png").rgb)
    assert [engine for engine, _ in readings] == ["rapidocr", "tesseract"]
    for _, text in readings:
        assert {"monday", "again"} <= set(words(text))


def test_unknown_engines_are_a_clear_error():
    from archive.errors import ConfigError

    with pytest.raises(ConfigError, match="choose from rapidocr, tesseract"):
        MemeOcr(engines=["easyocr"])
