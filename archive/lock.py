"""One writer per archive: an advisory lock file that says who holds it.

Chroma's embedded mode breaks its vectors silently when two processes write one path, so
every command that writes takes this lock; readers (search) do not.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .errors import ArchiveLocked
from .model import utc_now

LOCK_FILE = "write.lock"


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
        yield
    finally:
        os.close(fd)  # closing releases the lock
