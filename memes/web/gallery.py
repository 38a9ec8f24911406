"""The archive as the web app uses it: one reader and one writer at a time, side by side.

Reads (searches, pages, images) take the read lock; writes (an upload added, a split, a join)
take the write lock and the archive's single-writer lock. A read never waits for a write: while
one is under way, searches read what the catalog has committed (see `archive.lock`), as they do
beside a `memes index` in another process. Every domain error becomes a status and a message.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from fastapi import HTTPException

from archive.errors import ArchiveLocked, MemeNotFound, MemesError
from memes.app import Archive


class Gallery:
    def __init__(self, archive: Archive):
        self.archive = archive
        self._read = threading.Lock()
        self._write = threading.Lock()

    @contextmanager
    def reading(self) -> Iterator[Archive]:
        with self._read, _translated():
            yield self.archive

    @contextmanager
    def writing(self) -> Iterator[Archive]:
        with self._write, _translated(), self.archive.lock():
            yield self.archive


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except MemeNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except ArchiveLocked as exc:
        raise HTTPException(409, str(exc)) from None
    except MemesError as exc:
        raise HTTPException(422, str(exc)) from None
