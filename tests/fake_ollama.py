"""A small fake Ollama server: real HTTP on 127.0.0.1, the endpoints the `ollama` client uses.

Replies are deterministic and derived from the request: the image's size and dominant colour
(named with a word no caption uses, so a test can tell annotation text from OCR text).
Knobs: `delay` (seconds per chat request), and queues of faults for the next requests:
`fail` (HTTP 500), `busy` (HTTP 503, queue full), `garbage` (an empty reply), `truncated`
(a reply cut off by the length limit), `hang` (no reply within the client's timeout). `die_after`
stops the whole server after that many answered chat requests (a server going away mid-run).
`models` is the set of pulled models; `requests` records what arrived.
"""
from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

COLOUR_WORDS = {  # unusual names: they occur in annotations, never in the sample captions
    "red": "vermilion", "orange": "tangerine", "yellow": "saffron", "green": "viridian",
    "blue": "cobalt", "purple": "amethyst", "grey": "pewter", "white": "alabaster", "black": "onyx",
}


def colour_name(img: Image.Image) -> str:
    r, g, b = img.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    if max(r, g, b) - min(r, g, b) < 30:
        return "white" if r > 200 else "black" if r < 50 else "grey"
    if r >= g and r >= b:
        return "orange" if g > 90 and g > b + 40 else "red" if g < 150 else "yellow"
    if g >= r and g >= b:
        return "green"
    return "purple" if r > g + 30 else "blue"


def describe(model: str, prompt: str, image: bytes | None) -> str:
    if image is None:
        return f"{model} saw no image."
    img = Image.open(io.BytesIO(image))
    colour = COLOUR_WORDS[colour_name(img)]
    if "numbered" in prompt.lower():
        return (f"Here is an analysis by {model}.\n1. Visual Description\nA {img.width}x{img.height} "
                f"picture, mostly {colour}.\n2. Humour\nThe joke rests on the {colour} backdrop.\n"
                f"3. Critical Theory\nA {colour} surface invites a reading of colour as meaning.")
    return f"A {img.width}x{img.height} meme, mostly {colour}, described by {model}."


class FakeOllama:
    def __init__(self, delay: float = 0.0, models: set[str] | None = None):
        self.delay = delay
        self.models = set(models or {"llama3.2-vision:latest", "gemma3:27b"})
        self.faults: deque[str] = deque()
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.hang_seconds = 5.0
        self.die_after: int | None = None
        self.answered = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "FakeOllama":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def pulled(self, model: str) -> bool:
        return model in self.models or f"{model}:latest" in self.models

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict | str) -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/api/tags":
                    self._send(200, {"models": [{"name": m, "model": m} for m in sorted(fake.models)]})
                elif self.path == "/api/version":
                    self._send(200, {"version": "0.0.0-fake"})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path == "/api/show":
                    if fake.pulled(body.get("model", "")):
                        self._send(200, {"modelfile": "", "capabilities": ["completion", "vision"]})
                    else:
                        self._send(404, {"error": f"model '{body.get('model')}' not found"})
                elif self.path in ("/api/chat", "/api/generate"):
                    self._chat(body)
                else:
                    self._send(404, {"error": "not found"})

            def _chat(self, body: dict) -> None:
                with fake.lock:
                    fake.requests.append(body)
                    fault = fake.faults.popleft() if fake.faults else None
                try:
                    self._answer(body, fault)
                finally:
                    with fake.lock:
                        fake.answered += 1
                        dying = fake.die_after is not None and fake.answered == fake.die_after
                    if dying:
                        threading.Thread(target=fake.stop, daemon=True).start()

            def _work(self, seconds: float) -> None:
                """The model's time on a request; `max_in_flight` counts requests in it at once
                (not the moments around it, when a client may already send its next one)."""
                with fake.lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    time.sleep(seconds)
                finally:
                    with fake.lock:
                        fake.in_flight -= 1

            def _answer(self, body: dict, fault: str | None) -> None:
                model = body.get("model", "")
                if not fake.pulled(model):
                    return self._send(404, {"error": f"model '{model}' not found, try pulling it first"})
                if fault == "hang":
                    time.sleep(fake.hang_seconds)
                if fault == "fail":
                    return self._send(500, {"error": "fake internal error"})
                if fault == "busy":
                    return self._send(503, {"error": "server busy, please try again. maximum pending requests exceeded"})
                self._work(fake.delay)
                if self.path == "/api/chat":
                    message = body["messages"][-1]
                    prompt, images = message.get("content", ""), message.get("images") or []
                else:
                    prompt, images = body.get("prompt", ""), body.get("images") or []
                image = base64.b64decode(images[0]) if images else None
                text = describe(model, prompt, image)
                done_reason = "stop"
                if fault == "garbage":
                    text = ""
                elif fault == "truncated":
                    text, done_reason = text[: len(text) // 3], "length"
                reply = {"model": model, "created_at": "2026-01-01T00:00:00Z", "done": True,
                         "done_reason": done_reason}
                if self.path == "/api/chat":
                    reply["message"] = {"role": "assistant", "content": text}
                else:
                    reply["response"] = text
                self._send(200, reply)

        return Handler
