"""The vector store: Chroma, one collection per vector space, linked to memes by id; embedded
in the archive directory (the default) or on a Chroma server (`chroma_url`).

Every collection records the model and dimension that made its vectors, and the store refuses
to mix models. Vectors are derived data: `memes reindex` rebuilds them from the catalog.

Every vector written to Chroma is also kept in the catalog. Chroma's embedded mode is not safe
for a second process while one writes, so a search made during an index run reads
those copies instead (`CatalogVectors`: an exact scan of what is committed), and `memes doctor`
puts back into Chroma whatever it lost without running any model.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import vectorcheck
from .catalog import Catalog
from .chroma import Guarded, server_client
from .errors import ArchiveDamaged, ModelMismatch, first_line
from .model import SPACES

SCHEMA_VERSION = 1
_NEXT = ".next"


@dataclass
class Hit:
    id: str
    similarity: float  # cosine similarity, 1 is identical
    metadata: dict[str, Any]


@dataclass(eq=False)
class VectorSpace:
    """One Chroma collection: vectors of one kind made by one model, each kept in the catalog too."""

    collection: Any
    model: str
    dim: int
    max_batch: int
    catalog: Catalog

    def __post_init__(self):
        self.collection = Guarded(self.collection)

    @property
    def name(self) -> str:
        return self.collection.name

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict]) -> None:
        """Store vectors; every metadata names its `meme_id`."""
        if len(ids) == 0:
            return
        if vectors.shape[1] != self.dim:
            raise ModelMismatch(f"{self.name}: got {vectors.shape[1]}-d vectors for a {self.dim}-d collection")
        self._index(ids, vectors, metadatas)
        self.catalog.copies.put(self.name, self.model, ids, vectors, metadatas)

    def _index(self, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict]) -> None:
        for start in range(0, len(ids), self.max_batch):
            end = start + self.max_batch
            self.collection.upsert(ids=list(ids[start:end]), embeddings=vectors[start:end],
                                   metadatas=list(metadatas[start:end]))

    def delete_memes(self, meme_ids: Sequence[str]) -> None:
        if meme_ids:
            self.collection.delete(where={"meme_id": {"$in": list(meme_ids)}})
            self.catalog.copies.drop(self.name, meme_ids=meme_ids)

    def delete_items(self, item_ids: Sequence[str]) -> None:
        if item_ids:
            self.collection.delete(ids=list(item_ids))
            self.catalog.copies.drop(self.name, item_ids=item_ids)

    def _pages(self, include: list[str]):
        """Every item of the collection, a batch at a time (Chroma's `get` result per batch)."""
        offset = 0
        while True:
            page = self.collection.get(include=include, limit=self.max_batch, offset=offset)
            yield page
            if len(page["ids"]) < self.max_batch:
                return
            offset += self.max_batch

    def item_ids(self) -> set[str]:
        return {i for page in self._pages([]) for i in page["ids"]}

    def reconcile(self) -> dict[str, int]:
        """Make Chroma hold exactly the vectors the catalog keeps: vectors only Chroma has are
        copied into the catalog when their meme exists (archives made before the copies), or
        dropped; vectors Chroma lost are put back from the catalog. No model runs."""
        kept = self.catalog.copies.items(self.name)
        indexed = self.item_ids()
        known = set(self.catalog.ids())
        unkept = sorted(indexed - kept.keys())
        adopted, dropped = [], []
        for start in range(0, len(unkept), self.max_batch):
            found = self.collection.get(ids=unkept[start:start + self.max_batch], include=["embeddings", "metadatas"])
            take = [n for n, meta in enumerate(found["metadatas"]) if (meta or {}).get("meme_id") in known]
            taken = set(take)
            if take:
                self.catalog.copies.put(self.name, self.model, [found["ids"][n] for n in take],
                                        np.asarray(found["embeddings"], dtype=np.float32)[take],
                                        [found["metadatas"][n] for n in take])
            adopted += [found["ids"][n] for n in take]
            dropped += [i for n, i in enumerate(found["ids"]) if n not in taken]
        if dropped:
            self.collection.delete(ids=dropped)
        missing = sorted(kept.keys() - indexed)
        for start in range(0, len(missing), self.max_batch):
            ids, vectors, metas = self.catalog.copies.read(self.name, missing[start:start + self.max_batch])
            self._index(ids, vectors, metas)
        return {"restored": len(missing), "adopted": len(adopted), "dropped": len(dropped)}

    def count(self) -> int:
        return self.collection.count()

    def query(self, vector: np.ndarray, n: int) -> list[Hit]:
        return self.query_many([vector], n)[0]

    def query_many(self, vectors: Sequence[np.ndarray], n: int) -> list[list[Hit]]:
        """`query` for several vectors in one request."""
        n = min(n, self.count()) if len(vectors) else 0
        if n <= 0:
            return [[] for _ in vectors]
        found = self.collection.query(query_embeddings=[np.asarray(v, dtype=np.float32) for v in vectors],
                                      n_results=n, include=["distances", "metadatas"])
        return [[Hit(id=i, similarity=1.0 - float(d), metadata=m or {}) for i, d, m in zip(*one)]
                for one in zip(found["ids"], found["distances"], found["metadatas"])]

    def meme_ids(self) -> set[str]:
        """Every meme that has at least one vector here."""
        return {(m or {}).get("meme_id", i) for page in self._pages(["metadatas"])
                for i, m in zip(page["ids"], page["metadatas"])}

    def vector(self, item_id: str) -> np.ndarray | None:
        found = self.collection.get(ids=[item_id], include=["embeddings"])
        if not found["ids"]:
            return None
        return np.asarray(found["embeddings"][0], dtype=np.float32)


class VectorStore:
    """Chroma, embedded under the archive directory or on a server (`chroma run`), with copies of
    every vector in the catalog."""

    def __init__(self, directory: Path, catalog: Catalog, url: str = "", database: str = "memes",
                 token: str = ""):
        self.directory = Path(directory)
        self.catalog = catalog
        self.url = url
        self.database = database
        self.token = token
        self._client = None

    @property
    def on_server(self) -> bool:
        return bool(self.url)

    @property
    def where(self) -> str:
        return f"{self.url} (database {self.database})" if self.url else str(self.directory)

    @property
    def client(self):
        if self._client is None:
            import chromadb
            from chromadb.config import Settings

            if self.url:
                self._client = server_client(self.url, self.database, self.token)
            else:
                damage = vectorcheck.check(self.directory)
                if damage is not None:
                    raise self.damaged(damage)
                self.directory.mkdir(parents=True, exist_ok=True)
                try:
                    self._client = Guarded(chromadb.PersistentClient(
                        path=str(self.directory), settings=Settings(anonymized_telemetry=False)))
                except Exception as exc:  # Chroma's own files (chroma.sqlite3) unreadable
                    raise self.damaged(first_line(exc)) from None
        return self._client

    def damaged(self, reason: str) -> ArchiveDamaged:
        return ArchiveDamaged(f"the vector index {self.directory} is damaged ({reason}): `memes doctor` rebuilds it "
                              "from the catalog's copies of the vectors")

    def check(self) -> str | None:
        """What is wrong with the embedded index, found by opening it in a child process (None:
        nothing, or it is on a server)."""
        if self.on_server or not self.directory.exists():
            return None
        self.close()
        return vectorcheck.deep_check(self.directory)

    def set_aside(self) -> Path:
        """Move a damaged embedded index out of the way (kept beside it, for the curious)."""
        from .disk import aside_label

        self.close(seal=False)
        target = self.directory.with_name(f"{self.directory.name}.{aside_label('damaged')}")
        self.directory.rename(target)
        vectorcheck.unseal(self.directory)
        return target

    def restore_spaces(self) -> list[str]:
        """Make every space the catalog keeps vectors for that Chroma lacks (then `reconcile`
        fills them). No model runs: the model and dimension are the copies'."""
        made = []
        existing = self._collections()
        for name in SPACES:
            models = self.catalog.copies.models(name)
            if name not in existing and len(models) == 1:
                self.create_space(name, models[0], self.catalog.copies.dim(name))
                made.append(name)
        return made

    def sweep(self) -> int:
        """Remove the files of collections that no longer exist; how many folders went."""
        if self.on_server or not self.directory.exists():
            return 0
        import shutil

        unused = vectorcheck.unused_files(self.directory)
        for folder in unused:
            shutil.rmtree(folder, ignore_errors=True)
        return len(unused)

    def exists(self) -> bool:
        """Whether there may be vectors to read (an embedded store not yet made has none)."""
        return self.on_server or self.directory.exists()

    def close(self, seal: bool = True) -> None:
        """Forget the open client (and Chroma's in-process cache of it): the next use reads
        the files afresh, as another process left them. The files are sealed as left (see
        `archive.vectorcheck`)."""
        if self._client is not None:
            from chromadb.api.shared_system_client import SharedSystemClient

            self._client = None
            SharedSystemClient.clear_system_cache()
            if seal and not self.on_server:
                self.sweep()
                vectorcheck.seal(self.directory)

    def _collections(self) -> dict[str, Any]:
        return {c.name: c for c in self.client.list_collections()}

    def _wrap(self, collection, name: str, model: str | None) -> VectorSpace:
        meta = collection.metadata or {}
        if model is not None and meta.get("model") != model:
            raise _mismatch(name, str(meta.get("model")), model)
        return VectorSpace(collection, meta.get("model"), int(meta.get("dim", 0)), self.client.get_max_batch_size(),
                           self.catalog)

    def space(self, name: str, model: str | None = None) -> VectorSpace | None:
        """An existing space, checked against `model` when given; None where it does not exist."""
        collection = self._collections().get(name)
        if collection is None:
            return None
        return self._wrap(collection, name, model)

    def create_space(self, name: str, model: str, dim: int) -> VectorSpace:
        """The space for `model`, created when missing; refuses a space made by another model."""
        existing = self.space(name, model)
        if existing is not None:
            return existing
        # get_or_create: indexers on a server may start together; the one that loses the race
        # gets the winner's collection, checked against its model like any other
        collection = self.client.get_or_create_collection(
            name=name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
            metadata={"model": model, "dim": dim, "schema": SCHEMA_VERSION})
        return self._wrap(collection, name, model)

    def describe(self) -> dict[str, dict[str, Any]]:
        """Model, dimension and size of every space."""
        return {name: {"model": (c.metadata or {}).get("model"), "dim": (c.metadata or {}).get("dim"),
                       "vectors": c.count()}
                for name, c in sorted(self._collections().items()) if not name.endswith(_NEXT)}

    def begin_rebuild(self, name: str, model: str, dim: int) -> VectorSpace:
        """An empty space that will replace `name` when `finish_rebuild` is called."""
        if name + _NEXT in self._collections():
            self.client.delete_collection(name + _NEXT)
        collection = self.client.create_collection(
            name=name + _NEXT, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
            metadata={"model": model, "dim": dim, "schema": SCHEMA_VERSION})
        return self._wrap(collection, name, model)

    def finish_rebuild(self, name: str) -> None:
        """Swap the rebuilt space in; the old one is dropped only now."""
        collections = self._collections()
        if name in collections:
            self.client.delete_collection(name)
        collections[name + _NEXT].modify(name=name)
        self.catalog.copies.rename(name + _NEXT, name)


class CatalogSpace:
    """The catalog's copies of one space, searched by an exact scan (see the module's note)."""

    def __init__(self, catalog: Catalog, name: str, model: str | None):
        self.catalog = catalog
        self.name = name
        self.model = model
        self._loaded: tuple[list[str], np.ndarray, list[dict]] | None = None

    def _all(self) -> tuple[list[str], np.ndarray, list[dict]]:
        if self._loaded is None:
            ids, matrix, metas = self.catalog.copies.read(self.name)
            norms = np.linalg.norm(matrix, axis=1, keepdims=True) if len(ids) else 1.0
            self._loaded = ids, matrix / np.maximum(norms, 1e-12), metas
        return self._loaded

    def count(self) -> int:
        return len(self._loaded[0]) if self._loaded is not None else self.catalog.copies.count(self.name)

    def query(self, vector: np.ndarray, n: int) -> list[Hit]:
        return self.query_many([vector], n)[0]

    def query_many(self, vectors: Sequence[np.ndarray], n: int) -> list[list[Hit]]:
        """`query` for several vectors: one pass over the matrix for them all (a scan is bound by
        reading the matrix, so a batch of queries costs little more than one)."""
        ids, matrix, metas = self._all()
        if not ids or n <= 0 or not len(vectors):
            return [[] for _ in vectors]
        if len(vectors) == 1:  # a matrix-vector product, as a single query has always been scored
            query = np.asarray(vectors[0], dtype=np.float32)
            similarities = (matrix @ (query / max(float(np.linalg.norm(query)), 1e-12)))[None, :]
        else:
            queries = np.asarray(vectors, dtype=np.float32)
            similarities = (queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)) @ matrix.T
        found = []
        for similarity in similarities:  # (tolist: the same floats as float() of each, made at once)
            top = _top(similarity, n)
            found.append([Hit(id=ids[i], similarity=s, metadata=metas[i])
                          for i, s in zip(top.tolist(), similarity[top].tolist())])
        return found

    def meme_ids(self) -> set[str]:
        return set(self.catalog.copies.items(self.name).values())

    def vector(self, item_id: str) -> np.ndarray | None:
        ids, matrix, _ = self.catalog.copies.read(self.name, [item_id])
        return matrix[0] if ids else None


def _top(similarity: np.ndarray, n: int) -> np.ndarray:
    """The indices of the `n` highest similarities, highest first, ties in index order (what a
    stable sort of all of them gives), without sorting all of them."""
    if n >= len(similarity):
        return np.argsort(-similarity, kind="stable")
    floor = np.partition(similarity, len(similarity) - n)[len(similarity) - n]
    near = np.flatnonzero(similarity >= floor)  # every tie at the floor, in index order
    return near[np.argsort(-similarity[near], kind="stable")][:n]


class CatalogVectors:
    """The vector store as the catalog keeps it: read-only, safe beside a writing process."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._spaces: dict[str, CatalogSpace] = {}  # loaded once for the searches of one reading
        self._models: dict[str, tuple[int | None, list[str]]] = {}  # by the catalog's data version

    def space(self, name: str, model: str | None = None) -> CatalogSpace | None:
        version = self.catalog.data_version()
        if version is None or self._models.get(name, (None,))[0] != version:
            self._models[name] = (version, self.catalog.copies.models(name))  # a scan: once a version
        models = self._models[name][1]
        if not models:
            return None
        if model is not None and models != [model]:
            raise _mismatch(name, ", ".join(models), model)
        if name not in self._spaces or self._spaces[name].model != models[0]:
            self._spaces[name] = CatalogSpace(self.catalog, name, models[0])
        return self._spaces[name]

    def describe(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name in SPACES:
            space = self.space(name)
            if space is not None:
                out[name] = {"model": space.model, "dim": self.catalog.copies.dim(name), "vectors": space.count()}
        return out


def _mismatch(space: str, made_by: str, configured: str) -> ModelMismatch:
    return ModelMismatch(f"the {space} vectors were made by {made_by}, but the configured model is {configured}; "
                         "run `memes reindex` to rebuild them")


class MendedVectors:
    """Chroma, with the catalog's copies standing in for a space Chroma lacks or has lost
    vectors of (a deleted folder, a crash): the search answers from what works and says so."""

    def __init__(self, store: VectorStore, catalog: Catalog):
        self.store = store
        self.copies = CatalogVectors(catalog)
        try:
            indexed = store.describe()
        except ArchiveDamaged:
            raise
        except Exception as exc:  # noqa: BLE001 - Chroma's files unreadable past opening
            raise store.damaged(first_line(exc)) from None
        self.stand_ins: list[str] = []
        self.notices: list[str] = []
        for name in SPACES:
            kept, have = catalog.copies.count(name), indexed.get(name, {}).get("vectors", 0)
            if kept > have:
                self.stand_ins.append(name)
                self.notices.append(f"the {name} index in {store.where} lacks {kept - have} of the {kept} vectors the "
                                    "catalog keeps: searching the catalog's copies of them; `memes doctor` puts "
                                    "them back")

    def space(self, name: str, model: str | None = None) -> VectorSpace | CatalogSpace | None:
        if name in self.stand_ins:
            return self.copies.space(name, model)
        return self.store.space(name, model)

    def describe(self) -> dict[str, dict[str, Any]]:
        copies = self.copies.describe()
        return {**self.store.describe(), **{n: copies[n] for n in self.stand_ins if n in copies}}
