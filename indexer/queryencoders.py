"""Query encoders that need no torch: the text model and the image model's text tower, exported
once to ONNX from the real models and run with ONNX Runtime and the `tokenizers` library.

A search embeds a few words. Loading torch and sentence-transformers for that takes most of
ten seconds on a small machine; ONNX Runtime takes a fraction of one. The exported copies live
in the archive (`models/`), each beside the model id it came from and checked against the
PyTorch model when made (`export_text_model`, `export_clip_text`): the tokens must be the
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
import shutil
import string
import sys
import tempfile
import threading
from contextlib import contextmanager
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

    def load(self) -> None:
        """Load what a text query needs (raises ModelUnavailable where that is PyTorch's and it cannot)."""
        (self.texts or self.model).load()

    def preload(self) -> None:
        """The text tower, which a text search needs (a search by image loads the image tower)."""
        if self.texts is not None:
            self.texts.preload()

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return (self.texts or self.model).encode_texts(texts)

    def encode_images(self, images) -> np.ndarray:
        return (self.images or self.model).encode_images(images)


# --- making the exported copies (needs torch and the loaded model) ---------------------------

def export_text_model(encoder, root: Path) -> str:
    """Export a `SentenceEncoder`'s model (transformer, mean pooling, normalisation) and its
    tokenizer; returns what happened, in words."""
    import torch

    model = encoder.model
    modules = list(model)
    names = [type(m).__name__ for m in modules]
    if names[:2] != ["Transformer", "Pooling"] or not set(names[2:]) <= {"Normalize"}:
        return f"{encoder.model_id}: modules {names} are not transformer + pooling; searches use PyTorch"
    transformer, pooling = modules[0], modules[1]
    pooling_mode = pooling.get_config_dict().get("pooling_mode")
    if pooling_mode != "mean":
        return f"{encoder.model_id}: {pooling_mode} pooling; searches use PyTorch"
    hub = model.tokenizer
    if not hasattr(hub, "backend_tokenizer"):
        return f"{encoder.model_id}: no fast tokenizer; searches use PyTorch"

    class Pooled(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(out.dtype)
            return torch.nn.functional.normalize((out * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=-1)

    spec = {"kind": "hub", "file": "tokenizer.json", "max_length": int(model.max_seq_length),
            "pad_id": int(hub.pad_token_id or 0), "fixed": False, "clean": "strip"}

    def write(folder: Path) -> dict:
        hub.backend_tokenizer.save(str(folder / "tokenizer.json"))
        sample = hub(["a b"], return_tensors="pt")
        _onnx(Pooled(transformer.auto_model).eval(), (sample["input_ids"], sample["attention_mask"]),
              folder / "model.onnx", ["input_ids", "attention_mask"],
              {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"}})
        return {"tokenizer": spec}

    def reference(texts: list[str]) -> np.ndarray:
        return model.encode(texts, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)

    def reference_tokens(texts: list[str]) -> np.ndarray:
        return model.tokenize(texts)["input_ids"].numpy()

    return _export(root, encoder, "texts", write, _texts_check(reference, reference_tokens, "input_ids"))


def export_clip_text(encoder, root: Path) -> str:
    """Export the text tower of a `ClipEncoder`'s open_clip model and its tokenizer; returns
    what happened, in words."""
    import torch
    from open_clip import tokenizer as clip_tokenizer

    model, _, tokenize = encoder.parts()
    clean = next((name for name, fn in (("lower", clip_tokenizer._clean_lower),
                                         ("whitespace", clip_tokenizer._clean_whitespace),
                                         ("canonicalize", clip_tokenizer._clean_canonicalize))
                  if getattr(tokenize, "clean_fn", None) is fn), None)
    context = int(getattr(tokenize, "context_length", 0) or 0)
    if clean is None or not context:
        return f"{encoder.model_id}: its tokenizer is not one this tool can run without PyTorch; searches use PyTorch"
    if type(tokenize) is clip_tokenizer.SimpleTokenizer:
        if tokenize.reduction_fn is not None or len(tokenize.encoder) != 49408:
            return f"{encoder.model_id}: a tokenizer with extra tokens or masking; searches use PyTorch"
        spec = {"kind": "clip-bpe", "file": "bpe_simple_vocab_16e6.txt.gz", "context_length": context, "clean": clean}
        copy_vocabulary = Path(clip_tokenizer.default_bpe())
    elif type(tokenize) is clip_tokenizer.HFTokenizer and not tokenize.tokenizer_mode \
            and getattr(tokenize.tokenizer, "is_fast", False):
        hub = tokenize.tokenizer
        spec = {"kind": "hub", "file": "tokenizer.json", "max_length": context, "pad_id": int(hub.pad_token_id or 0),
                "fixed": True, "clean": clean, "strip_id": hub.sep_token_id if tokenize.strip_sep_token else None}
        copy_vocabulary = None
    else:
        return f"{encoder.model_id}: its tokenizer is not one this tool can run without PyTorch; searches use PyTorch"

    class TextTower(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, tokens):
            return torch.nn.functional.normalize(self.inner.encode_text(tokens).float(), dim=-1)

    def write(folder: Path) -> dict:
        if copy_vocabulary is not None:
            shutil.copyfile(copy_vocabulary, folder / spec["file"])
        else:
            tokenize.tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
        _onnx(TextTower(model).eval(), (tokenize(["a b"]),), folder / "model.onnx", ["tokens"],
              {"tokens": {0: "batch"}})
        return {"tokenizer": spec}

    def reference(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            return torch.nn.functional.normalize(model.encode_text(tokenize(texts)).float(), dim=-1).numpy()

    return _export(root, encoder, "texts", write,
                   _texts_check(reference, lambda texts: tokenize(texts).numpy(), "tokens"))


def export_clip_images(encoder, root: Path) -> str:
    """Export the image tower of a `ClipEncoder`'s open_clip model, with its preparation of a
    picture (`Preparation`); returns what happened, in words."""
    import torch

    model, preprocess, _ = encoder.parts()
    steps = preparation_of(preprocess)
    if steps is None:
        return f"{encoder.model_id}: its image transforms are not ones this tool runs without PyTorch; " \
               "searches by image use PyTorch"

    class ImageTower(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, pixels):
            return torch.nn.functional.normalize(self.inner.encode_image(pixels).float(), dim=-1)

    pictures = _check_pictures()

    def write(folder: Path) -> dict:
        _onnx(ImageTower(model).eval(), (preprocess(pictures[0]).unsqueeze(0),), folder / "model.onnx", ["pixels"],
              {"pixels": {0: "batch"}})
        return {"preprocess": steps}

    def check(folder: Path, meta: dict):
        prepare = Preparation(steps)
        ours = np.stack([prepare(p) for p in pictures])
        theirs = torch.stack([preprocess(p) for p in pictures])
        if ours.shape != tuple(theirs.shape) or float(np.max(np.abs(ours - theirs.numpy()))) > 1e-4:
            return "pictures prepared without PyTorch differ from the model's own preparation"
        with torch.inference_mode():
            expected = torch.nn.functional.normalize(model.encode_image(theirs).float(), dim=-1).numpy()
        meta["dim"] = int(expected.shape[1])
        return float(np.min(np.sum(OnnxImageEncoder(folder, meta).encode_images(pictures) * expected, axis=1)))

    return _export(root, encoder, "images", write, check)


def preparation_of(preprocess) -> list[dict] | None:
    """The steps of an open_clip image transform as `Preparation` runs them; None where it has a
    step this module does not know (the PyTorch model then prepares its own pictures)."""
    steps = []
    for t in getattr(preprocess, "transforms", [None]):
        name = type(t).__name__
        if name == "Resize" and str(t.interpolation).lower().endswith("bicubic") and t.max_size is None:
            size = t.size
            steps.append({"resize": size if isinstance(size, int) else list(size) if len(size) == 2 else size[0]})
        elif name == "CenterCrop":
            steps.append({"center_crop": list(t.size)})
        elif name in ("MaybeConvertMode", "_convert_to_rgb") or getattr(t, "__name__", "") == "_convert_to_rgb":
            steps.append({"mode": getattr(t, "mode", "RGB") or "RGB"})
        elif name in ("MaybeToTensor", "ToTensor"):
            steps.append({"to_tensor": True})
        elif name == "Normalize":
            steps.append({"mean": [float(x) for x in t.mean], "std": [float(x) for x in t.std]})
        else:
            return None
    return steps


def _onnx(module, sample: tuple, target: Path, inputs: list[str], axes: dict) -> None:
    """Trace `module` to ONNX. Gradients on: in inference mode PyTorch's attention takes a fused
    path (`_native_multi_head_attention`) that has no ONNX form. The exporter's own printing (the
    whole graph, when it fails) goes to a file, not to the user's terminal."""
    import warnings

    import torch

    import onnx

    traced = target.with_name("traced.onnx")
    with warnings.catch_warnings(), torch.inference_mode(False), torch.enable_grad(), _silenced():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, sample, str(traced), input_names=inputs, output_names=["embedding"],
                          dynamic_axes={**axes, "embedding": {0: "batch"}}, opset_version=17, dynamo=False)
    # the weights in a file of their own, which ONNX Runtime maps into memory instead of copying
    # out of the model (a 440 MB text tower opens in 0.3 s, not 0.6-0.9 s)
    onnx.save_model(onnx.load(str(traced)), str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=WEIGHTS, size_threshold=1024)
    traced.unlink()
    (target.parent / WEIGHTS).chmod(0o644)


@contextmanager
def _silenced():
    """Standard output and error, of Python and of native code, into a scratch file meanwhile."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 1)
        os.dup2(scratch.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _export(root: Path, encoder, part: str, write, check) -> str:
    """Write into a fresh folder, check against PyTorch (`check(folder)`: the lowest cosine, or
    why the copy cannot stand in), then move it in place, stamped with the model's files."""
    model_id = encoder.model_id
    target = folder_for(root, _key(model_id, part))
    target.parent.mkdir(parents=True, exist_ok=True)
    for left in target.parent.glob(".export-*"):  # of an export that was killed (exports run under the writer lock)
        shutil.rmtree(left, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    work.chmod(0o755)
    what = "searches" if part == "texts" else "searches by image"
    try:
        meta = {"format": FORMAT, "model_id": model_id, "part": part, "stamp": encoder.stamp(), **write(work)}
        agreement = check(work, meta)
        if isinstance(agreement, str):
            return f"{model_id}: {agreement}; {what} use PyTorch"
        if not agreement >= MIN_AGREEMENT:
            return f"{model_id}: the exported {part} model agrees only to cosine {agreement:.6f}; {what} use PyTorch"
        meta["agreement"] = round(agreement, 7)
        meta["weights_bytes"] = (work / WEIGHTS).stat().st_size
        (work / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
        return f"{model_id}: {part} exported for fast {what} (cosine {agreement:.6f} to PyTorch)"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _texts_check(reference, reference_tokens, token_input: str):
    """The check of an exported text model: the same tokens, and the vectors of CHECK_TEXTS."""

    def check(folder: Path, meta: dict):
        texts = list(CHECK_TEXTS)
        expected = np.asarray(reference(texts), dtype=np.float32)
        tokens = _tokenizer(folder, meta["tokenizer"])(texts)[token_input]
        wanted = np.asarray(reference_tokens(texts))
        if tokens.shape != wanted.shape or not np.array_equal(tokens, wanted):
            return "the tokens made without PyTorch differ from the model's own"
        meta["dim"] = int(expected.shape[1])
        return float(np.min(np.sum(OnnxTextEncoder(folder, meta).encode_texts(texts) * expected, axis=1)))

    return check


def _check_pictures():
    """Pictures of several sizes and shapes (wide, tall, small, flat, noisy) to check an image
    tower and its preparation on."""
    from PIL import Image

    rnd = np.random.default_rng(3)
    noisy = Image.fromarray(rnd.integers(0, 256, (457, 123, 3), dtype=np.uint8))
    ramp = Image.fromarray(np.dstack([np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (300, 1))] * 3))
    return [noisy, ramp, Image.new("RGB", (64, 64), (200, 30, 90)), Image.new("RGB", (1000, 999), "white"),
            Image.fromarray(rnd.integers(0, 256, (50, 700, 3), dtype=np.uint8))]
