"""Vision-LLM annotation through Ollama.

An annotator is configured as (kind, model, prompt); its source label in records is the model
name as the archive writes it (`llama3.2-vision:11b` -> `llama3.2-vision_11b`). Requests are
spread over one or more Ollama hosts; a host that refuses connections is dropped for the rest
of the run. Time-outs, 5xx (503 is Ollama's "queue full") and empty or truncated replies are
retried with exponential backoff, then reported as a failure with the reason.
"""
from __future__ import annotations

import hashlib
import io
import itertools
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from PIL import Image

from archive.model import Annotation

from .imageio import image_of

SIMPLE_PROMPT = (
    "Describe this meme in two or three sentences: what the picture shows, the text written on "
    "it (quote it), and the joke or point it makes.")
DETAILED_PROMPT = (
    "Analyse this meme in numbered sections. 1. Visual Description: what it shows and the text "
    "on it. Then read it through several interpretive lenses, one numbered section each (for "
    "example: humour and irony, critical theory, semiotics, the internet culture it comes from, "
    "who it includes or excludes). End with a short note on what the meme is most likely used to say.")


@dataclass(frozen=True)
class AnnotatorSpec:
    """One configured annotator."""

    kind: str
    model: str
    prompt: str

    @property
    def source(self) -> str:
        """The model name as the archive's records write it (no ':' or '/')."""
        return self.model.replace(":", "_").replace("/", "_")

    @property
    def prompt_hash(self) -> str:
        return hashlib.sha256(self.prompt.encode()).hexdigest()[:16]


DEFAULT_ANNOTATORS = (
    AnnotatorSpec("simple-description", "llama3.2-vision", SIMPLE_PROMPT),
    AnnotatorSpec("detailed-analysis", "gemma3:27b", DETAILED_PROMPT),
)


class AnnotationError(Exception):
    """An annotation could not be made; the message is the reason kept in the archive."""


class ServerUnreachable(AnnotationError):
    """No configured Ollama host answers."""


class ModelNotPulled(AnnotationError):
    """The host has no such model."""

    def __init__(self, model: str):
        super().__init__(f"model {model} is not on the Ollama server; run `ollama pull {model}`")
        self.model = model


def image_for_prompt(img: Image.Image, side: int) -> bytes:
    """A JPEG no larger than `side` pixels each way: a 12-megapixel photo would cost the model
    thousands of prompt tokens and say nothing more about a meme."""
    small = img.copy()
    small.thumbnail((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


class OllamaAnnotator:
    """Asks vision models about images. Thread-safe: one instance serves many threads."""

    def __init__(self, hosts: Sequence[str], *, timeout: float = 300.0, retries: int = 3,
                 backoff: float = 1.0, keep_alive: str = "30m"):
        import httpx
        import ollama

        self.hosts = list(hosts)
        # a host that drops packets is found out in seconds, not after a whole request time-out
        limits = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self.clients = {host: ollama.Client(host=host, timeout=limits) for host in self.hosts}
        self.retries = retries
        self.backoff = backoff
        self.keep_alive = keep_alive
        self.dead: set[str] = set()
        self._turn = itertools.cycle(self.hosts)
        self._lock = threading.Lock()

    def _next_host(self) -> str:
        with self._lock:
            for _ in range(len(self.hosts)):
                host = next(self._turn)
                if host not in self.dead:
                    return host
        raise ServerUnreachable(f"no Ollama server answers at {', '.join(self.hosts)}")

    def _drop(self, host: str) -> None:
        with self._lock:
            self.dead.add(host)

    def check(self, models: Sequence[str]) -> list[str]:
        """Drop hosts that do not answer; return the models that no live host has pulled.
        Raises ServerUnreachable when no host answers."""
        import httpx

        missing = set(models)
        for host, client in self.clients.items():
            try:
                pulled = {m.model for m in client.list().models}
            except (ConnectionError, httpx.HTTPError, OSError):
                self._drop(host)
                continue
            missing -= {m for m in models if m in pulled or f"{m}:latest" in pulled}
        if len(self.dead) == len(self.hosts):
            raise ServerUnreachable(f"no Ollama server answers at {', '.join(self.hosts)}")
        return sorted(missing)

    def annotate(self, spec: AnnotatorSpec, image: bytes) -> str:
        """The model's text about the image. Raises AnnotationError (or a subclass)."""
        import httpx
        import ollama

        reason = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            host = self._next_host()
            try:
                reply = self.clients[host].chat(
                    model=spec.model, keep_alive=self.keep_alive,
                    messages=[{"role": "user", "content": spec.prompt, "images": [image]}])
            except ConnectionError:
                self._drop(host)
                reason = f"{host} refused the connection"
                continue
            except ollama.ResponseError as exc:
                if exc.status_code == 404 and "not found" in str(exc.error).lower():
                    raise ModelNotPulled(spec.model) from None
                if exc.status_code < 500:
                    raise AnnotationError(f"{host} answered {exc.status_code}: {exc.error}") from None
                reason = f"{host} answered {exc.status_code}: {str(exc.error)[:120]}"
                continue
            except httpx.TimeoutException:
                reason = f"{host} did not answer in time"
                continue
            except (httpx.HTTPError, ValueError) as exc:
                reason = f"{host}: {type(exc).__name__}: {str(exc)[:120]}"
                continue
            text = (reply.message.content or "").strip()
            if reply.done_reason == "length":
                reason = "the reply was cut off (length limit)"
            elif not text:
                reason = "the reply was empty"
            else:
                return text
        raise AnnotationError(f"gave up after {self.retries + 1} tries: {reason}")


@dataclass
class AnnotationResult:
    """What came of asking one annotator about one image (by content hash)."""

    content_hash: str
    spec: AnnotatorSpec
    text: str | None = None
    error: AnnotationError | None = None


class AnnotationRun:
    """Annotation requests for one run: at most `concurrency` in flight, a bounded queue behind
    them (submitting blocks when it is full, so a slow server slows the run instead of filling
    memory), results collected on the caller's thread. Once no server answers, or a model turns
    out not to be pulled, the remaining requests for it end at once as errors (left pending)."""

    def __init__(self, annotator: OllamaAnnotator, specs: Sequence[AnnotatorSpec], concurrency: int):
        from concurrent.futures import ThreadPoolExecutor

        self.annotator = annotator
        self.specs = list(specs)
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="annotate")
        self.slots = threading.BoundedSemaphore(concurrency * 4)
        self.futures: list = []
        self.unreachable: ServerUnreachable | None = None
        self.missing_models: dict[str, ModelNotPulled] = {}
        self.closed = False
        self._lock = threading.Lock()

    def start(self) -> list[str]:
        """Check the servers; returns notices (unreachable, models to pull)."""
        try:
            missing = self.annotator.check(sorted({s.model for s in self.specs}))
        except ServerUnreachable as exc:
            self.unreachable = exc
            return [str(exc)]
        for model in missing:
            self.missing_models[model] = ModelNotPulled(model)
        return [str(e) for e in self.missing_models.values()]

    def submit(self, content_hash: str, image: bytes, specs: Sequence[AnnotatorSpec] | None = None) -> None:
        """Queue every annotator (or `specs`) for an image, waiting for room. Safe from any thread."""
        for spec in specs or self.specs:
            while not self.slots.acquire(timeout=0.2):
                if self.closed:
                    return
            self._queue(content_hash, spec, image)

    def offer(self, content_hash: str, image: Callable[[], bytes]) -> list[AnnotatorSpec]:
        """Queue the annotators there is room for now, without waiting (the image is made only if
        one is queued); returns those left out, for the caller to `submit` later. Safe from any thread."""
        taken = [spec for spec in self.specs if not self.closed and self.slots.acquire(blocking=False)]
        if taken:
            try:
                data = image()
            except BaseException:
                for _ in taken:
                    self.slots.release()
                raise
            for spec in taken:
                self._queue(content_hash, spec, data)
        return [spec for spec in self.specs if spec not in taken]

    def _queue(self, content_hash: str, spec: AnnotatorSpec, image: bytes) -> None:
        """Start one request, its slot already held."""
        if self.closed:
            self.slots.release()
            return
        future = self.pool.submit(self._one, content_hash, spec, image)
        future.add_done_callback(lambda _: self.slots.release())
        with self._lock:
            self.futures.append(future)

    def _blocked(self, spec: AnnotatorSpec) -> AnnotationError | None:
        return self.unreachable or self.missing_models.get(spec.model)

    def _one(self, content_hash: str, spec: AnnotatorSpec, image: bytes) -> AnnotationResult:
        if (blocked := self._blocked(spec)) is not None:
            return AnnotationResult(content_hash, spec, error=blocked)
        try:
            return AnnotationResult(content_hash, spec, text=self.annotator.annotate(spec, image))
        except ServerUnreachable as exc:
            self.unreachable = exc
            return AnnotationResult(content_hash, spec, error=exc)
        except ModelNotPulled as exc:
            self.missing_models[spec.model] = exc
            return AnnotationResult(content_hash, spec, error=exc)
        except AnnotationError as exc:
            return AnnotationResult(content_hash, spec, error=exc)

    def finished(self, wait: bool = False) -> list[AnnotationResult]:
        """Results ready now (or, with `wait`, all of them), each once."""
        with self._lock:
            futures = list(self.futures)
        if wait:
            for future in futures:
                future.exception()  # blocks until done; errors are inside the results
        done = [f for f in futures if f.done()]
        finished = set(done)
        with self._lock:
            self.futures = [f for f in self.futures if f not in finished]
        return [f.result() for f in done]

    def close(self) -> None:
        """Stop: requests not started are dropped (their memes stay pending)."""
        self.closed = True
        self.pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class Notice:
    """Something the user should hear about a run (not about one file)."""

    message: str


@dataclass
class Annotated:
    """One annotation request settled (written, failed or left pending)."""

    meme_id: str
    kind: str
    source: str
    written: bool


class AnnotationRecorder:
    """Writes annotation results into the catalog and counts them; says each problem once."""

    def __init__(self, catalog):
        self.catalog = catalog
        self.done = self.pending = self.failed = 0
        self._said: set[str] = set()

    def already_said(self, messages: list[str]) -> list[str]:
        """Note messages told elsewhere (the server check), so results do not repeat them."""
        self._said.update(messages)
        return messages

    def record(self, result: AnnotationResult, meme_id: str) -> list[str]:
        """Store one result; returns notices for the user (each said once per run)."""
        spec = result.spec
        if result.error is None:
            annotation = Annotation(kind=spec.kind, source=spec.source, text=result.text or "")
            self.done += self.catalog.jobs.put_annotation(meme_id, annotation, spec.model, spec.prompt_hash)
            return []
        blocked = isinstance(result.error, (ServerUnreachable, ModelNotPulled))
        status = "pending" if blocked else "failed"
        self.catalog.jobs.mark_annotation(meme_id, spec.kind, spec.source, spec.model, spec.prompt_hash,
                                          status, str(result.error))
        if blocked:
            self.pending += 1
            message = str(result.error)
        else:
            self.failed += 1
            message = f"annotation {spec.kind} by {spec.model} failed for meme {meme_id}: {result.error}"
        if message in self._said:
            return []
        self._said.add(message)
        return [message]

    def summary(self) -> str | None:
        if not (self.done or self.pending or self.failed):
            return None
        text = f"annotations: {self.done} written, {self.failed} failed, {self.pending} pending"
        if self.pending:
            text += " (`memes annotate --pending` fills them in when the server is back)"
        return text


def annotation_todo(catalog, specs: Sequence[AnnotatorSpec], mode: str) -> dict[str, list[AnnotatorSpec]]:
    """The annotators each meme still wants. mode: `missing` (no current annotation: never made,
    pending, failed or stale), `pending` (left pending when a server was down), `redo` (all)."""
    todo: dict[str, list[AnnotatorSpec]] = {}
    for spec in specs:
        for meme_id in catalog.jobs.todo(spec.kind, spec.source, spec.prompt_hash, mode):
            todo.setdefault(meme_id, []).append(spec)
    return todo


def annotate_memes(catalog, run: AnnotationRun, todo: dict[str, list[AnnotatorSpec]], max_pixels: int,
                   image_side: int, after: Callable[[list[str]], None]) -> Iterator[Annotated | Notice]:
    """Run annotators over memes already in an archive (`todo`, see `annotation_todo`), writing
    what they answer. Then `run` is closed and `after` is told the memes whose records changed,
    however the run ends."""
    recorder = AnnotationRecorder(catalog)
    yield from (Notice(m) for m in recorder.already_said(run.start()))
    touched: list[str] = []

    def recorded(results: list[AnnotationResult]) -> Iterator[Annotated | Notice]:
        for result in results:
            meme_id = catalog.id_for_content(result.content_hash)
            yield from (Notice(m) for m in recorder.record(result, meme_id))
            touched.append(meme_id)
            yield Annotated(meme_id, result.spec.kind, result.spec.source, result.error is None)

    try:
        for meme_id, wanted in todo.items():
            meme = catalog.require(meme_id)
            image = image_of(meme, max_pixels)
            if image is None:
                yield Notice(f"meme {meme_id}: none of its files still holds its image; not annotated")
                continue
            run.submit(meme.content_hash, image_for_prompt(image, image_side), wanted)
            yield from recorded(run.finished())
        yield from recorded(run.finished(wait=True))
    finally:
        run.close()
        after(touched)
    if summary := recorder.summary():
        yield Notice(summary)
