"""The catalog's tables: SQLite's migrations in order, the same schema on PostgreSQL made in one
step, and `migrate`, which brings a database up to date. A new migration goes into both lists
(`tests/test_catalog.py` checks that both describe the same tables and columns)."""
from __future__ import annotations

from .database import POSTGRESQL, Database

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


SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: Database) -> None:
    """Bring the catalog's tables up to date."""
    if db.dialect == POSTGRESQL:
        _migrate_postgres(db)
        return
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        with db.transaction():
            db.script(script)
            db.execute(f"PRAGMA user_version={number}")


def _migrate_postgres(db: Database) -> None:
    """The schema as SQLite's migrations leave it, made in one step; later migrations go into
    both lists. An advisory lock keeps indexers that start together from racing."""
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(7275617)")  # any constant of our own
        db.execute("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)")
        row = db.execute("SELECT max(version) FROM schema_version").fetchone()
        version = row[0] or 0
        for number, script in POSTGRES_MIGRATIONS.items():
            if number > version:
                db.script(script)
                db.execute("INSERT INTO schema_version VALUES (?)", (number,))
