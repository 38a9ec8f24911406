"""One writer per archive, and no reader of Chroma beside it.

Chroma's embedded mode breaks its vectors silently when two processes write one path, and a
process that opens it while another writes may write too (it brings its index up to date), so:
every command that writes takes `writer_lock` (one file, exclusive, that says who holds it, and
the search lock, exclusive); a search takes `search_lock` (shared, never waiting) and reads
Chroma only when it gets it. When a writer is at work the search reads the catalog's copies of
the vectors instead (see `archive.vectors`).
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .errors import ArchiveLocked
from .model import utc_now

LOCK_FILE = "write.lock"
SEARCH_LOCK_FILE = "search.lock"


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    return f"pid {info.get('pid')} on {info.get('host')} ({info.get('command')}, since {info.get('since')})"


@contextmanager
def writer_lock(archive_dir: Path, command: str | None = None, wait: bool = False,
                on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the archive's write lock, or raise ArchiveLocked naming the holder. With `wait`,
    block until the holder is done (`on_wait` hears who it is first)."""
    archive_dir.mkdir(parents=True, exist_ok=True)
    path = archive_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise ArchiveLocked(f"{archive_dir} is being written by {_holder(path)}; "
                                    "try again when it is done, or use --wait") from None
            if on_wait:
                on_wait(f"waiting for {_holder(path)} to finish writing {archive_dir}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "command": command or " ".join(["memes", *sys.argv[1:]])[:200],
                "since": utc_now().isoformat()}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode())
        search_fd = os.open(archive_dir / SEARCH_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(search_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait:
                    on_wait("waiting for searches in progress to finish")
                fcntl.flock(search_fd, fcntl.LOCK_EX)  # searches are short and take no new turn
            yield
        finally:
            try:  # a new generation: long-lived readers know to open Chroma afresh
                os.ftruncate(search_fd, 0)
                os.pwrite(search_fd, f"{time.time_ns()}-{os.getpid()}".encode(), 0)
            except OSError:  # a full disk: the error that stopped the writer is the one to tell
                pass
            finally:
                os.close(search_fd)
    finally:
        os.close(fd)  # closing releases the lock


@dataclass
class Reading:
    writer: str | None  # who is writing the archive; None when Chroma may be read
    generation: str  # changes whenever a writer finishes


@contextmanager
def search_lock(archive_dir: Path) -> Iterator[Reading]:
    """Shared hold on the archive for reading Chroma, or, holding nothing, word of who is
    writing it (then read the catalog's copies instead)."""
    path = archive_dir / SEARCH_LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a read-only archive has no writer either
        yield Reading(None, "")
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            reading = Reading(None, os.pread(fd, 100, 0).decode(errors="replace"))
        except BlockingIOError:
            reading = Reading(_holder(archive_dir / LOCK_FILE), "")
        yield reading
    finally:
        os.close(fd)
