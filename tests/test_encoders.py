import numpy as np
import pytest
from PIL import Image

from archive.errors import ModelUnavailable
from indexer.encoders import ClipEncoder, SentenceEncoder, normalize


def test_normalize_makes_unit_rows_and_leaves_zero_rows():
    v = normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert np.allclose(v, [[0.6, 0.8], [0.0, 0.0]]) and v.dtype == np.float32


def test_bundled_minilm_loads_offline_and_means_something():
    encoder = SentenceEncoder()
    assert encoder.model_id == "sentence-transformers:all-MiniLM-L6-v2" and encoder.dim == 384
    cat, kitten, chart = encoder.encode_texts(["a cat sitting on a sofa", "a kitten on a couch",
                                               "line chart of model sizes"])
    assert np.isclose(np.linalg.norm(cat), 1.0, atol=1e-5)
    assert cat @ kitten > cat @ chart + 0.2


def test_tiny_clip_loads_through_the_real_path(tiny_clip_dir):
    encoder = ClipEncoder(f"local-dir:{tiny_clip_dir}")
    images = encoder.encode_images([Image.new("RGB", (300, 200), "red"), Image.new("RGB", (50, 80), "blue")])
    texts = encoder.encode_texts(["a red square"])
    assert images.shape == (2, 32) and texts.shape == (1, 32) and encoder.dim == 32
    assert np.allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    again = ClipEncoder(f"local-dir:{tiny_clip_dir}").encode_images([Image.new("RGB", (300, 200), "red")])
    assert np.allclose(again[0], images[0], atol=1e-5)


def test_checkpoint_file_as_pretrained(tiny_clip_dir, tmp_path):
    import open_clip

    arch = "tiny-test-arch"
    (tmp_path / f"{arch}.json").write_text((tiny_clip_dir / "open_clip_config.json").read_text()
                                           .split('"model_cfg": ', 1)[1].rsplit(', "preprocess_cfg"', 1)[0])
    open_clip.add_model_config(tmp_path / f"{arch}.json")
    encoder = ClipEncoder(arch, str(tiny_clip_dir / "open_clip_pytorch_model.bin"))
    reference = ClipEncoder(f"local-dir:{tiny_clip_dir}")
    assert encoder.model_id == f"open_clip:{arch}:open_clip_pytorch_model.bin"
    image = Image.new("RGB", (64, 64), "green")
    assert np.allclose(encoder.encode_images([image]), reference.encode_images([image]), atol=1e-4)


def test_unknown_models_are_reported_not_raised_raw():
    with pytest.raises(ModelUnavailable, match="image model no-such-arch"):
        ClipEncoder("no-such-arch", "nothing").load()
    with pytest.raises(ModelUnavailable, match="text model"):
        _ = SentenceEncoder("/no/such/model/folder").dim
