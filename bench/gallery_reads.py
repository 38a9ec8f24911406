"""How long gallery reads wait while a heavy upload is processed (issue: one slow request
blocked others). Serves an archive with uvicorn in this process, then, for an add (`POST
/api/memes`) and a search by image (`POST /api/similar`) of a large PNG (7999 x 7999, under the
64 MP cap), sends `GET /api/stats` and `GET /api/search` every 0.3 s while it runs; prints the
medians and the worst, beside the same reads on an idle server.

    python bench/gallery_reads.py ARCHIVE_DIR    (an indexed archive; MEMES_* as for the CLI)
"""
from __future__ import annotations

import io
import random
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def big_png(seed: int) -> bytes:
    rng = random.Random(seed)
    img = Image.new("RGB", (7999, 7999), (200, 100, 50))
    draw = ImageDraw.Draw(img)
    for _ in range(300):
        x, y = rng.randrange(7000), rng.randrange(7000)
        draw.rectangle([x, y, x + rng.randrange(1, 999), y + rng.randrange(1, 999)],
                       fill=(rng.randrange(256), rng.randrange(256), 0))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def timed(url: str, path: str, params=None) -> float:
    start = time.perf_counter()
    httpx.get(url + path, params=params, timeout=300).raise_for_status()
    return time.perf_counter() - start


def reads_during(url: str, heavy) -> tuple[list[float], float]:
    done = threading.Event()
    took = {}

    def run():
        start = time.perf_counter()
        heavy()
        took["heavy"] = time.perf_counter() - start
        done.set()

    threading.Thread(target=run).start()
    time.sleep(0.5)
    waits = []
    while not done.is_set():
        waits.append(timed(url, "/api/stats"))
        waits.append(timed(url, "/api/search", {"q": "monday", "k": 5}))
        time.sleep(0.3)
    return waits, took["heavy"]


def main() -> None:
    import uvicorn

    from archive.config import resolve_config
    from memes.app import Archive
    from memes.web import create_app
    from memes.web.guard import Site

    archive_dir = Path(sys.argv[1])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Archive(resolve_config({"archive": archive_dir}), resident=True), None,
                     Site.serving("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    timed(url, "/api/search", {"q": "warm up"})
    idle = [timed(url, "/api/stats") for _ in range(5)] + [timed(url, "/api/search", {"q": "monday", "k": 5})
                                                            for _ in range(5)]
    print(f"idle: reads median {statistics.median(idle) * 1000:.0f} ms, worst {max(idle) * 1000:.0f} ms")
    script = {"X-Memes-Request": "1"}
    for label, path, seed in (("search by image", "/api/similar", 1), ("add", "/api/memes", 2)):
        data = big_png(seed)

        def heavy():
            r = httpx.post(url + path, files={"image": ("big.png", data, "image/png")}, headers=script, timeout=600)
            r.raise_for_status()
        waits, took = reads_during(url, heavy)
        print(f"during a {label} of a 7999x7999 PNG ({len(data) // 1024} KB, {took:.1f} s): {len(waits)} reads, "
              f"median {statistics.median(waits) * 1000:.0f} ms, worst {max(waits) * 1000:.0f} ms")
    server.should_exit = True


if __name__ == "__main__":
    main()
