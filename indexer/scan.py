"""Finding image files under the paths a user gives."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .imageio import IMAGE_SUFFIXES


@dataclass
class Found:
    """A file to index, or a path that cannot be (with the reason)."""

    path: Path
    problem: str | None = None


def _display(path: str | Path) -> Path:
    return Path(os.path.abspath(path))


def scan(paths: Iterable[Path]) -> Iterator[Found]:
    """Image files under `paths`, recursively, each once, in a stable order.

    Folders are searched for files with image suffixes; files named explicitly are always
    tried. Symlinked folders are followed once (a loop is reported, not walked forever).
    """
    seen_files: set[str] = set()
    for given in paths:
        path = _display(given)
        if path.is_dir():
            yield from _walk(path, seen_files)
        elif path.is_file():
            if str(path) not in seen_files:
                seen_files.add(str(path))
                yield Found(path)
        elif path.exists():
            yield Found(path, "not a regular file")
        elif path.is_symlink():
            yield Found(path, "broken symbolic link")
        else:
            yield Found(path, "no such file or folder")


def _walk(root: Path, seen_files: set[str]) -> Iterator[Found]:
    visited_dirs: set[tuple[int, int]] = set()
    problems: list[Found] = []

    def on_error(err: OSError) -> None:
        problems.append(Found(_display(err.filename or root), err.strerror or str(err)))

    for folder, dirnames, filenames in os.walk(root, followlinks=True, onerror=on_error):
        yield from problems
        problems.clear()
        try:
            st = os.stat(folder)
        except OSError as exc:
            yield Found(_display(folder), exc.strerror or str(exc))
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in visited_dirs:
            yield Found(_display(folder), "symbolic link loop (folder already visited)")
            dirnames[:] = []
            continue
        visited_dirs.add((st.st_dev, st.st_ino))
        dirnames.sort()
        for name in sorted(filenames):
            if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            path = Path(folder) / name
            if str(path) in seen_files:
                continue
            seen_files.add(str(path))
            yield Found(path)
    yield from problems
