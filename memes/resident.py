"""The resident: a background process that keeps an archive's models loaded, so that `memes
search` and `memes similar` answer in a fraction of a second.

It listens on a Unix socket in the archive directory (`resident.sock`, mode 0600, and it answers
only its own user), runs each command it is handed exactly as the CLI would (the same code, in
the caller's working directory and with the caller's `MEMES_*` settings) and exits after a while
idle. The CLI hands a command to it where one answers and does the work itself where none does,
or where anything goes wrong on the way: a resident is a shortcut, never a requirement.

Nothing it keeps can go stale: it reads the catalog at every command, keeps the catalog's vector
copies only while SQLite says no other connection has committed (`PRAGMA data_version`), and
builds its archive anew when the catalog file or the exported models are replaced.

This module is imported before anything else of the CLI (`memes.entry`): it imports the
standard library only, until it serves.
"""
from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

SOCKET = "resident.sock"
LOCK = "resident.lock"
COMMANDS = ("search", "similar")  # what the CLI hands over
# global options of the CLI that take a value (the command name is the first other word)
_VALUED = {"--archive", "--clip-model", "--clip-pretrained", "--clip-checkpoint", "--text-model", "--ollama-host",
           "--records-url", "--chroma-url", "--chroma-token"}
_SETTINGS = ("MEMES_", "OLLAMA_HOST")  # the environment a command's configuration reads
_MAX_REPLY = 256 << 20
REPLY_SECONDS = 120.0


def _files_are_plain(argv: list[str]) -> bool:
    """A `--queries FILE` the resident can read as the caller would: a regular file (not a pipe,
    `/dev/stdin` or a process substitution, which are the caller's own)."""
    for i, word in enumerate(argv):
        value = argv[i + 1] if word == "--queries" and i + 1 < len(argv) else (
            word.split("=", 1)[1] if word.startswith("--queries=") else None)
        if value is not None and (value.startswith("/dev/") or not os.path.isfile(value)):
            return False
    return True


def command_of(argv: list[str]) -> tuple[str | None, str | None]:
    """(the command, the `--archive` value given) of a `memes` command line."""
    archive, i = None, 0
    while i < len(argv):
        word = argv[i]
        if word in _VALUED:
            if word == "--archive" and i + 1 < len(argv):
                archive = argv[i + 1]
            i += 2
            continue
        if word.startswith("--archive="):
            archive = word.split("=", 1)[1]
        elif not word.startswith("-"):
            return word, archive
        i += 1
    return None, archive


def archive_directory(given: str | None, environ=os.environ) -> Path:
    """Where the archive is, as `archive.config.resolve_config` finds it."""
    chosen = given or environ.get("MEMES_ARCHIVE")
    if not chosen:
        from archive.config import default_archive_dir

        return default_archive_dir()
    return Path(os.path.abspath(os.path.expanduser(chosen)))


# --- the client side: the `memes` command -------------------------------------------------------

def forwarded(argv: list[str]) -> tuple[int, str, str] | None:
    """Hand a search to the archive's resident: (exit code, stdout, stderr), or None where no
    resident answers (or the command is not one it takes) and the CLI must do the work."""
    command, given = command_of(argv)
    if command not in COMMANDS or "--help" in argv or not _files_are_plain(argv):
        return None
    path = archive_directory(given) / SOCKET
    try:
        if path.stat().st_uid != os.getuid():  # a socket someone else made: not ours to talk to
            return None
    except OSError:
        return None
    request = {"argv": argv, "cwd": os.getcwd(), "tty": sys.stdout.isatty(),
               "env": {k: v for k, v in os.environ.items() if k.startswith(_SETTINGS)}}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(2.0)
            conn.connect(str(path))
            if _peer_uid(conn) != os.getuid():
                return None
            conn.settimeout(REPLY_SECONDS)  # a resident that hangs: the CLI does the work after all
            _send(conn, request)
            reply = _receive(conn)
    except (OSError, ValueError):
        return None
    if not isinstance(reply, dict) or reply.get("fallback") or not isinstance(reply.get("code"), int):
        return None
    return reply["code"], str(reply.get("stdout", "")), str(reply.get("stderr", ""))


def running(directory: Path) -> bool:
    """Whether a resident answers for the archive in `directory`."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1.0)
            conn.connect(str(directory / SOCKET))
            return True
    except OSError:
        return False


def start_in_background(directory: Path, minutes: float) -> None:
    """Start a resident for the archive unless one runs; it outlives this command."""
    if not os.access(directory, os.W_OK) or running(directory):
        return
    subprocess.Popen([sys.executable, "-m", "memes", "--archive", str(directory), "resident", "--minutes", str(minutes)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, close_fds=True, cwd=directory)


def _send(conn: socket.socket, message: dict) -> None:
    data = json.dumps(message).encode()
    conn.sendall(struct.pack(">I", len(data)) + data)


def _receive(conn: socket.socket) -> dict:
    size = struct.unpack(">I", _exactly(conn, 4))[0]
    if size > _MAX_REPLY:
        raise ValueError("message too large")
    return json.loads(_exactly(conn, size))


def _exactly(conn: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = conn.recv(min(left, 1 << 20))
        if not chunk:
            raise ValueError("the other side closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# --- the server side: `memes resident` ----------------------------------------------------------

class CannotServe(Exception):
    """Another resident holds the archive, or no socket can be made in its folder."""


class Stop(BaseException):
    """Raised by a signal handler to leave at once, mid-command too (its caller then does the work
    itself): not an Exception, so no command mistakes it for its own failure."""


def serve(directory: Path, minutes: float, run, prepare=None) -> None:
    """Answer commands on the archive's socket until `minutes` pass with none. `run(argv, env,
    cwd, tty)` runs one command as the CLI does and returns (exit code, stdout, stderr);
    `prepare()` runs once the archive is this resident's (loads the models). Raises CannotServe."""
    import fcntl

    lock = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CannotServe(f"a resident already serves {directory}") from None
        path = directory / SOCKET
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_mask = os.umask(0o177)  # the socket is made 0600
        try:
            path.unlink(missing_ok=True)  # left by one that was killed: the lock says none runs
            listener.bind(str(path))
        except OSError as exc:  # a path too long for a socket, a file system without sockets
            listener.close()
            raise CannotServe(f"cannot make a socket at {path}: {exc.strerror or exc}") from None
        finally:
            os.umask(old_mask)
        listener.listen(8)
        listener.settimeout(max(1.0, minutes * 60))
        try:
            if prepare is not None:
                prepare()  # callers that come meanwhile wait in the queue
            while directory.is_dir() and path.exists():
                try:
                    conn, _ = listener.accept()
                except socket.timeout:
                    return  # idle long enough
                with conn:
                    _answer(conn, run)
        finally:
            listener.close()
            with suppress(OSError):
                path.unlink()
    finally:
        os.close(lock)


def _answer(conn: socket.socket, run) -> None:
    conn.settimeout(30.0)
    try:
        if _peer_uid(conn) != os.getuid():  # only its own user (and none where the system cannot say)
            return
        request = _receive(conn)
        conn.settimeout(None)
        argv, env, cwd = request["argv"], request["env"], request["cwd"]
        if command_of(argv)[0] not in COMMANDS:
            _send(conn, {"fallback": True})
            return
        try:
            code, out, err = run(list(argv), dict(env), str(cwd), bool(request.get("tty")))
        except Exception:  # noqa: BLE001 - the CLI, run by the caller itself, reports it properly
            _send(conn, {"fallback": True})
            return
        _send(conn, {"code": code, "stdout": out, "stderr": err})
    except (OSError, ValueError, KeyError, TypeError):
        pass  # the caller went away or sent nonsense; it does the work itself


def _peer_uid(conn: socket.socket) -> int | None:
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", creds)[1]
    except (OSError, AttributeError):
        return None
