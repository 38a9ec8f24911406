"""Whether an embedded vector index can be trusted before this process opens it.

Chroma reads its HNSW files with native code: random bytes in them crash the process that
searches them (a segmentation fault, with no message). So the index is opened in a process of the
tool only when its files are as the last process that wrote them left them: a writer that closes
the index writes a seal beside it (the size and modification time of every file). Where the files
differ from the seal (changed by something else, or no seal yet), a child process opens the index
first and runs queries in every collection (`probe`); only when it comes back whole is the index
sealed again and opened here. The collections' own files that no collection uses any more (Chroma
leaves them behind when a collection is deleted) are found here too.
"""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from .errors import first_line

PROBE_QUERIES = 48  # stored vectors used as queries in each collection, spread over it
PROBE_TIMEOUT = 300
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_VOLATILE = ("-shm", "-journal", "-wal")  # SQLite's side files change as readers come and go


def seal_path(directory: Path) -> Path:
    return directory.with_name(directory.name + ".seal")


def snapshot(directory: Path) -> dict[str, list[int]]:
    """Every file of the index: its size and modification time."""
    found = {}
    for folder, _, files in os.walk(directory):
        for name in files:
            if name.endswith(_VOLATILE):
                continue
            path = os.path.join(folder, name)
            try:
                info = os.stat(path)
            except OSError:
                continue
            found[os.path.relpath(path, directory)] = [info.st_size, info.st_mtime_ns]
    return found


def seal(directory: Path) -> None:
    """Say that the index is as a process of this tool left it (nothing is said where the archive
    cannot be written: the next process checks again)."""
    target = seal_path(directory)
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    try:
        partial.write_text(json.dumps(snapshot(directory), sort_keys=True))
        partial.replace(target)
    except OSError:
        partial.unlink(missing_ok=True)


def unseal(directory: Path) -> None:
    seal_path(directory).unlink(missing_ok=True)


def is_sealed(directory: Path) -> bool:
    try:
        return json.loads(seal_path(directory).read_text()) == snapshot(directory)
    except (OSError, ValueError):
        return False


def check(directory: Path) -> str | None:
    """None when the index at `directory` may be opened here; otherwise what is wrong with it."""
    if not directory.exists() or is_sealed(directory):
        return None
    return deep_check(directory)


def deep_check(directory: Path) -> str | None:
    """Open the index in a child process and query every collection; seal it when it is whole."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([sys.executable, "-m", "archive.vectorcheck", str(directory)], capture_output=True,
                              text=True, timeout=PROBE_TIMEOUT, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"opening it took over {PROBE_TIMEOUT} s"
    if done.returncode == 0:
        seal(directory)
        return None
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        return f"opening it crashed the process ({name})"
    said = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return said[-1].strip() if said else f"opening it failed (exit {done.returncode})"


def unused_files(directory: Path) -> list[Path]:
    """Folders of collections Chroma no longer has (deleted or rebuilt collections leave them)."""
    catalog = directory / "chroma.sqlite3"
    if not catalog.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
        try:
            used = {r[0] for r in db.execute("SELECT id FROM segments")}
        finally:
            db.close()
    except sqlite3.Error:  # Chroma's own catalog unreadable: nothing is known to be unused
        return []
    return sorted(p for p in directory.iterdir() if p.is_dir() and _UUID.match(p.name) and p.name not in used)


def _probe(directory: str) -> None:
    """Run in the child: open the index and query each collection with vectors spread over it."""
    import chromadb
    import numpy as np
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=directory, settings=Settings(anonymized_telemetry=False))
    for collection in client.list_collections():
        total = collection.count()
        if total == 0:
            continue
        step = max(1, total // PROBE_QUERIES)
        vectors = []
        for offset in range(0, total, step)[:PROBE_QUERIES]:
            found = collection.get(include=["embeddings"], limit=1, offset=offset)
            vectors += list(found["embeddings"])
        queries = np.asarray(vectors, dtype=np.float32)
        rng = np.random.default_rng(0)
        queries = np.concatenate([queries, rng.standard_normal((8, queries.shape[1])).astype(np.float32)])
        collection.query(query_embeddings=queries, n_results=min(total, 20), include=["distances"])


if __name__ == "__main__":
    try:
        _probe(sys.argv[1])
    except BaseException as exc:  # noqa: BLE001 - the child reports anything, in one line
        print(f"it cannot be read ({type(exc).__name__}: {first_line(exc)})")
        sys.exit(1)
