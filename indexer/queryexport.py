"""Making the query encoders' exported copies (`indexer.queryencoders`): each model traced to
ONNX once, when it is loaded anyway (at index time, or by `memes reindex`), and checked against
PyTorch before it is kept: the same tokens, the vectors at cosine >= MIN_AGREEMENT.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from archive.errors import MemesError
from archive.model import IMAGE, TEXT_SPACES

from .queryencoders import (CHECK_TEXTS, FORMAT, MIN_AGREEMENT, WEIGHTS, OnnxImageEncoder, OnnxTextEncoder,
                            Preparation, _key, _tokenizer, exported, folder_for)


def export_missing(root: Path, spaces: dict[str, list[str]], text, image) -> list[str]:
    """Export the query-side models that the vectors an archive holds (`spaces`: each space's
    models) need and that `root` lacks copies of; returns what happened, in words. An exporter's
    failure leaves searches on PyTorch."""
    wanted = [(text, "texts", export_text_model)] if any(spaces[n] for n in TEXT_SPACES) else []
    if spaces[IMAGE] == [image.model_id]:
        wanted += [(image, "texts", export_clip_text), (image, "images", export_clip_images)]
    said = []
    for encoder, part, export in wanted:
        if exported(root, encoder, part) is not None:
            continue
        try:
            said.append(export(encoder, root))
        except MemesError as exc:
            said.append(f"{encoder.model_id}: {part} not exported for fast searches: {exc}")
        except Exception as exc:  # noqa: BLE001 - an exporter's failure leaves searches on PyTorch
            said.append(f"{encoder.model_id}: {part} not exported for fast searches ({type(exc).__name__}: "
                        f"{str(exc).strip()[:160]}); searches use PyTorch")
    return said



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

    def write(folder: Path) -> dict:
        if copy_vocabulary is not None:
            shutil.copyfile(copy_vocabulary, folder / spec["file"])
        else:
            tokenize.tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
        _onnx(_normalized(model, "encode_text"), (tokenize(["a b"]),), folder / "model.onnx", ["tokens"],
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

    pictures = _check_pictures()

    def write(folder: Path) -> dict:
        _onnx(_normalized(model, "encode_image"), (preprocess(pictures[0]).unsqueeze(0),), folder / "model.onnx", ["pixels"],
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


def _normalized(model, tower: str):
    """One tower of an open_clip model (`encode_text` or `encode_image`) as a module of its own
    whose output is normalised, as the vectors the index holds are."""
    import torch

    class Tower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, inputs):
            return torch.nn.functional.normalize(getattr(self.inner, tower)(inputs).float(), dim=-1)

    return Tower().eval()


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
