"""The archive as the web app uses it: one reader and one writer at a time, side by side.

Reads (searches, pages, images) take the read lock; writes (an upload added, a split, a join)
take the write lock and the archive's single-writer lock. A read never waits for a write: while
one is under way, searches read what the catalog has committed (see `archive.lock`), as they do
beside a `memes index` in another process. Every domain error becomes a status and a message.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from fastapi import HTTPException

from archive.errors import ArchiveLocked, MemeNotFound, MemesError, StoreUnavailable
from memes.app import Archive

T = TypeVar("T")


class Gallery:
    def __init__(self, archive: Archive):
        self.archive = archive
        self._read = threading.Lock()
        self._write = threading.Lock()

    @contextmanager
    def reading(self) -> Iterator[Archive]:
        with self._read, _translated():
            yield self.archive

    def read(self, use: Callable[[Archive], T]) -> Callable[[], T]:
        """`use` as a call to run under the read lock (for `run_in_threadpool`)."""
        def run() -> T:
            with self.reading() as a:
                return use(a)
        return run

    def unlocked(self, use: Callable[[Archive], T]) -> Callable[[], T]:
        """`use` as a call that takes no lock: work that touches none of the archive's shared
        state (decoding an upload), with its errors translated."""
        def run() -> T:
            with _translated():
                return use(self.archive)
        return run

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
    except StoreUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    except MemesError as exc:
        raise HTTPException(422, str(exc)) from None
