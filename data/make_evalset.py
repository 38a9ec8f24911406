"""The project's own evaluation set: memes made here (own pictures, own captions), in the
truth format of the shared `render_memes.py`, with altered copies and labelled queries.

usage: python data/make_evalset.py OUT [--templates 12] [--per-template 3] [--seed 5]

Writes OUT/images/*.jpg (the memes, to be indexed), OUT/copies/*.jpg (four altered copies of
each: JPEG quality 35, half size, a crop of up to 6%, a white border with a watermark line: what
repost queries search with), OUT/truth.jsonl and OUT/queries.jsonl (see search/evaluate.py).
A "template" is one generated picture; its memes differ by caption.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from make_samples import caption, font, photo  # noqa: E402

from search.evaluate import build_queries  # noqa: E402

# Our own captions, (top, bottom): everyday jokes of the kind meme captions are made of.
CAPTIONS = [
    ("when the code works on the first try", "but you have no idea why"),
    ("me explaining the plot", "to my cat at three in the morning"),
    ("nobody asked", "but here is my opinion on breakfast"),
    ("finally cleaned my room", "now I cannot find anything"),
    ("set an alarm for six", "wake up at eleven feeling betrayed"),
    ("just one more episode", "the sun is rising again"),
    ("ordered a salad", "ate the fries of everyone else"),
    ("my plants when I remember to water them", "after three weeks of silence"),
    ("the meeting could have been an email", "and the email could have been nothing"),
    ("opened the fridge again", "hoping new food appeared"),
    ("told myself I would save money", "bought a lamp shaped like a duck"),
    ("weekend plans", "lie down and stare at the ceiling"),
    ("when the wifi drops for one second", "and you forget how to live"),
    ("my brain during the exam", "playing a song from a cereal advert"),
    ("trying to fold a fitted sheet", "a battle I lose every month"),
    ("me after one push up", "time for a protein shake"),
    ("the group project", "one person does everything"),
    ("walking into a room", "forgetting why I came here"),
    ("mom said five minutes", "three hours later still at the store"),
    ("they said the test would be easy", "they lied about everything"),
    ("new year new me", "same old snacks though"),
    ("when the printer says paper jam", "and there is no paper jam"),
    ("my dog hearing the cheese wrapper", "from four rooms away"),
    ("reading the terms and conditions", "said no one ever"),
    ("saying you are on the way", "while still in the shower"),
    ("the bus leaves at eight", "I arrive at eight oh one"),
    ("buying a book", "and never opening it again"),
    ("when someone says they do not like pizza", "I do not trust them"),
    ("deleting one line of code", "breaks the entire website"),
    ("the face you make", "when the teacher says pop quiz"),
    ("waiting for the microwave", "to reach exactly zero"),
    ("my bank account", "after buying one coffee"),
    ("getting a text that says we need to talk", "heart stops immediately"),
    ("updating my phone", "all my settings disappear"),
    ("the last slice of cake", "everyone pretending they do not want it"),
    ("my motivation on monday", "left the building on friday"),
    ("a spider in the corner", "paying rent now apparently"),
    ("when autocorrect changes a word", "into something very wrong"),
    ("cooking dinner", "smoke alarm is my timer"),
    ("forgot the password", "reset it to the old password"),
    ("sitting in traffic", "watching the other lane move"),
    ("typing a long message", "deleting it and sending ok"),
    ("the socks in the dryer", "vanish into another dimension"),
    ("my cat at midnight", "running laps around the house"),
    ("packing for a trip", "bringing seven shirts for two days"),
    ("when the song you skip", "plays again on shuffle"),
    ("snow day announced", "already in pajamas"),
    ("the moment you realize", "you left the keys inside"),
]


def template_picture(n: int) -> Image.Image:
    """Template n: a photo-like scene with its own shapes, so templates differ to the eye."""
    rnd = random.Random(1000 + n)
    size = rnd.choice([(640, 520), (600, 600), (560, 640), (700, 480)])
    img = photo(2000 + n, size)
    draw = ImageDraw.Draw(img)
    for _ in range(rnd.randint(2, 5)):
        x, y = rnd.randint(0, size[0] - 80), rnd.randint(size[1] // 4, size[1] * 3 // 4)
        w, h = rnd.randint(40, 200), rnd.randint(40, 160)
        color = tuple(rnd.randint(0, 255) for _ in range(3))
        if rnd.random() < 0.5:
            draw.rectangle([x, y, x + w, y + h], fill=color)
        else:
            draw.ellipse([x, y, x + w, y + h], fill=color)
    return img


def alterations(img: Image.Image, rnd: random.Random) -> dict[str, Image.Image]:
    """The four ways a repost differs from its original."""
    w, h = img.size
    dx, dy = int(w * 0.06 * rnd.random()), int(h * 0.06 * rnd.random())
    cropped = img.crop((dx, dy, dx + int(w * 0.94), dy + int(h * 0.94)))
    pad = max(12, w // 20)
    framed = Image.new("RGB", (w + 2 * pad, h + 2 * pad + 28), "white")
    framed.paste(img, (pad, pad))
    ImageDraw.Draw(framed).text((pad, h + pad + 4), "posted by @memelord_9000", font=font(18), fill=(90, 90, 90))
    return {"jpeg": img, "half": img.resize((w // 2, h // 2)),
            "crop": cropped, "border": framed}


def make(out: Path, templates: int = 12, per_template: int = 3, seed: int = 5) -> list[dict]:
    if templates * per_template > len(CAPTIONS):
        raise SystemExit(f"only {len(CAPTIONS)} captions: ask for fewer memes")
    rnd = random.Random(seed)
    images, copies = out / "images", out / "copies"
    images.mkdir(parents=True, exist_ok=True)
    copies.mkdir(parents=True, exist_ok=True)
    captions = CAPTIONS[:]
    rnd.shuffle(captions)
    truth: list[dict] = []
    for t in range(templates):
        picture = template_picture(t)
        for c in range(per_template):
            top, bottom = captions.pop()
            img = picture.copy()
            caption(img, top, "top")
            caption(img, bottom, "bottom")
            meme_id = f"e{t:02d}{c:02d}"
            img.save(images / f"{meme_id}.jpg", quality=90)
            truth.append({"id": meme_id, "file": f"{meme_id}.jpg", "template": f"t{t:02d}",
                          "template_name": f"template {t}", "text": f"{top} {bottom}".upper(), "variant_of": None})
            for name, copy in alterations(img, rnd).items():
                copy.save(copies / f"{meme_id}_{name}.jpg", quality=90 if name != "jpeg" else 35)
                truth.append({"id": f"{meme_id}_{name}", "file": f"{meme_id}_{name}.jpg", "template": f"t{t:02d}",
                              "template_name": f"template {t}", "text": f"{top} {bottom}".upper(),
                              "variant_of": meme_id, "variant": name})
    (out / "truth.jsonl").write_text("".join(json.dumps(r) + "\n" for r in truth))
    queries = build_queries(truth, variants_dir="copies", seed=seed)
    (out / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    return truth


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--templates", type=int, default=12)
    ap.add_argument("--per-template", type=int, default=3)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    say_made(make(args.out, args.templates, args.per_template, args.seed), args.out / "images")


def say_made(truth: list[dict], where: Path) -> None:
    """One line on stderr: how many memes and altered copies a set generator wrote, and where."""
    copies = sum(1 for r in truth if r["variant_of"])
    print(f"{len(truth) - copies} memes and {copies} altered copies in {where}", file=sys.stderr)


if __name__ == "__main__":
    main()
