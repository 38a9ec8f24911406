"""An evaluation set for meme identity: distinct memes that look alike, and copies that must join.

usage: python data/make_identity_set.py OUT [--groups 3] [--per-group 6] [--seed 5] [--max-crop 0.08]

Repost grouping (`archive.likeness`) must never fold two distinct memes into one, and must
still join a meme's altered copies. This set holds the memes that make that hard, all drawn
here (own pictures, own words), in six styles:

- `flat`: one line of small text (Pillow's bitmap font, 1-pixel strokes, or an 8-9 px tall
  DejaVu) on a flat colour, 250-400 px wide; memes of one group say the same sentence with
  one word or number changed, on other colours or the same one; and the same words on another
  colour (a recoloured meme is another meme);
- `small`: low-resolution memes (250-330 px wide) of one picture, white outlined captions in
  small type, captions a word apart or wholly different;
- `band`: black captions on a white band above a picture (the "caption meme" layout);
- `post-light` and `post-dark`: screenshots of text posts, light and dark mode, a name and a
  few lines of text, posts of one group a word or a line apart;
- `faint`: such posts in faint type: grey text 70-140 grey levels from a grey or tinted
  background (a muted theme, a washed-out screenshot), where a changed word moves few pixels
  far.

Every original gets five altered copies (`copies/<id>_<kind>.jpg`): `jpeg` (quality 30),
`half` (half size), `crop` (3% to `--max-crop`, 8% by default, cut from the edges), `border` (a white frame with a line
of text under the picture) and `watermark` (a small light site mark inside a corner).

Writes OUT/images/*.png (originals), OUT/copies/*.jpg and OUT/identity.jsonl: one row per
image, `{"id", "file", "style", "group", "text", "variant_of", "variant"}` (copies point at
their original). Different `--seed`s give different words, colours and pictures: tune on one,
report on another.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_evalset import say_made  # noqa: E402
from make_samples import REGULAR, font, photo  # noqa: E402

# `faint` last: the sets of earlier seeds keep every image of the other styles byte for byte
STYLES = ("flat", "small", "band", "post-light", "post-dark", "faint")
COPIES = ("jpeg", "half", "crop", "border", "watermark")

ADJECTIVES = ["good", "tiny", "brave", "sleepy", "angry", "quiet", "shiny", "lucky", "grumpy", "clever",
              "fuzzy", "proud", "nervous", "happy", "lonely", "wild", "polite", "hungry", "silly", "calm"]
NOUNS = ["meme", "cat", "robot", "pigeon", "wizard", "teapot", "cactus", "goose", "dragon", "toaster",
         "banana", "lizard", "pirate", "ghost", "walrus", "printer", "waffle", "hamster", "knight", "cloud"]
VERBS = ["says", "wants", "steals", "eats", "hates", "loves", "forgets", "paints", "hides", "sells",
         "finds", "breaks", "counts", "hears", "follows", "ignores", "throws", "fixes", "misses", "builds"]
OBJECTS = ["hello", "pizza", "the moon", "my homework", "socks", "the printer", "a sandwich", "taxes",
           "the wifi", "breakfast", "monday", "a spoon", "the remote", "the bus", "coffee", "glitter",
           "the keys", "a ladder", "the garden", "a balloon"]
TIMES = ["every morning", "at midnight", "on fridays", "after lunch", "in the rain", "before work",
         "all weekend", "at the gym", "during meetings", "on the train"]


def bitmap_font() -> ImageFont.ImageFont:
    """Pillow's built-in bitmap font: 11 px lines, strokes one pixel wide."""
    loader = getattr(ImageFont, "load_default_imagefont", None)
    return loader() if loader else ImageFont.load_default()


def sentence(rnd: random.Random) -> list[str]:
    return [rnd.choice(ADJECTIVES), rnd.choice(NOUNS), rnd.choice(VERBS), *rnd.choice(OBJECTS).split(),
            *rnd.choice(TIMES).split()]


def one_word_changed(words: list[str], rnd: random.Random) -> list[str]:
    """The sentence with one word replaced by another of its kind (or a number by a number)."""
    out = words[:]
    i = rnd.randrange(len(out))
    pool = next((p for p in (ADJECTIVES, NOUNS, VERBS) if out[i] in p), None)
    if out[i].isdigit():
        out[i] = str(int(out[i]) + rnd.randint(1, 9))
    elif pool is not None:
        out[i] = rnd.choice([w for w in pool if w != out[i]])
    else:
        out[i] = rnd.choice([w for w in ADJECTIVES + NOUNS if w != out[i]])
    return out


def captions_of_group(rnd: random.Random, count: int) -> list[str]:
    """A group's captions: a base sentence, others a word apart from it, one wholly other."""
    base = sentence(rnd)
    texts = [base]
    while len(texts) < count:
        text = sentence(rnd) if len(texts) == count - 1 else one_word_changed(base, rnd)
        if text not in texts:  # two memes saying the same on one picture would be one meme
            texts.append(text)
    return [" ".join(t) for t in texts]


def _colour(rnd: random.Random) -> tuple[int, int, int]:
    return tuple(rnd.randint(0, 255) for _ in range(3))


def _ink_for(background: tuple[int, int, int]) -> tuple[int, int, int]:
    return (10, 10, 10) if sum(background) > 380 else (245, 245, 245)


def flat(text: str, rnd: random.Random, size: tuple[int, int], background, bitmap: bool) -> Image.Image:
    img = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(img)
    f = bitmap_font() if bitmap else font(9, REGULAR)
    box = draw.textbbox((0, 0), text, font=f)
    x = max(2, (size[0] - (box[2] - box[0])) // 2)
    draw.text((x, size[1] // 2 + rnd.randint(-40, 40)), text, font=f, fill=_ink_for(background))
    return img


def small_caption(img: Image.Image, text: str, where: str, size: int) -> None:
    draw = ImageDraw.Draw(img)
    f = font(size)
    lines = textwrap.wrap(text.upper(), width=max(8, int(img.width / (size * 0.7))))
    block = "\n".join(lines)
    box = draw.multiline_textbbox((0, 0), block, font=f, stroke_width=1, align="center")
    y = 4 if where == "top" else img.height - (box[3] - box[1]) - 6
    draw.multiline_text(((img.width - (box[2] - box[0])) / 2 - box[0], y - box[1]), block, font=f, fill="white",
                        stroke_width=1, stroke_fill="black", align="center")


def band(picture: Image.Image, text: str, size: int) -> Image.Image:
    f = font(size, REGULAR)
    lines = textwrap.wrap(text, width=max(10, int(picture.width / (size * 0.55))))
    height = len(lines) * int(size * 1.3) + 24
    img = Image.new("RGB", (picture.width, picture.height + height), "white")
    img.paste(picture, (0, height))
    ImageDraw.Draw(img).multiline_text((12, 12), "\n".join(lines), font=f, fill="black", spacing=int(size * 0.3))
    return img


def post(text: str, name: str, dark: bool, width: int, size: int, colours: tuple | None = None) -> Image.Image:
    background, ink, muted = colours or (((21, 32, 43), (231, 233, 234), (139, 152, 165)) if dark else
                                         ((255, 255, 255), (15, 20, 25), (83, 100, 113)))
    lines = textwrap.wrap(text, width=max(12, int((width - 80) / (size * 0.55))))
    height = 90 + len(lines) * int(size * 1.35) + 40
    img = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(img)
    draw.ellipse([16, 16, 60, 60], fill=(29, 155, 240))
    draw.text((72, 18), name, font=font(size), fill=ink)
    draw.text((72, 18 + size + 4), "@" + name.lower().replace(" ", "_"), font=font(size - 2, REGULAR), fill=muted)
    draw.multiline_text((16, 78), "\n".join(lines), font=font(size, REGULAR), fill=ink, spacing=int(size * 0.35))
    draw.text((16, height - 30), "9:41 AM · Dec 3", font=font(size - 3, REGULAR), fill=muted)
    return img


def alterations(img: Image.Image, rnd: random.Random, max_crop: float = 0.08) -> dict[str, tuple[Image.Image, int]]:
    """The five ways a repost differs from its original: (picture, JPEG quality)."""
    w, h = img.size
    cut = 0.03 + (max_crop - 0.03) * rnd.random()  # 3% to max_crop of each side's length, from random edges
    dx, dy = int(w * cut * rnd.random()), int(h * cut * rnd.random())
    cropped = img.crop((dx, dy, w - int(w * cut) + dx, h - int(h * cut) + dy))
    pad = max(8, w // 25)
    framed = Image.new("RGB", (w + 2 * pad, h + 2 * pad + 24), "white")
    framed.paste(img, (pad, pad))
    ImageDraw.Draw(framed).text((pad, h + pad + 4), rnd.choice(["posted by @memelord_9000", "via the group chat",
                                                                 "found on the internet"]),
                                font=font(14), fill=(90, 90, 90))
    marked = img.copy().convert("RGBA")
    layer = Image.new("RGBA", marked.size, (0, 0, 0, 0))
    mark = rnd.choice(["imgflip.com", "memegen.io", "9memes.lol"])
    f = font(max(9, min(12, w // 30)), REGULAR)
    box = ImageDraw.Draw(layer).textbbox((0, 0), mark, font=f)
    corner_x = rnd.choice([4, w - (box[2] - box[0]) - 6])
    corner_y = rnd.choice([3, h - (box[3] - box[1]) - 6])
    ImageDraw.Draw(layer).text((corner_x, corner_y), mark, font=f, fill=(255, 255, 255, 150))
    marked = Image.alpha_composite(marked, layer).convert("RGB")
    return {"jpeg": (img, 30), "half": (img.resize((w // 2, h // 2), Image.Resampling.LANCZOS), 90),
            "crop": (cropped, 90), "border": (framed, 90), "watermark": (marked, 90)}


def originals(style: str, group: int, rnd: random.Random, per_group: int) -> list[tuple[Image.Image, str]]:
    """One group of look-alike memes of a style: (picture, its words)."""
    texts = captions_of_group(rnd, per_group)
    if style == "flat":
        size = (w := rnd.randint(250, 400), w * 3 // 4)
        bitmap = group % 2 == 0
        shared = _colour(rnd)
        out = []
        for i, text in enumerate(texts):
            text = f"{text} {rnd.randint(1, 99)}"
            background = shared if i % 3 == 0 else _colour(rnd)
            out.append((flat(text, rnd, size, background, bitmap), text))
        recoloured = out[0][1]  # the same words on another colour: another meme
        out.append((flat(recoloured, random.Random(group), size, _colour(rnd), bitmap), recoloured))
        return out
    if style == "small":
        width = rnd.randint(250, 330)
        picture = photo(rnd.randint(0, 10**6), (width, width * rnd.choice([3, 4]) // 4))
        out = []
        for text in texts:
            img = picture.copy()
            half = len(text.split()) // 2
            size = rnd.randint(11, 15)
            small_caption(img, " ".join(text.split()[:half]), "top", size)
            small_caption(img, " ".join(text.split()[half:]), "bottom", size)
            out.append((img, text))
        return out
    if style == "band":
        width = rnd.randint(320, 560)
        picture = photo(rnd.randint(0, 10**6), (width, width * 3 // 4))
        size = rnd.randint(14, 24)
        return [(band(picture, text, size), text) for text in texts]
    dark = style == "post-dark"
    name = f"{rnd.choice(ADJECTIVES).title()} {rnd.choice(NOUNS).title()}"
    width = rnd.randint(420, 640)
    size = rnd.randint(14, 20)
    colours = _faint(rnd) if style == "faint" else None
    if colours is not None:
        size = rnd.randint(12, 16)
    out = []
    for text in texts:
        body = f"{text}. {' '.join(sentence(random.Random(group * 7 + 1)))}"  # a second line the posts share
        out.append((post(body, name, dark, width, size, colours), f"{name} {body}"))
    return out


def _faint(rnd: random.Random) -> tuple:
    """A post's colours in faint type: a grey or tinted background, ink 70-140 grey levels from
    it (lighter or darker), and muted text (name, time) two thirds as far."""
    level = rnd.choice([rnd.randint(15, 70), rnd.randint(170, 245)])
    tint = [max(0, min(255, level + rnd.randint(-12, 12))) for _ in range(3)]
    contrast = rnd.randint(70, 140) * (1 if level < 128 else -1)
    ink = tuple(max(0, min(255, c + contrast)) for c in tint)
    muted = tuple(max(0, min(255, c + contrast * 2 // 3)) for c in tint)
    return tuple(tint), ink, muted


def make(out: Path, groups: int = 3, per_group: int = 6, seed: int = 5, max_crop: float = 0.08) -> list[dict]:
    rnd = random.Random(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "copies").mkdir(parents=True, exist_ok=True)
    truth: list[dict] = []
    for style in STYLES:
        for g in range(groups):
            for n, (img, text) in enumerate(originals(style, seed * 100 + g, rnd, per_group)):
                meme_id = f"{style}-{g}-{n}"
                img.save(out / "images" / f"{meme_id}.png")
                row = {"id": meme_id, "file": f"{meme_id}.png", "style": style, "group": f"{style}-{g}",
                       "text": text, "variant_of": None, "variant": None}
                truth.append(row)
                for kind, (copy, quality) in alterations(img, rnd, max_crop).items():
                    name = f"{meme_id}_{kind}.jpg"
                    copy.save(out / "copies" / name, quality=quality)
                    truth.append({**row, "id": f"{meme_id}_{kind}", "file": name, "variant_of": meme_id,
                                  "variant": kind})
    (out / "identity.jsonl").write_text("".join(json.dumps(r) + "\n" for r in truth))
    return truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--groups", type=int, default=3, help="groups of look-alikes per style")
    ap.add_argument("--per-group", type=int, default=6, help="memes per group (flat adds a recoloured one)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--max-crop", type=float, default=0.08, help="the most a crop cuts of each side's length")
    args = ap.parse_args()
    say_made(make(args.out, args.groups, args.per_group, args.seed, args.max_crop), args.out)


if __name__ == "__main__":
    main()
