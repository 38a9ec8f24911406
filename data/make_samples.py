"""Make the bundled sample memes (data/samples/) with Pillow: run it to regenerate them.

usage: python data/make_samples.py [OUT_DIR]

Everything here is drawn by this script: charts with labelled lines like the archive's real
record, captions in bold outlined letters over photo-like scenes and flat colours, an animated
GIF, a PNG with transparency, and a repost (a re-encoded, resized copy of one meme).
The font is DejaVu Sans Bold (Debian: fonts-dejavu-core).
"""
from __future__ import annotations

import math
import random
import sys
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
REGULAR = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def font(size: int, path: str = FONT) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def caption(img: Image.Image, text: str, where: str) -> None:
    """Meme-style caption: upper case, white letters, black outline, fitted to the width."""
    draw = ImageDraw.Draw(img)
    text = text.upper()
    for size in range(img.width // 9, 14, -2):
        f = font(size)
        lines = textwrap.wrap(text, width=max(6, int(img.width / (size * 0.68))))
        box = draw.multiline_textbbox((0, 0), "\n".join(lines), font=f, stroke_width=max(2, size // 12),
                                      align="center")
        if box[2] - box[0] <= img.width * 0.94 and box[3] - box[1] <= img.height * 0.3:
            break
    block = "\n".join(lines)
    w, h = box[2] - box[0], box[3] - box[1]
    y = img.height * 0.03 if where == "top" else img.height * 0.97 - h
    draw.multiline_text(((img.width - w) / 2 - box[0], y - box[1]), block, font=f, fill="white",
                        stroke_width=max(2, size // 12), stroke_fill="black", align="center")


def photo(seed: int, size=(640, 520)) -> Image.Image:
    """A photo-like scene: sky gradient, hills, a sun, blurred noise for texture."""
    rnd = random.Random(seed)
    w, h = size
    img = Image.new("RGB", size)
    top = tuple(rnd.randint(60, 200) for _ in range(3))
    bottom = tuple(rnd.randint(0, 120) for _ in range(3))
    draw = ImageDraw.Draw(img)
    for y in range(h):
        t = y / h
        draw.line([(0, y), (w, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    for _ in range(3):
        cx, r = rnd.randint(0, w), rnd.randint(h // 4, h // 2)
        color = tuple(rnd.randint(20, 140) for _ in range(3))
        draw.ellipse([cx - r * 2, h - r, cx + r * 2, h + r], fill=color)
    sx, sy, sr = rnd.randint(60, w - 60), rnd.randint(40, h // 3), rnd.randint(25, 50)
    draw.ellipse([sx - sr, sy - sr, sx + sr, sy + sr], fill=(250, 220, 120))
    for _ in range(400):
        x, y = rnd.randint(0, w), rnd.randint(0, h)
        c = tuple(rnd.randint(0, 255) for _ in range(3))
        draw.point((x, y), fill=c)
    return img.filter(ImageFilter.GaussianBlur(1.2))


def chart() -> Image.Image:
    """Two labelled lines over model size, like the chart in the archive's real record."""
    img = Image.new("RGB", (760, 520), "white")
    d = ImageDraw.Draw(img)
    left, top, right, bottom = 90, 60, 720, 440
    d.rectangle([left, top, right, bottom], outline="black", width=2)
    sizes = [7, 13, 34, 70]
    xs = [left + (right - left) * math.log(s / 7) / math.log(10) for s in sizes]
    llama = [45, 55, 62, 69]
    mistral = [60, 62, 66, 70]

    def y(v):
        return bottom - (v - 40) / 35 * (bottom - top)

    for series, color in ((llama, (230, 120, 20)), (mistral, (220, 60, 150))):
        pts = [(x, y(v)) for x, v in zip(xs, series)]
        d.line(pts, fill=color, width=4)
        for px, py in pts:
            d.ellipse([px - 6, py - 6, px + 6, py + 6], fill=color)
    for x, s in zip(xs, sizes):
        d.text((x - 8, bottom + 10), str(s), font=font(18, REGULAR), fill="black")
    for v in (45, 50, 55, 60, 65, 70):
        d.text((left - 40, y(v) - 10), str(v), font=font(18, REGULAR), fill="black")
    dx = xs[1] + 60
    for yy in range(top, bottom, 14):
        d.line([(dx, yy), (dx, yy + 7)], fill="gray", width=2)
    d.text((dx + 8, bottom - 70), "Effective LLaMA\nsize 23B (3.3x)", font=font(18, REGULAR), fill="black")
    d.text((left + 20, top + 15), "— LLaMA 2", font=font(22), fill=(230, 120, 20))
    d.text((left + 20, top + 45), "— Mistral", font=font(22), fill=(220, 60, 150))
    d.text((left + 150, bottom + 40), "Model size (billion parameters)", font=font(22, REGULAR), fill="black")
    d.text((300, 15), "MMLU (%)", font=font(26), fill="black")
    return img


def animated() -> list[Image.Image]:
    frames = []
    for i, color in enumerate([(40, 40, 120), (120, 40, 40), (40, 120, 40)]):
        frame = Image.new("RGB", (400, 300), color)
        ImageDraw.Draw(frame).ellipse([150 + i * 20, 120, 250 + i * 20, 220], fill=(240, 200, 60))
        caption(frame, "loading memes please wait", "top")
        frames.append(frame.convert("P", palette=Image.Palette.ADAPTIVE))
    return frames


def sticker() -> Image.Image:
    img = Image.new("RGBA", (420, 300), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([40, 120, 190, 180], radius=12, fill=(10, 10, 10, 255))
    d.rounded_rectangle([230, 120, 380, 180], radius=12, fill=(10, 10, 10, 255))
    d.rectangle([190, 135, 230, 150], fill=(10, 10, 10, 255))
    d.text((70, 200), "DEAL WITH IT", font=font(40), fill=(0, 0, 0, 255))
    return img


CAPTIONED = [
    ("one-does-not-simply.jpg", 1, "one does not simply", "index fifty thousand memes"),
    ("ocr-finally-works.jpg", 2, "when the ocr", "finally reads the caption"),
    ("explaining-embeddings.jpg", 3, "me explaining embeddings", "to my cat"),
    ("deploy-friday.jpg", 4, "deploying on friday", "what could possibly go wrong"),
    ("coffee-code.jpg", 5, "first coffee of the day", "now i can read the stack trace"),
]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    chart().save(out / "llama-mistral-chart.png")
    for name, seed, top, bottom in CAPTIONED:
        img = photo(seed)
        caption(img, top, "top")
        caption(img, bottom, "bottom")
        img.save(out / name, quality=88)
    flat = Image.new("RGB", (600, 400), (235, 120, 40))
    caption(flat, "monday again", "top")
    caption(flat, "nobody asked for this", "bottom")
    flat.save(out / "monday-flat.png")
    frames = animated()
    frames[0].save(out / "loading.gif", save_all=True, append_images=frames[1:], duration=400, loop=0)
    sticker().save(out / "deal-with-it.png")
    reposts = out / "reposts"
    reposts.mkdir(exist_ok=True)
    original = Image.open(out / "one-does-not-simply.jpg")
    original.resize((original.width // 2, original.height // 2)).save(
        reposts / "one-does-not-simply-small.jpg", quality=40)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "samples")
