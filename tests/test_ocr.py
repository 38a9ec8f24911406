from collections import Counter

import pytest

from indexer.imageio import load_image
from indexer.ocr import TesseractOcr, merge_readings, words
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


def test_reads_outlined_captions_over_photos_and_flat_colours():
    ocr = TesseractOcr()
    hit = total = 0
    for name, truth in CAPTIONS.items():
        found = Counter(words(ocr.read(load_image(SAMPLES / name).rgb)))
        want = Counter(words(truth))
        hit += sum(min(n, found[w]) for w, n in want.items())
        total += sum(want.values())
    assert hit / total >= 0.85, f"word recall {hit / total:.2f}"


def test_reads_dark_text_on_a_chart():
    text = TesseractOcr().read(load_image(SAMPLES / "llama-mistral-chart.png").rgb)
    found = set(words(text))
    assert {"mistral", "model", "size", "billion", "parameters", "effective"} <= found


def test_merge_keeps_the_first_reading_whole_and_adds_new_words_once():
    assert merge_readings("I SAW A CAT", "i saw a dog dog , x") == "I SAW A CAT dog"


def test_missing_tesseract_is_a_clear_error(monkeypatch):
    from archive.errors import ModelUnavailable

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ModelUnavailable, match="apt-get install tesseract-ocr"):
        TesseractOcr().check()
