"""Annotation jobs: which vision model has written (or failed, or is still to write) which
annotation of which meme, and with which prompt; the catalog's `jobs`."""
from __future__ import annotations

from .database import Database, Row
from .model import Annotation, utc_now
from .rows import iso


class AnnotationJobs:
    def __init__(self, db: Database):
        self.db = db

    def put_annotation(self, meme_id: str, annotation: Annotation, model: str, prompt_hash: str) -> bool:
        """Store a fresh annotation and mark its job done. The text it replaces, if any, is kept
        in the history. Returns False (and stores nothing) when an imported annotation of the
        same kind and source is there: a record's own word is not overwritten by indexing."""
        key = (meme_id, "annotation", annotation.kind, annotation.source)
        with self.db.transaction():
            old = self.db.execute("SELECT body, position FROM sections WHERE meme_id = ? AND type = ? "
                                  "AND kind = ? AND source = ?", key).fetchone()
            job = self._job(meme_id, annotation.kind, annotation.source)
            if old is not None and (job is None or job["status"] != "done"):
                return False
            now = iso(utc_now())
            if old is not None and old["body"] != annotation.text:
                self.db.execute("INSERT INTO annotation_history VALUES (?, ?, ?, ?, ?, ?)",
                                (meme_id, annotation.kind, annotation.source, job["prompt_hash"], old["body"], now))
            position = old["position"] if old is not None else self.db.execute(
                "SELECT coalesce(max(position) + 1, 0) FROM sections WHERE meme_id = ?", (meme_id,)).fetchone()[0]
            self.db.execute(
                """INSERT INTO sections(meme_id, position, type, kind, source, body) VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT(meme_id, type, kind, source) DO UPDATE SET body = excluded.body""",
                (meme_id, position, "annotation", annotation.kind, annotation.source, annotation.text))
            self._set_job(meme_id, annotation.kind, annotation.source, model, prompt_hash, "done", None)
            self.db.execute("DELETE FROM vectors WHERE meme_id = ? AND space = 'annotation_text'", (meme_id,))
        return True

    def mark_annotation(self, meme_id: str, kind: str, source: str, model: str, prompt_hash: str,
                        status: str, reason: str | None) -> None:
        """Note an annotation that is still to come (pending) or could not be made (failed)."""
        with self.db.transaction():
            job = self._job(meme_id, kind, source)
            if job is not None and job["status"] == "done" and status == "pending":
                return  # an older annotation stands; it is not pending, at most stale
            self._set_job(meme_id, kind, source, model, prompt_hash, status, reason)

    def _job(self, meme_id: str, kind: str, source: str) -> Row | None:
        return self.db.execute("SELECT * FROM annotation_jobs WHERE meme_id = ? AND kind = ? AND source = ?",
                               (meme_id, kind, source)).fetchone()

    def _set_job(self, meme_id, kind, source, model, prompt_hash, status, reason) -> None:
        self.db.execute(
            """INSERT INTO annotation_jobs(meme_id, kind, source, model, prompt_hash, status, reason,
                                           attempts, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)
               ON CONFLICT(meme_id, kind, source) DO UPDATE SET model = excluded.model,
                   prompt_hash = excluded.prompt_hash, status = excluded.status, reason = excluded.reason,
                   attempts = annotation_jobs.attempts + 1, updated_at = excluded.updated_at""",
            (meme_id, kind, source, model, prompt_hash, status, reason, iso(utc_now())))

    def todo(self, kind: str, source: str, prompt_hash: str, mode: str) -> list[str]:
        """Memes (with images) an annotator should run on.

        mode `missing`: no annotation of this kind and source yet, or one pending, failed or
        stale (made with another prompt); `pending`: only those left pending; `redo`: all."""
        if mode == "redo":
            where = "1 = 1"
        elif mode == "pending":
            where = "j.status = 'pending'"
        else:
            where = ("(s.id IS NULL AND (j.status IS NULL OR j.status != 'done')) OR j.status IN ('pending', 'failed') "
                     "OR (j.status = 'done' AND j.prompt_hash != :prompt)")
        return [r[0] for r in self.db.execute(
            f"""SELECT m.id FROM memes m
                LEFT JOIN annotation_jobs j ON j.meme_id = m.id AND j.kind = :kind AND j.source = :source
                LEFT JOIN sections s ON s.meme_id = m.id AND s.type = 'annotation' AND s.kind = :kind
                                        AND s.source = :source
                WHERE m.content_hash IS NOT NULL AND ({where}) ORDER BY m.first_seen, m.id""",
            {"kind": kind, "source": source, "prompt": prompt_hash})]

    def stats(self, current: dict[tuple[str, str], str]) -> dict:
        """Jobs by status for each (kind, source); `current` maps them to the configured prompt
        hash, so annotations made with another prompt count as stale."""
        out: dict = {}
        for row in self.db.execute("SELECT kind, source, status, prompt_hash, count(*) AS n FROM annotation_jobs "
                                   "GROUP BY kind, source, status, prompt_hash"):
            entry = out.setdefault(f"{row['kind']} ({row['source']})", {"done": 0, "pending": 0, "failed": 0, "stale": 0})
            entry[row["status"]] += row["n"]
            expected = current.get((row["kind"], row["source"]))
            if row["status"] == "done" and expected is not None and row["prompt_hash"] != expected:
                entry["stale"] += row["n"]
        reasons = self.db.execute("SELECT reason, count(*) AS n FROM annotation_jobs WHERE status = 'failed' "
                                  "GROUP BY reason ORDER BY n DESC LIMIT 5").fetchall()
        return {"by_annotator": out, "failure_reasons": {r["reason"]: r["n"] for r in reasons}}
