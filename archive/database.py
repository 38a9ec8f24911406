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
from typing import Iterable, Iterator, Sequence

from .errors import ConfigError, StoreUnavailable, first_line

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


class SqliteDatabase(Database):
    dialect = SQLITE

    def __init__(self, path: Path, read_only: bool = False):
        super().__init__()
        self.path = path
        if read_only:
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30)
        else:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
        self.db.row_factory = sqlite3.Row

    def execute(self, sql, params=()):
        return self.db.execute(sql, params)

    def executemany(self, sql, rows):
        self.db.executemany(sql, rows)

    def script(self, sql):
        for statement in _sqlite_statements(sql):
            self.db.execute(statement)

    @property
    def in_transaction(self) -> bool:
        return self.db.in_transaction

    def _begin(self):
        self.db.execute("BEGIN IMMEDIATE")

    def _open_reader(self):
        return SqliteDatabase(self.path, read_only=True)

    def close(self):
        self.db.close()


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

    def execute(self, sql, params=()):
        if not params:  # no parameters: psycopg sends the text as it is
            return self.db.execute(sql)
        return self.db.execute(to_pyformat(sql), params)

    def executemany(self, sql, rows):
        rows = list(rows)
        if rows:
            with self.db.cursor() as cursor:
                cursor.executemany(to_pyformat(sql), rows)

    def script(self, sql):
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
