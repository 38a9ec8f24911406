"""Query encoders that need no torch: the text model and the image model's text tower, exported
once to ONNX from the real models and run with ONNX Runtime and the `tokenizers` library.

A search embeds a few words. Loading torch and sentence-transformers for that takes most of
ten seconds on a small machine; ONNX Runtime takes a fraction of one. The exported copies live
in the archive (`models/`), each beside the model id it came from and checked against the
PyTorch model when made (`indexer.queryexport`): the tokens must be the
same and the vectors at cosine >= MIN_AGREEMENT, or nothing is kept and searches go on through
PyTorch. Indexing always uses the PyTorch models: nothing stored depends on this module.

Importing this module imports numpy only; ONNX Runtime and the tokenizers load on first use.
"""
from __future__ import annotations

import gzip
import hashlib
import html
import json
import os
import string
import threading
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

MODELS_DIR = "models"
WEIGHTS = "model.weights"  # the exported model's weights, beside model.onnx
FORMAT = 3
MIN_AGREEMENT = 0.9999  # cosine between the ONNX and the PyTorch vector of every check text
CHECK_TEXTS = (
    "deploy on friday", "one does not simply walk into mordor", "LLaMA 2 70B vs Mistral: MMLU (%)",
    "  when the code works on the first try  ", "¿Qué? naïve café — 日本語のテキスト 🐸", "", "a",
    "ME: *exists*\nMY CAT: you're gonna feed me again, right??", "&amp; html &lt;escaped&gt; text",
    " ".join(["a very long caption that goes on"] * 60),
)


def folder_for(root: Path, model_id: str) -> Path:
    """Where the exported copy of `model_id` lives under an archive's models folder."""
    readable = "".join(c if c.isalnum() or c in "-_." else "-" for c in model_id)[:60]
    return Path(root) / MODELS_DIR / f"{readable}-{hashlib.sha1(model_id.encode()).hexdigest()[:10]}"


# --- cleaning and tokenising, as open_clip does it, without torch ---------------------------

def _basic_clean(text: str) -> str:
    import ftfy

    return html.unescape(html.unescape(ftfy.fix_text(text))).strip()


def _whitespace(text: str) -> str:
    return " ".join(text.split()).strip()


_PUNCTUATION = str.maketrans("", "", string.punctuation)
CLEANERS = {
    "lower": lambda t: _whitespace(_basic_clean(t)).lower(),
    "whitespace": lambda t: _whitespace(_basic_clean(t)),
    "canonicalize": lambda t: " ".join(_basic_clean(t).replace("_", " ").translate(_PUNCTUATION).lower().split()),
    "strip": lambda t: t.strip(),  # sentence-transformers strips each text before tokenising
}


@lru_cache()
def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class ClipBpe:
    """open_clip's SimpleTokenizer (OpenAI CLIP's byte-level BPE), read from the same vocabulary."""

    def __init__(self, vocabulary: Path, context_length: int, clean: str):
        import regex

        merges = gzip.open(vocabulary).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in merges]
        vocab = list(_bytes_to_unicode().values())
        vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
        specials = ["<start_of_text>", "<end_of_text>"]
        vocab.extend(specials)
        self.encoder = {token: n for n, token in enumerate(vocab)}
        self.ranks = {m: n for n, m in enumerate(merges)}
        self.cache = {t: t for t in specials}
        self.pattern = regex.compile("|".join(specials) + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                                     regex.IGNORECASE)
        self.sot, self.eot = self.encoder[specials[0]], self.encoder[specials[1]]
        self.context_length = context_length
        self.clean = CLEANERS[clean]

    def _bpe(self, token: str) -> str:
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            first, second = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if (first, second) not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        self.cache[token] = " ".join(word)
        return self.cache[token]

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        table = _bytes_to_unicode()
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            tokens = [self.sot]
            for piece in self.pattern.findall(self.clean(text)):
                piece = "".join(table[b] for b in piece.encode("utf-8"))
                tokens.extend(self.encoder[t] for t in self._bpe(piece).split(" "))
            tokens.append(self.eot)
            if len(tokens) > self.context_length:
                tokens = tokens[:self.context_length]
                tokens[-1] = self.eot
            out[row, :len(tokens)] = tokens
        return {"tokens": out}


class HubTokens:
    """A Hugging Face fast tokenizer saved as tokenizer.json: padded to the longest text with an
    attention mask (sentence-transformers), or to `context_length` as open_clip's HFTokenizer."""

    def __init__(self, file: Path, max_length: int, pad_id: int, fixed: bool, clean: str = "strip",
                 strip_id: int | None = None):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(file))
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.enable_padding(pad_id=pad_id, length=max_length if fixed else None)
        self.fixed = fixed
        self.clean = CLEANERS[clean]
        self.strip_id = strip_id

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        encoded = self.tokenizer.encode_batch([self.clean(t) for t in texts])
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        if self.fixed:
            if self.strip_id is not None:
                ids[ids == self.strip_id] = 0
            return {"tokens": ids}
        return {"input_ids": ids, "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64)}


def _tokenizer(folder: Path, spec: dict):
    if spec["kind"] == "clip-bpe":
        return ClipBpe(folder / spec["file"], spec["context_length"], spec["clean"])
    return HubTokens(folder / spec["file"], spec["max_length"], spec["pad_id"], spec["fixed"], spec.get("clean", "strip"),
                     spec.get("strip_id"))


# --- the encoders a search uses ---------------------------------------------------------------

class _Exported:
    """An exported model: its ONNX Runtime session, loaded on first use (or in the background)."""

    def __init__(self, folder: Path, meta: dict, fallback=None):
        self.folder = folder
        self.model_id = meta["model_id"]
        self.meta = meta
        self.fallback = fallback  # the PyTorch model, used where the copy does not load
        self._dim = int(meta["dim"])
        self._session = None
        self._failed = False
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self._dim

    def _loaded(self):
        """The session, or None where the copy does not load (damaged files): the fallback answers,
        and the next `memes index` exports the copy anew."""
        with self._lock:
            if self._session is None and not self._failed:
                try:
                    import onnxruntime

                    options = onnxruntime.SessionOptions()
                    options.intra_op_num_threads = min(4, os.cpu_count() or 1)
                    # no busy wait after a run: a query runs the text model and then the image
                    # model's text tower, whose threads would otherwise share the cores with the
                    # first one's, still spinning (98.8 -> 70.1 ms for SigLIP's here; same vectors)
                    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                    options.log_severity_level = 3
                    self._prepare()
                    self._session = onnxruntime.InferenceSession(str(self.folder / "model.onnx"), options,
                                                                 providers=["CPUExecutionProvider"])
                except Exception:  # noqa: BLE001 - any failure to load means: use the model itself
                    self._failed = True
                    if self.fallback is None:
                        raise
            return self._session

    def _prepare(self) -> None:
        """Whatever else a first use needs (a tokenizer)."""

    def load(self) -> None:
        if self._loaded() is None:
            self.fallback.load()

    def preload(self) -> None:
        """Start loading in the background (ONNX Runtime loads without holding the GIL): two
        models load side by side, and beside whatever the search does meanwhile."""
        if self._session is None:
            threading.Thread(target=self._quietly_loaded, daemon=True).start()

    def _quietly_loaded(self) -> None:
        try:
            self._loaded()
        except Exception:  # noqa: BLE001 - the search's own call meets the failure and reports it
            pass

    def _vectors(self, inputs: dict) -> np.ndarray:
        from .encoders import normalize

        return normalize(self._loaded().run(None, inputs)[0])


class OnnxTextEncoder(_Exported):
    """Texts to unit vectors through an exported model (the same model id as the PyTorch one)."""

    _tokenize = None

    def _prepare(self) -> None:
        self._tokenize = _tokenizer(self.folder, self.meta["tokenizer"])

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._loaded() is None:
            return self.fallback.encode_texts(texts)
        return self._vectors(self._tokenize(list(texts)))


class OnnxImageEncoder(_Exported):
    """Pictures to unit vectors through an exported image tower, prepared as open_clip's
    transforms prepare them (`Preparation`), without torch."""

    def encode_images(self, images) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._loaded() is None:
            return self.fallback.encode_images(images)
        prepare = Preparation(self.meta["preprocess"])
        return self._vectors({"pixels": np.stack([prepare(image) for image in images])})


class Preparation:
    """open_clip's image transforms (Resize, CenterCrop, RGB, ToTensor, Normalize) in PIL and
    numpy: `steps` as `preparation_of` reads them from the torchvision Compose."""

    def __init__(self, steps: list[dict]):
        self.steps = steps

    def __call__(self, image) -> np.ndarray:
        from PIL import Image

        out = None
        for step in self.steps:
            if "resize" in step:
                size = step["resize"]
                if isinstance(size, int):  # the shorter side to `size`, as torchvision computes it
                    w, h = image.size
                    short, long = (w, h) if w <= h else (h, w)
                    new_short, new_long = size, int(size * long / short)
                    target = (new_short, new_long) if w <= h else (new_long, new_short)
                else:
                    target = (size[1], size[0])
                if target != image.size:
                    image = image.resize(target, Image.Resampling.BICUBIC)
            elif "center_crop" in step:
                th, tw = step["center_crop"]
                w, h = image.size
                top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
                image = image.crop((left, top, left + tw, top + th))
            elif "mode" in step:
                if image.mode != step["mode"]:
                    image = image.convert(step["mode"])
            elif "to_tensor" in step:
                out = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / np.float32(255)
            elif "mean" in step:
                mean = np.asarray(step["mean"], dtype=np.float32)[:, None, None]
                std = np.asarray(step["std"], dtype=np.float32)[:, None, None]
                out = (out - mean) / std
        return np.ascontiguousarray(out, dtype=np.float32)


def exported(root: Path, encoder, part: str = "texts"):
    """The exported copy of `encoder`'s model (its `part`: texts or images) under an archive's
    folder, where one was made and checked from the same model files: an OnnxTextEncoder or
    OnnxImageEncoder that falls back to `encoder` should the copy not load, or None."""
    folder = folder_for(root, _key(encoder.model_id, part))
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        whole = ((folder / "model.onnx").is_file() and (folder / WEIGHTS).stat().st_size == meta["weights_bytes"]
                 and isinstance(meta["dim"], int) and ("preprocess" if part == "images" else "tokenizer") in meta)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if (not whole or meta.get("format") != FORMAT or meta.get("model_id") != encoder.model_id
            or meta.get("part") != part or meta.get("stamp") != encoder.stamp()):
        return None
    return (OnnxImageEncoder if part == "images" else OnnxTextEncoder)(folder, meta, fallback=encoder)


def _key(model_id: str, part: str) -> str:
    return model_id if part == "texts" else f"{model_id} {part}"


class QueryImageModel:
    """The image model for searches: texts through its exported text tower, pictures (a search by
    image) through its exported image tower where there is one, else the PyTorch model (loaded
    only then)."""

    def __init__(self, texts: OnnxTextEncoder | None, images: OnnxImageEncoder | None, model):
        self.texts = texts
        self.images = images
        self.model = model
        self.model_id = model.model_id

    @property
    def dim(self) -> int:
        return (self.texts or self.images or self.model).dim

    def load(self, part: str = "texts") -> None:
        """Load what a query by texts or by pictures (`part`) needs (raises ModelUnavailable where
        that is PyTorch's and it cannot)."""
        ((self.texts if part == "texts" else self.images) or self.model).load()

    def preload(self, part: str = "texts") -> None:
        """Start loading the tower a search by texts or by pictures needs, in the background."""
        tower = self.texts if part == "texts" else self.images
        if tower is not None:
            tower.preload()

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return (self.texts or self.model).encode_texts(texts)

    def encode_images(self, images) -> np.ndarray:
        return (self.images or self.model).encode_images(images)


def query_side(root: Path, text, image) -> tuple:
    """The encoders a search uses: the exported copies of `text` (a SentenceEncoder) and of
    `image`'s towers (a ClipEncoder) where the archive under `root` has them, else the models."""
    fast_text = exported(root, text)
    parts = [exported(root, image, part) for part in ("texts", "images")]
    return fast_text or text, QueryImageModel(*parts, image) if any(parts) else image


def preload(text, image, part: str) -> None:
    """Start loading, in the background, what a search by texts or by pictures (`part`) needs of
    the query encoders: a search by picture needs no text model (nor loads one beside its OCR)."""
    if part == "texts" and isinstance(text, OnnxTextEncoder):
        text.preload()
    if isinstance(image, QueryImageModel):
        image.preload(part)
