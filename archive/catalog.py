"""The catalog: the source of truth for every record, in SQLite in the archive directory or
on a PostgreSQL server (see `archive.database`: one code path, SQL written once).

Memes, their sightings and their text sections (annotations and OCR) live here; Chroma holds
only vectors, which can always be rebuilt from this. Ranked keyword search still matches glued
or misread words: SQLite's FTS5 with the trigram tokenizer (BM25 over character trigrams), or
PostgreSQL's pg_trgm (nearest by trigram word similarity, GiST-indexed).
"""
from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .database import POSTGRESQL, Database, Row, SqliteDatabase, is_server_url, open_database
from .errors import MemeNotFound, ReadOnlyArchive
from .model import Annotation, Meme, OcrText, Section, Sighting, utc_now

def _record_triggers() -> str:
    """Triggers noting the meme of every row written in memes, sightings and sections (see
    migration 6). Not `INSERT OR IGNORE`: an upsert's own conflict handling overrides it in a trigger."""
    note = "INSERT INTO record_changes SELECT {0} WHERE NOT EXISTS (SELECT 1 FROM record_changes WHERE meme_id = {0});"
    triggers = []
    for table, key in (("memes", "id"), ("sightings", "meme_id"), ("sections", "meme_id")):
        for event, rows in (("INSERT", ("new",)), ("UPDATE", ("old", "new")), ("DELETE", ("old",))):
            body = "\n".join(note.format(f"{row}.{key}") for row in rows)
            triggers.append(f"CREATE TRIGGER {table}_record_{event.lower()} AFTER {event} ON {table} BEGIN\n{body}\nEND;")
    return "\n".join(triggers)


MIGRATIONS = [
    """
    CREATE TABLE memes(
        id TEXT PRIMARY KEY,
        content_hash TEXT UNIQUE,
        phash TEXT,
        first_seen TEXT,
        width INTEGER,
        height INTEGER,
        added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'))
    );
    CREATE INDEX memes_phash ON memes(phash);
    CREATE TABLE sightings(
        path TEXT PRIMARY KEY,
        meme_id TEXT NOT NULL REFERENCES memes(id) ON DELETE CASCADE,
        seen_at TEXT NOT NULL,
        size INTEGER,
        mtime REAL
    );
    CREATE INDEX sightings_meme ON sightings(meme_id);
    CREATE TABLE sections(
        id INTEGER PRIMARY KEY,
        meme_id TEXT NOT NULL REFERENCES memes(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('annotation', 'ocr')),
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (meme_id, type, kind, source)
    );
    CREATE TABLE vectors(
        meme_id TEXT NOT NULL REFERENCES memes(id) ON DELETE CASCADE,
        space TEXT NOT NULL,
        model TEXT NOT NULL,
        PRIMARY KEY (meme_id, space)
    );
    CREATE VIRTUAL TABLE sections_fts USING fts5(
        body, content='sections', content_rowid='id', tokenize='trigram');
    CREATE TRIGGER sections_ai AFTER INSERT ON sections BEGIN
        INSERT INTO sections_fts(rowid, body) VALUES (new.id, new.body);
    END;
    CREATE TRIGGER sections_ad AFTER DELETE ON sections BEGIN
        INSERT INTO sections_fts(sections_fts, rowid, body) VALUES ('delete', old.id, old.body);
    END;
    CREATE TRIGGER sections_au AFTER UPDATE ON sections BEGIN
        INSERT INTO sections_fts(sections_fts, rowid, body) VALUES ('delete', old.id, old.body);
        INSERT INTO sections_fts(rowid, body) VALUES (new.id, new.body);
    END;
    """,
    """
    CREATE TABLE annotation_jobs(
        meme_id TEXT NOT NULL REFERENCES memes(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt_hash TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
        reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (meme_id, kind, source)
    );
    CREATE INDEX annotation_jobs_status ON annotation_jobs(status);
    CREATE TABLE annotation_history(
        meme_id TEXT NOT NULL REFERENCES memes(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        prompt_hash TEXT,
        body TEXT NOT NULL,
        replaced_at TEXT NOT NULL
    );
    """,
    # The vectors themselves, beside Chroma's index of them: searches read these (an exact scan)
    # while an index run writes, and a damaged Chroma is rebuilt from them without any model.
    """
    CREATE TABLE embeddings(
        space TEXT NOT NULL,
        item_id TEXT NOT NULL,
        meme_id TEXT NOT NULL REFERENCES memes(id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        vector BLOB NOT NULL,
        meta TEXT,
        PRIMARY KEY (space, item_id)
    );
    CREATE INDEX embeddings_meme ON embeddings(space, meme_id);
    """,
    # A sighting's own bytes: a repost (re-encoded, cropped, framed) is a sighting of the meme it
    # repeats, and a re-run must know its bytes without reading them again.
    """
    ALTER TABLE sightings ADD COLUMN content_hash TEXT;
    CREATE INDEX sightings_content ON sightings(content_hash);
    UPDATE sightings SET content_hash = (SELECT content_hash FROM memes WHERE memes.id = sightings.meme_id);
    """,
    # What the user said about meme identity (`memes split`, `memes join`), by the images' bytes,
    # so that no later grouping undoes it: 'apart' (an image is never joined to the meme whose
    # bytes are `other`) and 'with' (an image belongs to the meme whose bytes are `other`).
    """
    CREATE TABLE identity_rules(
        content_hash TEXT NOT NULL,
        rule TEXT NOT NULL CHECK (rule IN ('apart', 'with')),
        other TEXT NOT NULL,
        PRIMARY KEY (content_hash, rule, other)
    );
    CREATE INDEX identity_rules_other ON identity_rules(other);
    """,
    # Memes whose record changed since the archive's records/ folder was last written (see
    # `archive.recordsdir`), noted by triggers so no writer can forget one; every meme at first.
    """
    CREATE TABLE record_changes(meme_id TEXT PRIMARY KEY);
    INSERT INTO record_changes SELECT id FROM memes;
    """ + _record_triggers() + """
    CREATE TRIGGER identity_rules_record_ai AFTER INSERT ON identity_rules BEGIN
        INSERT INTO record_changes SELECT id FROM memes WHERE content_hash IN (new.content_hash, new.other)
            AND id NOT IN (SELECT meme_id FROM record_changes);
    END;
    """,
]


# The same schema on PostgreSQL, as SQLite's migrations 1-4 leave it: keyword search by pg_trgm
# instead of FTS5: the sections nearest the query by trigram word similarity, found through a
# GiST index (256-byte signatures: the default 12 saturate on long annotations). On 1,007
# rendered memes it ranks nearly as well as FTS5's BM25 (known item R@1 0.836 / R@10 0.931 against
# 0.838 / 0.944); on 50,350 sections a search takes 115 ms median (FTS5: 57 ms), where a GIN
# index with a similarity threshold took 307 ms (p95 1.6 s). Then BYTEA for BLOB, DOUBLE PRECISION
# where SQLite's REAL is a float64 already. A later migration is added to both lists.
POSTGRES_MIGRATIONS = {
    4: """
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE TABLE memes(
        id TEXT PRIMARY KEY,
        content_hash TEXT UNIQUE,
        phash TEXT,
        first_seen TEXT,
        width INTEGER,
        height INTEGER,
        added_at TEXT NOT NULL DEFAULT (to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'))
    );
    CREATE INDEX memes_phash ON memes(phash);
    CREATE TABLE sightings(
        path TEXT PRIMARY KEY,
        meme_id TEXT NOT NULL REFERENCES memes(id) ON DELETE CASCADE,
        seen_at TEXT NOT NULL,
        size BIGINT,
        mtime DOUBLE PRECISION,
        content_hash TEXT
    );
    CREATE INDEX sightings_meme ON sightings(meme_id);
    CREATE INDEX sightings_content ON sightings(content_hash);
    CREATE TABLE sections(
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        meme_id TEXT NOT NULL REFERENCES memes(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('annotation', 'ocr')),
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (meme_id, type, kind, source)
    );
    CREATE INDEX sections_trigrams ON sections USING gist (body gist_trgm_ops(siglen=256));
    CREATE TABLE vectors(
        meme_id TEXT NOT NULL REFERENCES memes(id) ON DELETE CASCADE,
        space TEXT NOT NULL,
        model TEXT NOT NULL,
        PRIMARY KEY (meme_id, space)
    );
    CREATE TABLE annotation_jobs(
        meme_id TEXT NOT NULL REFERENCES memes(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt_hash TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
        reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (meme_id, kind, source)
    );
    CREATE INDEX annotation_jobs_status ON annotation_jobs(status);
    CREATE TABLE annotation_history(
        meme_id TEXT NOT NULL REFERENCES memes(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        prompt_hash TEXT,
        body TEXT NOT NULL,
        replaced_at TEXT NOT NULL
    );
    CREATE TABLE embeddings(
        space TEXT NOT NULL,
        item_id TEXT NOT NULL,
        meme_id TEXT NOT NULL REFERENCES memes(id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        vector BYTEA NOT NULL,
        meta TEXT,
        PRIMARY KEY (space, item_id)
    );
    CREATE INDEX embeddings_meme ON embeddings(space, meme_id);
    """,
    5: MIGRATIONS[4],
    # The table only: records/ is written for SQLite archives (a records server has its own
    # backups, and several machines write it), so nothing fills it here.
    6: "CREATE TABLE record_changes(meme_id TEXT PRIMARY KEY);",
}

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def query_words(query: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(query)]


def trigram_expression(query: str) -> str | None:
    """An FTS5 OR-expression of the query's character trigrams, or None if it has none.

    Trigrams of the words as written match text with its spaces; trigrams of the words run
    together match OCR that glued them ("YESITIS"). Misread letters cost a few trigrams, not
    the whole word, so BM25 over trigrams tolerates OCR errors."""
    words = query_words(query)
    grams: dict[str, None] = {}
    for text in (" ".join(words), "".join(words)):
        grams.update(dict.fromkeys(text[i:i + 3] for i in range(len(text) - 2)))
    if not grams:
        return None
    return " OR ".join('"' + g.replace('"', '""') + '"' for g in grams)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


_BY_CONTENT = ("SELECT id FROM memes WHERE content_hash = ? "
               "UNION ALL SELECT meme_id FROM sightings WHERE content_hash = ? LIMIT 1")

_RAW = "raw:"  # stored paths are absolute; one starting with this holds undecodable bytes


def path_to_db(path: str) -> str:
    """File names need not be UTF-8 (Python keeps their bytes as surrogates); SQLite text must be.
    Such a path is stored as `raw:` and its bytes in hex."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return _RAW + os.fsencode(path).hex()


def path_from_db(text: str) -> str:
    return os.fsdecode(bytes.fromhex(text[len(_RAW):])) if text.startswith(_RAW) else text


COPY_KIND = "copy:"  # an OCR section read from an altered copy: kind "copy:<16 hex digits of its bytes>"


def _section_key(section: Section) -> tuple[str, str, str]:
    if isinstance(section, OcrText):
        return ("ocr", COPY_KIND + section.copy if section.copy else "ocr", section.engine)
    return ("annotation", section.kind, section.source)


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
            if self.db.execute("PRAGMA user_version").fetchone()[0] != len(MIGRATIONS):
                raise ReadOnlyArchive(f"{location} was made by another version of memes and cannot be brought "
                                      "up to date where it is (it cannot be written)")
            return
        self.db = open_database(location)
        self._migrate()

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

    def _migrate(self) -> None:
        if self.on_server:
            self._migrate_postgres()
            return
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                self.db.script(script)
                self.db.execute(f"PRAGMA user_version={number}")

    def _migrate_postgres(self) -> None:
        """The schema as SQLite's migrations leave it, made in one step; later migrations go
        into both lists. An advisory lock keeps indexers that start together from racing."""
        with self.transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(7275617)")  # any constant of our own
            self.db.execute("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)")
            row = self.db.execute("SELECT max(version) FROM schema_version").fetchone()
            version = row[0] or 0
            for number, script in POSTGRES_MIGRATIONS.items():
                if number > version:
                    self.db.script(script)
                    self.db.execute("INSERT INTO schema_version VALUES (?)", (number,))

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
        row = self.db.execute("SELECT * FROM memes WHERE id = ?", (meme_id,)).fetchone()
        if row is None:
            return None
        meme = Meme(id=row["id"], first_seen=_moment(row["first_seen"]), content_hash=row["content_hash"],
                    phash=row["phash"], width=row["width"], height=row["height"])
        for s in self.db.execute("SELECT * FROM sections WHERE meme_id = ? ORDER BY position, id", (meme_id,)):
            if s["type"] == "ocr":
                copy = s["kind"][len(COPY_KIND):] if s["kind"].startswith(COPY_KIND) else None
                meme.sections.append(OcrText(engine=s["source"], text=s["body"], copy=copy))
            else:
                meme.sections.append(Annotation(kind=s["kind"], source=s["source"], text=s["body"]))
        if meme.content_hash:
            meme.kept_apart = [r[0] for r in self.db.execute(
                "SELECT other FROM identity_rules WHERE content_hash = ? AND rule = 'apart' ORDER BY other",
                (meme.content_hash,))]
            meme.joined_by_hand = [r[0] for r in self.db.execute(
                "SELECT content_hash FROM identity_rules WHERE other = ? AND rule = 'with' ORDER BY content_hash",
                (meme.content_hash,))]
        meme.sightings = [Sighting(path=path_from_db(s["path"]), seen_at=_moment(s["seen_at"]), size=s["size"],
                                   mtime=s["mtime"], content_hash=s["content_hash"])
                          for s in self.db.execute(
                              "SELECT * FROM sightings WHERE meme_id = ? ORDER BY seen_at, path", (meme_id,))]
        return meme

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

    def has_content(self, content_hash: str) -> bool:
        """Whether committed records hold these bytes; safe to call from any thread."""
        return self.db.reader().execute(_BY_CONTENT, (content_hash, content_hash)).fetchone() is not None

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
            params.append(_iso(after))
        if before is not None:
            where.append("m.first_seen < ?")
            params.append(_iso(before))
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

    def match_sections(self, query: str, limit: int, own_connection: bool = False) -> list[Row]:
        """Sections matching the query's words, best first: meme_id, type, kind, source, score
        (higher is better, comparable only within one answer), body. Both engines compare
        character trigrams, of the words as written and run together, so misread and glued
        words still match. `own_connection`: read on the calling thread's own connection."""
        words = query_words(query)
        db = self.db.reader() if own_connection else self.db
        if self.on_server:
            spaced, glued = " ".join(words), "".join(words)
            if len(glued) < 3:
                return []
            best: dict[int, Row] = {}
            for form in dict.fromkeys((spaced, glued)):  # nearest by trigram word similarity (GiST)
                for row in db.execute(
                        """SELECT s.id, s.meme_id, s.type, s.kind, s.source, s.body,
                                  1 - (:form <<-> s.body) AS score
                           FROM sections s ORDER BY :form <<-> s.body LIMIT :limit""",
                        {"form": form, "limit": limit}):
                    if row["score"] > 0 and (row["id"] not in best or row["score"] > best[row["id"]]["score"]):
                        best[row["id"]] = row
            return sorted(best.values(), key=lambda r: (-r["score"], r["id"]))[:limit]
        expression = trigram_expression(query)
        if expression is None:
            return []
        return db.execute(  # ranked before the join: only the best rows' bodies are read
            """SELECT s.meme_id, s.type, s.kind, s.source, s.body, f.score
               FROM (SELECT rowid, -bm25(sections_fts) AS score FROM sections_fts
                     WHERE sections_fts MATCH ? ORDER BY score DESC LIMIT ?) f
               JOIN sections s ON s.id = f.rowid ORDER BY f.score DESC""",
            (expression, limit)).fetchall()

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
                (meme.id, meme.content_hash, meme.phash, _iso(meme.first_seen), meme.width, meme.height))
            for position, section in enumerate(meme.sections):
                self.db.execute(
                    """INSERT INTO sections(meme_id, position, type, kind, source, body)
                       VALUES (?, ?, ?, ?, ?, ?)
                       ON CONFLICT(meme_id, type, kind, source)
                       DO UPDATE SET position = excluded.position, body = excluded.body
                       WHERE sections.position != excluded.position OR sections.body != excluded.body""",
                    (meme.id, position, *_section_key(section), section.text))
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
        self.db.execute("UPDATE memes SET first_seen = ? WHERE id = ?", (_iso(moment), meme_id))

    def move_sightings(self, content_hash: str, to_meme: str) -> None:
        """Every sighting of these bytes becomes a sighting of `to_meme`."""
        self.db.execute("UPDATE sightings SET meme_id = ? WHERE content_hash = ?", (to_meme, content_hash))

    def drop_sections(self, meme_id: str, sections: Sequence[Section]) -> None:
        for section in sections:
            self.db.execute("DELETE FROM sections WHERE meme_id = ? AND type = ? AND kind = ? AND source = ?",
                            (meme_id, *_section_key(section)))

    def add_sections(self, meme_id: str, sections: Sequence[Section]) -> None:
        """Add sections after a meme's others (one of the same kind and source is replaced)."""
        last = self.db.execute("SELECT coalesce(max(position), -1) FROM sections WHERE meme_id = ?",
                               (meme_id,)).fetchone()[0]
        for position, section in enumerate(sections, start=last + 1):
            self.db.execute(
                """INSERT INTO sections(meme_id, position, type, kind, source, body) VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT(meme_id, type, kind, source) DO UPDATE SET body = excluded.body""",
                (meme_id, position, *_section_key(section), section.text))

    def add_sighting(self, meme_id: str, sighting: Sighting) -> None:
        """Record where a meme was seen; a path seen before now points at this meme."""
        self.db.execute(
            """INSERT INTO sightings(path, meme_id, seen_at, size, mtime, content_hash) VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(path) DO UPDATE SET meme_id = excluded.meme_id, size = excluded.size,
                   mtime = excluded.mtime, content_hash = coalesce(excluded.content_hash, sightings.content_hash),
                   seen_at = CASE WHEN sightings.meme_id = excluded.meme_id THEN sightings.seen_at
                                  ELSE excluded.seen_at END""",
            (path_to_db(sighting.path), meme_id, _iso(sighting.seen_at), sighting.size, sighting.mtime,
             sighting.content_hash))
        self.db.execute(
            "UPDATE memes SET first_seen = ? WHERE id = ? AND (first_seen IS NULL OR first_seen > ?)",
            (_iso(sighting.seen_at), meme_id, _iso(sighting.seen_at)))

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

    # --- annotations made here -------------------------------------------------------------

    def put_annotation(self, meme_id: str, annotation: Annotation, model: str, prompt_hash: str) -> bool:
        """Store a fresh annotation and mark its job done. The text it replaces, if any, is kept
        in the history. Returns False (and stores nothing) when an imported annotation of the
        same kind and source is there: a record's own word is not overwritten by indexing."""
        key = (meme_id, "annotation", annotation.kind, annotation.source)
        with self.transaction():
            old = self.db.execute("SELECT body, position FROM sections WHERE meme_id = ? AND type = ? "
                                  "AND kind = ? AND source = ?", key).fetchone()
            job = self._job(meme_id, annotation.kind, annotation.source)
            if old is not None and (job is None or job["status"] != "done"):
                return False
            now = _iso(utc_now())
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
        with self.transaction():
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
            (meme_id, kind, source, model, prompt_hash, status, reason, _iso(utc_now())))

    def annotation_todo(self, kind: str, source: str, prompt_hash: str, mode: str) -> list[str]:
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

    def annotation_stats(self, current: dict[tuple[str, str], str]) -> dict:
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

    # --- which memes have vectors --------------------------------------------------------

    def needing_vectors(self, space: str, model: str, with_image_only: bool = False) -> list[str]:
        """Memes whose vectors in `space` are missing or were made by another model."""
        only = "AND m.content_hash IS NOT NULL" if with_image_only else ""
        return [r[0] for r in self.db.execute(
            f"""SELECT m.id FROM memes m LEFT JOIN vectors v ON v.meme_id = m.id AND v.space = ?
                WHERE (v.model IS NULL OR v.model != ?) {only} ORDER BY m.first_seen, m.id""", (space, model))]

    def mark_vectors(self, meme_ids: list[str], space: str, model: str) -> None:
        with self.transaction():
            self.db.executemany("INSERT INTO vectors(meme_id, space, model) VALUES (?, ?, ?) "
                                "ON CONFLICT(meme_id, space) DO UPDATE SET model = excluded.model",
                                [(i, space, model) for i in meme_ids])

    def unmark_vectors(self, meme_id: str, spaces: list[str] | None = None) -> None:
        if spaces is None:
            self.db.execute("DELETE FROM vectors WHERE meme_id = ?", (meme_id,))
        else:
            self.db.executemany("DELETE FROM vectors WHERE meme_id = ? AND space = ?",
                                [(meme_id, s) for s in spaces])

    def expecting_vectors(self, space: str) -> set[str]:
        """Memes the catalog says have vectors in `space` (and have something to embed there)."""
        has = {
            "image": "m.content_hash IS NOT NULL",
            "ocr_text": "EXISTS (SELECT 1 FROM sections s WHERE s.meme_id = m.id AND s.type = 'ocr' AND trim(s.body) != '')",
            "annotation_text": "EXISTS (SELECT 1 FROM sections s WHERE s.meme_id = m.id AND s.type = 'annotation')",
        }[space]
        return {r[0] for r in self.db.execute(
            f"SELECT m.id FROM memes m JOIN vectors v ON v.meme_id = m.id AND v.space = ? WHERE {has}", (space,))}

    # --- the vectors themselves (see `archive.vectors`) -------------------------------------

    def put_embeddings(self, space: str, model: str, item_ids: Sequence[str], vectors: np.ndarray,
                       metadatas: Sequence[dict]) -> None:
        rows = [(space, item, meta["meme_id"], model, np.asarray(vector, dtype="<f4").tobytes(),
                 json.dumps(meta, sort_keys=True))
                for item, vector, meta in zip(item_ids, vectors, metadatas)]
        with self.transaction():
            self.db.executemany(
                "INSERT INTO embeddings(space, item_id, meme_id, model, vector, meta) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(space, item_id) DO UPDATE SET meme_id = excluded.meme_id, model = excluded.model, "
                "vector = excluded.vector, meta = excluded.meta", rows)

    def drop_embeddings(self, space: str, meme_ids: Sequence[str] = (), item_ids: Sequence[str] = ()) -> None:
        with self.transaction():
            self.db.executemany("DELETE FROM embeddings WHERE space = ? AND meme_id = ?",
                                [(space, m) for m in meme_ids])
            self.db.executemany("DELETE FROM embeddings WHERE space = ? AND item_id = ?",
                                [(space, i) for i in item_ids])

    def embedding_models(self, space: str) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT model FROM embeddings WHERE space = ?", (space,))]

    def embedding_dim(self, space: str) -> int | None:
        row = self.db.execute("SELECT length(vector) FROM embeddings WHERE space = ? LIMIT 1", (space,)).fetchone()
        return row[0] // 4 if row else None  # float32

    def data_version(self) -> int | None:
        """A number that changes when another connection commits to the catalog (SQLite's
        `PRAGMA data_version`); None on a server, where nothing says so."""
        if self.on_server:
            return None
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def embedding_count(self, space: str) -> int:
        return self.db.execute("SELECT count(*) FROM embeddings WHERE space = ?", (space,)).fetchone()[0]

    def embedding_items(self, space: str) -> dict[str, str]:
        """item id -> meme id, for every vector kept in `space`."""
        return dict(self.db.execute("SELECT item_id, meme_id FROM embeddings WHERE space = ?", (space,)).fetchall())

    def embeddings(self, space: str, item_ids: Sequence[str] | None = None,
                   ) -> tuple[list[str], np.ndarray, list[dict]]:
        """Item ids, their vectors (one per row) and metadata; all of `space` (in SQLite in the
        order first stored, the order in which Chroma breaks ties between equal distances), or the
        ones asked for."""
        if item_ids is None:
            order = "item_id" if self.on_server else "rowid"
            rows = self.db.execute(f"SELECT item_id, vector, meta FROM embeddings WHERE space = ? ORDER BY {order}",
                                   (space,)).fetchall()
        else:
            rows = [r for i in item_ids for r in self.db.execute(
                "SELECT item_id, vector, meta FROM embeddings WHERE space = ? AND item_id = ?", (space, i))]
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32), []
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1)
        return [r[0] for r in rows], matrix, [json.loads(r[2] or "{}") for r in rows]

    def rename_embeddings(self, old: str, new: str) -> None:
        """Let the vectors of space `old` become those of `new` (a finished rebuild)."""
        with self.transaction():
            self.db.execute("DELETE FROM embeddings WHERE space = ?", (new,))
            self.db.execute("UPDATE embeddings SET space = ? WHERE space = ?", (new, old))

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

