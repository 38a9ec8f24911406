"""Where the records live: SQLite in the archive directory (the default) or a PostgreSQL server
that several machines reach (`records_url = "postgresql://..."`).

Both are reached through one small interface, so the catalog has one code path: SQL is
written once, with `?` and `:name` parameters, in the SQL both engines speak (upserts with
`ON CONFLICT`, no `INSERT OR REPLACE`); the PostgreSQL side turns the parameters into
psycopg's. Rows answer to both a column's position and its name. What differs (the schema's
DDL, its version mark, ranked keyword search) is asked of `dialect`.
"""
from __future__ import annotations

import re
import sqlite3
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote
from typing import Iterable, Iterator, Sequence

from .disk import catalog_damaged, disk_full, read_only
from .errors import ConfigError, DiskFull, StoreUnavailable, first_line, store_failed

SQLITE, POSTGRESQL = "sqlite", "postgresql"


def is_server_url(location: str | Path | None) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def open_database(location: str | Path) -> "Database":
    """A SQLite file (a path) or a PostgreSQL server (a `postgresql://` URL)."""
    if is_server_url(location):
        return PostgresDatabase(str(location))
    if isinstance(location, str) and "://" in location:
        raise ConfigError(f"records_url must be a postgresql:// URL (or empty for SQLite), got {location!r}")
    return SqliteDatabase(Path(location))


class Database:
    """One connection to the records, shared by the threads of one process."""

    dialect: str

    def __init__(self):
        self._readers = threading.local()

    def execute(self, sql: str, params: Sequence | dict = ()):
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        raise NotImplementedError

    def script(self, sql: str) -> None:
        """Run several statements (a migration)."""
        raise NotImplementedError

    @property
    def in_transaction(self) -> bool:
        raise NotImplementedError

    def _begin(self) -> None:
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit everything inside, or nothing. Nested use joins the outer transaction."""
        if self.in_transaction:
            yield
            return
        self._begin()
        try:
            yield
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def reader(self) -> "Database":
        """A connection of this thread's own, for reads made beside the main thread's writes."""
        reader = getattr(self._readers, "db", None)
        if reader is None:
            reader = self._readers.db = self._open_reader()
        return reader

    def _open_reader(self) -> "Database":
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def checkpoint(self) -> None:
        """Make the main file whole (SQLite's write-ahead log folded into it); nothing elsewhere."""

    def problems(self) -> list[str]:
        """What an integrity check finds wrong (nothing: an empty list)."""
        return []


class SqliteDatabase(Database):
    """A SQLite file in WAL mode. `read_only` opens it for reading (`immutable` too where the
    folder cannot be written, as on a read-only mount: then nothing, not even a lock, is asked of
    the disk). SQLite's errors about the file itself become domain errors naming it."""

    dialect = SQLITE

    def __init__(self, path: Path, read_only: bool = False, immutable: bool = False):
        super().__init__()
        self.path = Path(path)
        self.immutable = immutable
        with self._failures():
            if read_only or immutable:
                uri = f"file:{quote(str(self.path))}?mode=ro" + ("&immutable=1" if immutable else "")
                self.db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
            else:
                self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.execute("PRAGMA foreign_keys=ON")
            self.db.row_factory = sqlite3.Row
            self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the header: is it SQLite?

    @contextmanager
    def _failures(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise sqlite_failure(exc, self.path) from None

    def execute(self, sql, params=()):
        with self._failures():
            return _Cursor(self.db.execute(sql, params), self._failures)

    def executemany(self, sql, rows):
        with self._failures():
            self.db.executemany(sql, rows)

    def script(self, sql):
        with self._failures():
            for statement in _sqlite_statements(sql):
                self.db.execute(statement)

    def checkpoint(self) -> None:
        with self._failures():
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def problems(self) -> list[str]:
        try:
            rows = self.db.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as exc:
            return [first_line(exc)]
        return [r[0] for r in rows if r[0] != "ok"]

    def backup_to(self, target: Path) -> None:
        """A consistent copy of the whole database at `target` (SQLite's online backup: readers
        and the writer of this file go on meanwhile)."""
        with self._failures():
            copy = sqlite3.connect(target)
            try:
                self.db.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")  # one file, whole by itself
            finally:
                copy.close()

    @property
    def in_transaction(self) -> bool:
        return self.db.in_transaction

    def _begin(self):
        self.db.execute("BEGIN IMMEDIATE")

    def _open_reader(self):
        return SqliteDatabase(self.path, read_only=True, immutable=self.immutable)

    def close(self):
        self.db.close()


class _Cursor:
    """A sqlite3 cursor whose reads translate damage as `execute` does (a damaged page may be met
    only when the rows are read)."""

    def __init__(self, cursor: sqlite3.Cursor, failures):
        self._cursor = cursor
        self._failures = failures

    def fetchone(self):
        with self._failures():
            return self._cursor.fetchone()

    def fetchall(self):
        with self._failures():
            return self._cursor.fetchall()

    def __iter__(self):
        with self._failures():
            yield from self._cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self):
        return self._cursor.lastrowid


def sqlite_failure(exc: sqlite3.DatabaseError, path: Path) -> Exception:
    """SQLite's complaint about a file as a domain error naming it (other errors as they are)."""
    said = str(exc).lower()
    if "disk is full" in said or ("disk i/o error" in said and disk_full(path.parent)):
        return DiskFull(f"no space left on the disk holding {path} ({first_line(exc)})")
    if "readonly" in said or "read-only" in said:
        return read_only(path)
    if "malformed" in said or "not a database" in said or "disk i/o error" in said or "encrypted" in said:
        return catalog_damaged(path, f"is damaged ({first_line(exc)})")
    return exc


def _sqlite_statements(script: str) -> list[str]:
    """Split a script into statements, keeping trigger bodies whole."""
    statements, current = [], ""
    for line in script.strip().splitlines():
        current += line + "\n"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements


class Row(tuple):
    """A result row that answers to a column's position and to its name, as sqlite3.Row does."""

    def __new__(cls, values, names: dict[str, int]):
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key):
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor):
    names = {c.name: n for n, c in enumerate(cursor.description or [])}
    return lambda values: Row(values, names)


_TOKENS = re.compile(r"'(?:[^']|'')*'|\?|(?<!:):([A-Za-z_]\w*)|%")


@lru_cache(maxsize=512)
def to_pyformat(sql: str) -> str:
    """`?` and `:name` parameters as psycopg's `%s` and `%(name)s`; a literal `%` doubled."""
    def swap(match: re.Match) -> str:
        token = match.group(0)
        if token.startswith("'"):
            return token.replace("%", "%%")
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        return f"%({match.group(1)})s"

    return _TOKENS.sub(swap, sql)


class PostgresDatabase(Database):
    dialect = POSTGRESQL

    def __init__(self, url: str):
        try:
            import psycopg
        except ImportError:  # pragma: no cover - a dependency of the project
            raise ConfigError("records on PostgreSQL need the psycopg package (pip install 'psycopg[binary]')") from None
        super().__init__()
        self.url = url
        self._psycopg = psycopg
        try:
            self.db = psycopg.connect(url, autocommit=True, row_factory=_row_factory, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"cannot reach the records server {without_password(url)}: {first_line(exc)}") from None

    @contextmanager
    def _failures(self) -> Iterator[None]:
        """The server's failures (a connection lost mid-run, a statement refused) as the domain's."""
        try:
            yield
        except self._psycopg.Error as exc:
            raise store_failed("records server", exc) from None

    def execute(self, sql, params=()):
        with self._failures():
            if not params:  # no parameters: psycopg sends the text as it is
                return self.db.execute(sql)
            return self.db.execute(to_pyformat(sql), params)

    def executemany(self, sql, rows):
        rows = list(rows)
        if rows:
            with self._failures(), self.db.cursor() as cursor:
                cursor.executemany(to_pyformat(sql), rows)

    def script(self, sql):
        with self._failures():
            self.db.execute(sql)

    @property
    def in_transaction(self) -> bool:
        return self.db.info.transaction_status != self._psycopg.pq.TransactionStatus.IDLE

    def _begin(self):
        self.db.execute("BEGIN")

    def _open_reader(self):
        return PostgresDatabase(self.url)

    def close(self):
        self.db.close()


def without_password(url: str) -> str:
    """A URL fit to print: without its password."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
