import numpy as np
import pytest

from archive.catalog import Catalog
from archive.errors import ModelMismatch
from archive.model import Meme
from archive.vectors import CatalogVectors, VectorStore


@pytest.fixture
def store(tmp_path, backend) -> VectorStore:
    """A store on the embedded default or on the servers, with three memes in its catalog."""
    catalog = Catalog(backend.catalog_location(tmp_path))
    for meme_id in ("m1", "m2", "x"):
        catalog.save(Meme(id=meme_id))
    return backend.store(tmp_path, catalog)


def _again(store: VectorStore) -> VectorStore:
    """Another client of the same store, as another process would open it."""
    return VectorStore(store.directory, store.catalog, url=store.url, database=store.database)


def _unit(rows):
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_upsert_query_and_replace(store):
    space = store.create_space("ocr_text", "model-a", 3)
    space.upsert(["m1", "m2"], _unit([[1, 0, 0], [0, 1, 0]]), [{"meme_id": "m1"}, {"meme_id": "m2"}])
    space.upsert(["m1"], _unit([[0, 0, 1]]), [{"meme_id": "m1"}])  # upsert replaces, add would not
    hits = space.query(_unit([[0, 0, 1]])[0], 5)
    assert [h.id for h in hits] == ["m1", "m2"]
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert space.count() == 2


def test_a_space_refuses_another_model_and_wrong_dimensions(store):
    space = store.create_space("image", "clip-a", 3)
    with pytest.raises(ModelMismatch, match="memes reindex"):
        _again(store).create_space("image", "clip-b", 3)
    with pytest.raises(ModelMismatch, match="4-d vectors"):
        space.upsert(["x"], _unit([[1, 2, 3, 4]]), [{"meme_id": "x"}])
    assert store.describe()["image"] == {"model": "clip-a", "dim": 3, "vectors": 0}


def test_rebuild_swaps_in_only_when_finished(store):
    old = store.create_space("image", "clip-a", 2)
    old.upsert(["m1"], _unit([[1, 0]]), [{"meme_id": "m1"}])
    new = store.begin_rebuild("image", "clip-b", 3)
    new.upsert(["m1"], _unit([[0, 1, 0]]), [{"meme_id": "m1"}])
    assert store.space("image").model == "clip-a"  # still serving the old vectors
    assert "image.next" not in store.describe()
    store.finish_rebuild("image")
    rebuilt = _again(store).space("image", "clip-b")
    assert rebuilt.dim == 3 and rebuilt.count() == 1


def test_delete_by_meme_and_empty_query(store):
    space = store.create_space("annotation_text", "m", 2)
    assert space.query(_unit([[1, 0]])[0], 3) == []
    space.upsert(["m1/a/0", "m1/a/1", "m2/a/0"], _unit([[1, 0], [1, 1], [0, 1]]),
                 [{"meme_id": "m1"}, {"meme_id": "m1"}, {"meme_id": "m2"}])
    space.delete_memes(["m1"])
    assert [h.id for h in space.query(_unit([[1, 0]])[0], 3)] == ["m2/a/0"]


def test_the_catalog_keeps_every_vector_and_answers_like_chroma(store):
    space = store.create_space("annotation_text", "m", 3)
    rnd = np.random.default_rng(0)
    vectors = _unit(rnd.normal(size=(3, 3)))
    space.upsert(["m1/a/0", "m1/a/1", "m2/a/0"], vectors,
                 [{"meme_id": "m1", "start": 0}, {"meme_id": "m1", "start": 9}, {"meme_id": "m2", "start": 0}])
    kept = CatalogVectors(store.catalog).space("annotation_text", "m")
    query = _unit(rnd.normal(size=(1, 3)))[0]
    chroma_hits, kept_hits = space.query(query, 3), kept.query(query, 3)
    assert [h.id for h in kept_hits] == [h.id for h in chroma_hits]
    assert [h.similarity for h in kept_hits] == pytest.approx([h.similarity for h in chroma_hits], abs=1e-5)
    assert kept_hits[0].metadata == next(h.metadata for h in chroma_hits if h.id == kept_hits[0].id)
    assert np.allclose(kept.vector("m2/a/0"), vectors[2])
    with pytest.raises(ModelMismatch, match="memes reindex"):
        CatalogVectors(store.catalog).space("annotation_text", "another")
    space.delete_memes(["m1"])
    assert store.catalog.copies.items("annotation_text") == {"m2/a/0": "m2"}
    store.catalog.delete("m2")  # a forgotten meme takes its kept vectors with it
    assert store.catalog.copies.count("annotation_text") == 0


def test_a_rebuild_swaps_the_kept_vectors_too(store):
    store.create_space("image", "clip-a", 2).upsert(["m1"], _unit([[1, 0]]), [{"meme_id": "m1"}])
    store.begin_rebuild("image", "clip-b", 3).upsert(["m1"], _unit([[0, 1, 0]]), [{"meme_id": "m1"}])
    assert CatalogVectors(store.catalog).space("image").model == "clip-a"
    store.finish_rebuild("image")
    assert CatalogVectors(store.catalog).describe()["image"] == {"model": "clip-b", "dim": 3, "vectors": 1}


def test_reconcile_restores_adopts_and_drops_without_a_model(store):
    space = store.create_space("image", "clip", 2)
    space.upsert(["m1", "m2"], _unit([[1, 0], [0, 1]]), [{"meme_id": "m1"}, {"meme_id": "m2"}])
    space.collection.delete(ids=["m1"])  # Chroma lost one
    space.collection.upsert(ids=["x", "ghost"], embeddings=_unit([[1, 1], [1, -1]]),
                            metadatas=[{"meme_id": "x"}, {"meme_id": "ghost"}])  # one not kept, one of no meme
    assert space.reconcile() == {"restored": 1, "adopted": 1, "dropped": 1}
    assert space.item_ids() == {"m1", "m2", "x"} == set(store.catalog.copies.items("image"))
    assert np.allclose(space.vector("m1"), [1, 0])


def test_several_queries_at_once_answer_as_each_alone(store):
    """`query_many` (a batch of queries: one request to Chroma, one pass over the catalog's copies)
    gives each vector the hits `query` gives it, in Chroma and in the catalog's exact scan."""
    rnd = np.random.default_rng(3)
    ids = ["m1", "m2", "x"]
    space = store.create_space("ocr_text", "model-a", 8)
    space.upsert(ids, _unit(rnd.normal(size=(3, 8))), [{"meme_id": i} for i in ids])
    queries = rnd.normal(size=(5, 8)).astype(np.float32)
    for searched in (space, CatalogVectors(store.catalog).space("ocr_text", "model-a")):
        together = searched.query_many(list(queries), 2)
        alone = [searched.query(q, 2) for q in queries]
        assert [[h.id for h in hits] for hits in together] == [[h.id for h in hits] for hits in alone]
        for hits, expected in zip(together, alone):
            assert [h.similarity for h in hits] == pytest.approx([h.similarity for h in expected], abs=1e-5)
        assert searched.query_many([], 2) == []
