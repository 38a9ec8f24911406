"""The catalog: the source of truth for every record, in SQLite in the archive directory or
on a PostgreSQL server (see `archive.database`: one code path, SQL written once).

Memes, their sightings and their text sections (annotations and OCR) live here; Chroma holds
only vectors, which can always be rebuilt from this. Beside the records, each in a module of
its own: the tables (`archive.schema`), keyword search per engine (`archive.keywords`), the
annotation jobs (`jobs`, `archive.jobs`) and what is known of the vectors (`marks` and
`copies`, `archive.copies`).
"""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Iterator, Sequence

from . import keywords
from .copies import VectorCopies, VectorMarks
from .database import POSTGRESQL, Database, Row, SqliteDatabase, is_server_url, open_database
from .errors import MemeNotFound, ReadOnlyArchive
from .jobs import AnnotationJobs
from .model import Meme, OcrText, Section, Sighting
from .rows import iso, moment, path_from_db, path_to_db, section_key, section_of, sighting_of
from .schema import SCHEMA_VERSION, migrate


_BY_CONTENT = ("SELECT id FROM memes WHERE content_hash = ? "
               "UNION ALL SELECT meme_id FROM sightings WHERE content_hash = ? LIMIT 1")


def _read_only_sqlite(path: Path) -> SqliteDatabase:
    """A catalog where nothing can be written: as an immutable file, unless a write-ahead log
    holds records (a writer was stopped before it checkpointed), which SQLite then reads if it can."""
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        try:
            return SqliteDatabase(path, read_only=True)
        except Exception:  # no shared-memory file can be made: the main file alone
            pass
    return SqliteDatabase(path, immutable=True)


class Catalog:
    """Records of one archive. On SQLite, one writing process at a time (see `archive.lock`);
    on PostgreSQL, as many as the server takes."""

    def __init__(self, location: str | Path, read_only: bool = False):
        """`location`: the SQLite file, or a `postgresql://` URL. `read_only`: a SQLite file in a
        folder that cannot be written (nothing is asked of the disk but reads)."""
        if read_only and not is_server_url(location):
            self.db: Database = _read_only_sqlite(Path(location))
            if self.db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                raise ReadOnlyArchive(f"{location} was made by another version of memes and cannot be brought "
                                      "up to date where it is (it cannot be written)")
        else:
            self.db = open_database(location)
            migrate(self.db)
        self.jobs = AnnotationJobs(self.db)
        self.marks = VectorMarks(self.db)
        self.copies = VectorCopies(self.db)

    @staticmethod
    def exists_at(location: str | Path) -> bool:
        """Whether records were ever written there (nothing is made by asking)."""
        if not is_server_url(location):
            return Path(location).exists()
        db = open_database(location)
        try:
            return db.execute("SELECT to_regclass('memes') IS NOT NULL").fetchone()[0]
        finally:
            db.close()

    @property
    def on_server(self) -> bool:
        return self.db.dialect == POSTGRESQL

    def close(self) -> None:
        self.db.close()

    def transaction(self):
        """Commit everything inside, or nothing. Nested use joins the outer transaction."""
        return self.db.transaction()

    def checkpoint(self) -> None:
        """Leave the records whole in the catalog's main file (a writing command ends so)."""
        self.db.checkpoint()

    def problems(self) -> list[str]:
        """What an integrity check of the records finds wrong; empty when nothing is."""
        return self.db.problems()

    # --- reading -------------------------------------------------------------------------

    def get(self, meme_id: str) -> Meme | None:
        return self.get_many([meme_id]).get(meme_id)

    def get_many(self, meme_ids: Sequence[str]) -> dict[str, Meme]:
        """meme id -> the meme, for those of `meme_ids` that exist: a few queries for them all."""
        memes = {row["id"]: Meme(id=row["id"], first_seen=moment(row["first_seen"]), content_hash=row["content_hash"],
                                 phash=row["phash"], width=row["width"], height=row["height"])
                 for row in self._rows_of("SELECT * FROM memes WHERE id IN ({ids})", meme_ids)}
        for s in self._rows_of("SELECT * FROM sections WHERE meme_id IN ({ids}) ORDER BY meme_id, position, id",
                               list(memes)):
            memes[s["meme_id"]].sections.append(section_of(s))
        by_bytes: dict[str, list[Meme]] = {}
        for meme in memes.values():
            if meme.content_hash:
                by_bytes.setdefault(meme.content_hash, []).append(meme)
        for content_hash, other in self._rows_of(
                "SELECT content_hash, other FROM identity_rules WHERE content_hash IN ({ids}) AND rule = 'apart' "
                "ORDER BY content_hash, other", list(by_bytes)):
            for meme in by_bytes[content_hash]:
                meme.kept_apart.append(other)
        for other, content_hash in self._rows_of(
                "SELECT other, content_hash FROM identity_rules WHERE other IN ({ids}) AND rule = 'with' "
                "ORDER BY other, content_hash", list(by_bytes)):
            for meme in by_bytes[other]:
                meme.joined_by_hand.append(content_hash)
        for s in self._rows_of("SELECT * FROM sightings WHERE meme_id IN ({ids}) ORDER BY meme_id, seen_at, path",
                               list(memes)):
            memes[s["meme_id"]].sightings.append(sighting_of(s))
        return memes

    def require(self, meme_id: str) -> Meme:
        meme = self.get(meme_id)
        if meme is None:
            raise MemeNotFound(f"no meme with id {meme_id}")
        return meme

    def resolve(self, ref: str) -> str:
        """The id of the meme a user means by an id, id prefix, perceptual or content hash, or path."""
        ref = ref.strip()
        path = os.path.expanduser(ref)
        lookups = [
            ("SELECT id FROM memes WHERE id = ?", ref),
            ("SELECT meme_id FROM sightings WHERE path = ?", path_to_db(os.path.abspath(path))),
            ("SELECT meme_id FROM sightings WHERE path = ?", path_to_db(os.path.realpath(path))),
            ("SELECT id FROM memes WHERE phash = ? ORDER BY first_seen", ref.lower()),
            ("SELECT id FROM memes WHERE content_hash = ?", ref.lower()),
        ]
        for sql, value in lookups:
            rows = self.db.execute(sql, (value,)).fetchall()
            if rows:
                return rows[0][0]
        if len(ref) >= 4 and all(c in "0123456789abcdef" for c in ref.lower()):
            rows = self.db.execute("SELECT id FROM memes WHERE id LIKE ? || '%' LIMIT 2", (ref.lower(),)).fetchall()
            if len(rows) == 1:
                return rows[0][0]
            if len(rows) > 1:
                raise MemeNotFound(f"{ref} matches several memes; give more digits")
        raise MemeNotFound(f"no meme matches {ref!r} (an id, hash or indexed path)")

    def sighting_at(self, path: str) -> Row | None:
        return self.db.execute("SELECT * FROM sightings WHERE path = ?", (path_to_db(path),)).fetchone()

    def committed_owner(self, content_hash: str) -> str | None:
        """The meme committed records give these bytes (as `id_for_content`, without what the
        transaction in progress wrote); safe to call from any thread."""
        row = self.db.reader().execute(_BY_CONTENT, (content_hash, content_hash)).fetchone()
        return row[0] if row else None

    def id_for_content(self, content_hash: str) -> str | None:
        """The meme whose image, or one of whose sightings (a repost), has these bytes."""
        row = self.db.execute(_BY_CONTENT, (content_hash, content_hash)).fetchone()
        return row[0] if row else None

    def likeness_rows(self) -> list[tuple[str, str, list[str], int]]:
        """(id, perceptual hash, OCR readings (one per engine), pixel count) of every meme with a
        picture: what `archive.likeness` compares."""
        readings: dict[str, list[str]] = {}
        for meme_id, body in self.db.execute(
                "SELECT meme_id, body FROM sections WHERE type = 'ocr' AND kind = 'ocr' ORDER BY position, id"):
            readings.setdefault(meme_id, []).append(body)
        return [(r[0], r[1], readings.get(r[0], []), (r[2] or 0) * (r[3] or 0)) for r in self.db.execute(
            "SELECT id, phash, width, height FROM memes WHERE phash IS NOT NULL")]

    def ids_for_phash(self, phash: str, without_image: bool = False) -> list[str]:
        sql = "SELECT id FROM memes WHERE phash = ?" + (" AND content_hash IS NULL" if without_image else "")
        return [r[0] for r in self.db.execute(sql + " ORDER BY first_seen, id", (phash,))]

    def ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM memes ORDER BY first_seen, id")]

    def recent(self, offset: int, limit: int) -> tuple[int, list[str]]:
        """How many memes there are, and a page of their ids, most recently first seen first."""
        total = self.db.execute("SELECT count(*) FROM memes").fetchone()[0]
        rows = self.db.execute("SELECT id FROM memes ORDER BY first_seen DESC, id LIMIT ? OFFSET ?",
                               (limit, offset)).fetchall()
        return total, [r[0] for r in rows]

    def meme_ids_where(self, after: datetime | None = None, before: datetime | None = None,
                       folder: str | None = None, has_text: bool | None = None,
                       annotated: bool | None = None) -> set[str]:
        """The memes first seen on or after `after` and before `before`, with a file under
        `folder`, with (or, False, without) words OCR read, annotated (or not)."""
        where, params = [], []
        if after is not None:
            where.append("m.first_seen >= ?")
            params.append(iso(after))
        if before is not None:
            where.append("m.first_seen < ?")
            params.append(iso(before))
        if folder is not None:
            root = path_to_db(os.path.abspath(os.path.expanduser(folder))).rstrip("/")
            where.append("EXISTS (SELECT 1 FROM sightings s WHERE s.meme_id = m.id AND "
                         "(s.path = ? OR substr(s.path, 1, ?) = ?))")
            params += [root, len(root) + 1, root + "/"]
        for wanted, sql in ((has_text, "SELECT 1 FROM sections x WHERE x.meme_id = m.id AND x.type = 'ocr' "
                                        "AND trim(x.body) <> ''"),
                            (annotated, "SELECT 1 FROM sections x WHERE x.meme_id = m.id AND x.type = 'annotation'")):
            if wanted is not None:
                where.append(("" if wanted else "NOT ") + f"EXISTS ({sql})")
        sql = "SELECT m.id FROM memes m" + (" WHERE " + " AND ".join(where) if where else "")
        return {r[0] for r in self.db.execute(sql, params)}

    def _rows_of(self, sql: str, meme_ids: Sequence[str]) -> Iterator[Row]:
        """The rows of `sql` (whose `{ids}` stands for a list of placeholders) for these memes,
        a few hundred at a time: one query per chunk, not one per meme."""
        for start in range(0, len(meme_ids), 500):
            chunk = list(meme_ids[start:start + 500])
            yield from self.db.execute(sql.format(ids=", ".join("?" * len(chunk))), chunk)

    def texts(self, meme_ids: Sequence[str]) -> dict[str, str]:
        """meme id -> every section's text (annotations and OCR), joined ('' where none)."""
        out = dict.fromkeys(meme_ids, "")
        for meme_id, body in self._rows_of("SELECT meme_id, body FROM sections WHERE meme_id IN ({ids}) "
                                           "ORDER BY meme_id, position", meme_ids):
            out[meme_id] = f"{out[meme_id]}\n{body}" if out[meme_id] else body
        return out

    def seen_between(self, meme_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """meme id -> (first seen, last seen) as ISO text ('' where unknown)."""
        out = dict.fromkeys(meme_ids, ("", ""))
        for meme_id, first, last in self._rows_of(
                "SELECT m.id, m.first_seen, max(s.seen_at) FROM memes m LEFT JOIN sightings s ON s.meme_id = m.id "
                "WHERE m.id IN ({ids}) GROUP BY m.id, m.first_seen", meme_ids):
            out[meme_id] = (first or "", last or first or "")
        return out

    def ocr_texts(self, meme_ids: Sequence[str] | None = None) -> dict[str, str]:
        """meme id -> its OCR text (every engine's, joined), for memes that have any: all of
        them, or those of `meme_ids`."""
        if meme_ids is None:
            rows = self.db.execute("SELECT meme_id, body FROM sections WHERE type = 'ocr' ORDER BY id").fetchall()
        else:
            rows = list(self._rows_of("SELECT meme_id, body FROM sections WHERE meme_id IN ({ids}) AND type = 'ocr' "
                                      "ORDER BY id", meme_ids))
        out: dict[str, str] = {}
        for meme_id, body in rows:
            out[meme_id] = (out.get(meme_id, "") + "\n" + body).strip()
        return out

    def with_image(self, meme_ids: Sequence[str]) -> set[str]:
        """Those of `meme_ids` that have an image (not records imported without one)."""
        return {r[0] for r in self._rows_of("SELECT id FROM memes WHERE id IN ({ids}) AND content_hash IS NOT NULL",
                                            meme_ids)}

    def with_several_sightings(self) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT meme_id FROM sightings GROUP BY meme_id HAVING count(*) > 1 ORDER BY min(seen_at)")]

    def phashes(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.db.execute("SELECT id, phash FROM memes WHERE phash IS NOT NULL")]

    def match_sections(self, query: str, limit: int, own_connection: bool = False,
                       held: keywords.TrigramIndex | None = None) -> list:
        """Sections matching the query's words, best first (`archive.keywords`). `own_connection`:
        read on the calling thread's own connection; `held`: the sections' trigrams in memory."""
        return keywords.match_sections(self.db.reader() if own_connection else self.db, query, limit, held)

    def trigram_index(self) -> keywords.TrigramIndex | None:
        """Every section's trigrams, read once and held in memory to be searched many times as
        FTS5 would search them (`keywords.TrigramIndex`); None on a server (pg_trgm ranks there)."""
        if self.on_server:
            return None
        return keywords.TrigramIndex(self.db.execute(
            "SELECT id, meme_id, type, kind, source, body FROM sections ORDER BY id").fetchall())

    # --- writing -------------------------------------------------------------------------

    def save(self, meme: Meme) -> None:
        """Write a meme: its row, every section (in order) and every sighting."""
        with self.transaction():
            self.db.execute(
                """INSERT INTO memes(id, content_hash, phash, first_seen, width, height)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET content_hash = excluded.content_hash,
                       phash = excluded.phash, first_seen = excluded.first_seen,
                       width = excluded.width, height = excluded.height""",
                (meme.id, meme.content_hash, meme.phash, iso(meme.first_seen), meme.width, meme.height))
            for position, section in enumerate(meme.sections):
                self.db.execute(
                    """INSERT INTO sections(meme_id, position, type, kind, source, body)
                       VALUES (?, ?, ?, ?, ?, ?)
                       ON CONFLICT(meme_id, type, kind, source)
                       DO UPDATE SET position = excluded.position, body = excluded.body
                       WHERE sections.position != excluded.position OR sections.body != excluded.body""",
                    (meme.id, position, *section_key(section), section.text))
            for sighting in meme.sightings:
                self.add_sighting(meme.id, sighting)
            if meme.content_hash:
                for other in meme.kept_apart:
                    self.put_identity_rule(meme.content_hash, "apart", other)
                for copy in meme.joined_by_hand:
                    self.put_identity_rule(copy, "with", meme.content_hash)

    def put_identity_rule(self, content_hash: str, rule: str, other: str) -> None:
        """Remember that the image with these bytes is kept `apart` from, or joined `with`, the
        meme whose bytes are `other`; a rule the other way round is dropped."""
        opposite = {"apart": "with", "with": "apart"}[rule]
        self.db.execute("DELETE FROM identity_rules WHERE content_hash = ? AND rule = ? AND other = ?",
                        (content_hash, opposite, other))
        self.db.execute("""INSERT INTO identity_rules(content_hash, rule, other) VALUES (?, ?, ?)
                           ON CONFLICT DO NOTHING""", (content_hash, rule, other))

    def identity_rules(self, content_hash: str) -> list[tuple[str, str]]:
        """(rule, other bytes) the user set for the image with these bytes."""
        return [(r[0], r[1]) for r in self.db.execute(
            "SELECT rule, other FROM identity_rules WHERE content_hash = ? ORDER BY rule, other", (content_hash,))]

    def merge_into(self, meme_id: str, other: Meme) -> None:
        """Meme `other` becomes sightings of meme `meme_id`: its files move, what OCR read on its
        pictures stays as a copy's text, the rest of its record goes."""
        with self.transaction():
            for sighting in other.sightings:
                self.add_sighting(meme_id, sighting)
            self.add_sections(meme_id, [OcrText(o.engine, o.text, copy=o.copy or (other.content_hash or other.id)[:16])
                                        for o in other.sections if isinstance(o, OcrText) and o.text.strip()])
            self.delete(other.id)

    def set_first_seen(self, meme_id: str, moment: datetime) -> None:
        self.db.execute("UPDATE memes SET first_seen = ? WHERE id = ?", (iso(moment), meme_id))

    def move_sightings(self, content_hash: str, to_meme: str) -> None:
        """Every sighting of these bytes becomes a sighting of `to_meme`."""
        self.db.execute("UPDATE sightings SET meme_id = ? WHERE content_hash = ?", (to_meme, content_hash))

    def drop_sections(self, meme_id: str, sections: Sequence[Section]) -> None:
        for section in sections:
            self.db.execute("DELETE FROM sections WHERE meme_id = ? AND type = ? AND kind = ? AND source = ?",
                            (meme_id, *section_key(section)))

    def add_sections(self, meme_id: str, sections: Sequence[Section]) -> None:
        """Add sections after a meme's others (one of the same kind and source is replaced)."""
        last = self.db.execute("SELECT coalesce(max(position), -1) FROM sections WHERE meme_id = ?",
                               (meme_id,)).fetchone()[0]
        for position, section in enumerate(sections, start=last + 1):
            self.db.execute(
                """INSERT INTO sections(meme_id, position, type, kind, source, body) VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT(meme_id, type, kind, source) DO UPDATE SET body = excluded.body""",
                (meme_id, position, *section_key(section), section.text))

    def add_sighting(self, meme_id: str, sighting: Sighting) -> None:
        """Record where a meme was seen; a path seen before now points at this meme."""
        self.db.execute(
            """INSERT INTO sightings(path, meme_id, seen_at, size, mtime, content_hash) VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(path) DO UPDATE SET meme_id = excluded.meme_id, size = excluded.size,
                   mtime = excluded.mtime, content_hash = coalesce(excluded.content_hash, sightings.content_hash),
                   seen_at = CASE WHEN sightings.meme_id = excluded.meme_id THEN sightings.seen_at
                                  ELSE excluded.seen_at END""",
            (path_to_db(sighting.path), meme_id, iso(sighting.seen_at), sighting.size, sighting.mtime,
             sighting.content_hash))
        self.db.execute(
            "UPDATE memes SET first_seen = ? WHERE id = ? AND (first_seen IS NULL OR first_seen > ?)",
            (iso(sighting.seen_at), meme_id, iso(sighting.seen_at)))

    def delete(self, meme_id: str) -> None:
        self.db.execute("DELETE FROM memes WHERE id = ?", (meme_id,))

    def sighting_paths(self) -> list[str]:
        return [path_from_db(r[0]) for r in self.db.execute("SELECT path FROM sightings")]

    def forget_sightings(self, paths: list[str]) -> None:
        with self.transaction():
            self.db.executemany("DELETE FROM sightings WHERE path = ?", [(path_to_db(p),) for p in paths])

    def orphans(self) -> list[str]:
        """Memes of images none of whose files is known any more."""
        return [r[0] for r in self.db.execute(
            "SELECT id FROM memes m WHERE content_hash IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM sightings s WHERE s.meme_id = m.id)")]

    def data_version(self) -> int | None:
        """A number that changes when another connection commits to the catalog (SQLite's
        `PRAGMA data_version`); None on a server, where nothing says so."""
        if self.on_server:
            return None
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    # --- the records/ folder (see `archive.recordsdir`) ----------------------------------------

    def changed_records(self, limit: int) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT meme_id FROM record_changes ORDER BY meme_id LIMIT ?", (limit,))]

    def note_every_record(self) -> None:
        """Every meme's record file is to be written anew."""
        self.db.execute("INSERT INTO record_changes(meme_id) SELECT id FROM memes "
                        "WHERE id NOT IN (SELECT meme_id FROM record_changes)")

    def records_written(self, meme_ids: Sequence[str]) -> None:
        with self.transaction():
            self.db.executemany("DELETE FROM record_changes WHERE meme_id = ?", [(i,) for i in meme_ids])

    # --- numbers ---------------------------------------------------------------------------

    def stats(self) -> dict:
        one = lambda sql: self.db.execute(sql).fetchone()[0]  # noqa: E731
        by_source = self.db.execute(
            """SELECT type, kind, source, count(*) FROM sections GROUP BY type, kind, source
               ORDER BY type, kind, source""").fetchall()
        return {
            "memes": one("SELECT count(*) FROM memes"),
            "memes_with_image": one("SELECT count(*) FROM memes WHERE content_hash IS NOT NULL"),
            "records_without_image": one("SELECT count(*) FROM memes WHERE content_hash IS NULL"),
            "sightings": one("SELECT count(*) FROM sightings"),
            "with_ocr_text": one("SELECT count(DISTINCT meme_id) FROM sections WHERE type = 'ocr' AND body != ''"),
            "annotations": {f"{kind} ({source})": n for t, kind, source, n in by_source if t == "annotation"},
            "first_seen": [one("SELECT min(first_seen) FROM memes"), one("SELECT max(first_seen) FROM memes")],
        }

