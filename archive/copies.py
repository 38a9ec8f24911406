"""What the catalog knows of the vectors: which memes have them in which space and by which
model (`VectorMarks`, the catalog's `marks`), and a copy of every vector (`VectorCopies`, its
`copies`), from which the vector index can always be made whole without a model
(`archive.vectors`)."""
from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from .database import POSTGRESQL, Database
from .model import ANNOTATION_TEXT, IMAGE, OCR_TEXT


class VectorMarks:
    def __init__(self, db: Database):
        self.db = db

    def needing(self, space: str, model: str, with_image_only: bool = False) -> list[str]:
        """Memes whose vectors in `space` are missing or were made by another model."""
        only = "AND m.content_hash IS NOT NULL" if with_image_only else ""
        return [r[0] for r in self.db.execute(
            f"""SELECT m.id FROM memes m LEFT JOIN vectors v ON v.meme_id = m.id AND v.space = ?
                WHERE (v.model IS NULL OR v.model != ?) {only} ORDER BY m.first_seen, m.id""", (space, model))]

    def mark(self, meme_ids: list[str], space: str, model: str) -> None:
        with self.db.transaction():
            self.db.executemany("INSERT INTO vectors(meme_id, space, model) VALUES (?, ?, ?) "
                                "ON CONFLICT(meme_id, space) DO UPDATE SET model = excluded.model",
                                [(i, space, model) for i in meme_ids])

    def unmark(self, meme_id: str, spaces: list[str] | None = None) -> None:
        if spaces is None:
            self.db.execute("DELETE FROM vectors WHERE meme_id = ?", (meme_id,))
        else:
            self.db.executemany("DELETE FROM vectors WHERE meme_id = ? AND space = ?",
                                [(meme_id, s) for s in spaces])

    def expecting(self, space: str) -> set[str]:
        """Memes the catalog says have vectors in `space` (and have something to embed there)."""
        has = {
            IMAGE: "m.content_hash IS NOT NULL",
            OCR_TEXT: "EXISTS (SELECT 1 FROM sections s WHERE s.meme_id = m.id AND s.type = 'ocr' AND trim(s.body) != '')",
            ANNOTATION_TEXT: "EXISTS (SELECT 1 FROM sections s WHERE s.meme_id = m.id AND s.type = 'annotation')",
        }[space]
        return {r[0] for r in self.db.execute(
            f"SELECT m.id FROM memes m JOIN vectors v ON v.meme_id = m.id AND v.space = ? WHERE {has}", (space,))}


class VectorCopies:
    def __init__(self, db: Database):
        self.db = db

    def put(self, space: str, model: str, item_ids: Sequence[str], vectors: np.ndarray,
                       metadatas: Sequence[dict]) -> None:
        rows = [(space, item, meta["meme_id"], model, np.asarray(vector, dtype="<f4").tobytes(),
                 json.dumps(meta, sort_keys=True))
                for item, vector, meta in zip(item_ids, vectors, metadatas)]
        with self.db.transaction():
            self.db.executemany(
                "INSERT INTO embeddings(space, item_id, meme_id, model, vector, meta) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(space, item_id) DO UPDATE SET meme_id = excluded.meme_id, model = excluded.model, "
                "vector = excluded.vector, meta = excluded.meta", rows)

    def drop(self, space: str, meme_ids: Sequence[str] = (), item_ids: Sequence[str] = ()) -> None:
        with self.db.transaction():
            self.db.executemany("DELETE FROM embeddings WHERE space = ? AND meme_id = ?",
                                [(space, m) for m in meme_ids])
            self.db.executemany("DELETE FROM embeddings WHERE space = ? AND item_id = ?",
                                [(space, i) for i in item_ids])

    def models(self, space: str) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT model FROM embeddings WHERE space = ?", (space,))]

    def dim(self, space: str) -> int | None:
        row = self.db.execute("SELECT length(vector) FROM embeddings WHERE space = ? LIMIT 1", (space,)).fetchone()
        return row[0] // 4 if row else None  # float32

    def count(self, space: str) -> int:
        return self.db.execute("SELECT count(*) FROM embeddings WHERE space = ?", (space,)).fetchone()[0]

    def items(self, space: str) -> dict[str, str]:
        """item id -> meme id, for every vector kept in `space`."""
        return dict(self.db.execute("SELECT item_id, meme_id FROM embeddings WHERE space = ?", (space,)).fetchall())

    def read(self, space: str, item_ids: Sequence[str] | None = None,
                   ) -> tuple[list[str], np.ndarray, list[dict]]:
        """Item ids, their vectors (one per row) and metadata; all of `space` (in SQLite in the
        order first stored, the order in which Chroma breaks ties between equal distances), or the
        ones asked for."""
        if item_ids is None:
            order = "item_id" if (self.db.dialect == POSTGRESQL) else "rowid"
            rows = self.db.execute(f"SELECT item_id, vector, meta FROM embeddings WHERE space = ? ORDER BY {order}",
                                   (space,)).fetchall()
        else:
            rows = [r for i in item_ids for r in self.db.execute(
                "SELECT item_id, vector, meta FROM embeddings WHERE space = ? AND item_id = ?", (space, i))]
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32), []
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1)
        return [r[0] for r in rows], matrix, [json.loads(r[2] or "{}") for r in rows]

    def rename(self, old: str, new: str) -> None:
        """Let the vectors of space `old` become those of `new` (a finished rebuild)."""
        with self.db.transaction():
            self.db.execute("DELETE FROM embeddings WHERE space = ?", (new,))
            self.db.execute("UPDATE embeddings SET space = ? WHERE space = ?", (new, old))
