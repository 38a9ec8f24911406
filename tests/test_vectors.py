import numpy as np
import pytest

from archive.errors import ModelMismatch
from archive.vectors import VectorStore


def _unit(rows):
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_upsert_query_and_replace(tmp_path):
    store = VectorStore(tmp_path / "vectors")
    space = store.create_space("ocr_text", "model-a", 3)
    space.upsert(["m1", "m2"], _unit([[1, 0, 0], [0, 1, 0]]), [{"meme_id": "m1"}, {"meme_id": "m2"}])
    space.upsert(["m1"], _unit([[0, 0, 1]]), [{"meme_id": "m1"}])  # upsert replaces, add would not
    hits = space.query(_unit([[0, 0, 1]])[0], 5)
    assert [h.id for h in hits] == ["m1", "m2"]
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert space.count() == 2


def test_a_space_refuses_another_model_and_wrong_dimensions(tmp_path):
    store = VectorStore(tmp_path / "vectors")
    space = store.create_space("image", "clip-a", 3)
    with pytest.raises(ModelMismatch, match="memes reindex"):
        VectorStore(tmp_path / "vectors").create_space("image", "clip-b", 3)
    with pytest.raises(ModelMismatch, match="4-d vectors"):
        space.upsert(["x"], _unit([[1, 2, 3, 4]]))
    assert store.describe()["image"] == {"model": "clip-a", "dim": 3, "vectors": 0}


def test_rebuild_swaps_in_only_when_finished(tmp_path):
    store = VectorStore(tmp_path / "vectors")
    old = store.create_space("image", "clip-a", 2)
    old.upsert(["m1"], _unit([[1, 0]]), [{"meme_id": "m1"}])
    new = store.begin_rebuild("image", "clip-b", 3)
    new.upsert(["m1"], _unit([[0, 1, 0]]), [{"meme_id": "m1"}])
    assert store.space("image").model == "clip-a"  # still serving the old vectors
    assert "image.next" not in store.describe()
    store.finish_rebuild("image")
    rebuilt = VectorStore(tmp_path / "vectors").space("image", "clip-b")
    assert rebuilt.dim == 3 and rebuilt.count() == 1


def test_delete_by_meme_and_empty_query(tmp_path):
    store = VectorStore(tmp_path / "vectors")
    space = store.create_space("annotation_text", "m", 2)
    assert space.query(_unit([[1, 0]])[0], 3) == []
    space.upsert(["m1/a/0", "m1/a/1", "m2/a/0"], _unit([[1, 0], [1, 1], [0, 1]]),
                 [{"meme_id": "m1"}, {"meme_id": "m1"}, {"meme_id": "m2"}])
    space.delete_memes(["m1"])
    assert [h.id for h in space.query(_unit([[1, 0]])[0], 3)] == ["m2/a/0"]
