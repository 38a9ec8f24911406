"""The desktop of the machine memes runs on: open a file with its opener, show it in its folder,
put an image on the clipboard. Each uses the desktop's own tool (`xdg-open`, `wl-copy` or
`xclip` on Linux; `open` and `osascript` on macOS; the shell on Windows) and says, as
`DesktopUnavailable`, which tool is missing where there is none.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

from archive.errors import MemesError

TOOL_TIMEOUT_S = 10


class DesktopUnavailable(MemesError):
    """This machine has no tool for what was asked (no desktop, or none installed)."""


def open_file(path: str) -> None:
    """Open `path` with the desktop's application for it."""
    if sys.platform == "win32":
        os.startfile(path)  # type: ignore[attr-defined]  # noqa: S606
    elif sys.platform == "darwin":
        _start(["open", path])
    else:
        _start([_tool("xdg-open", "a desktop opener (xdg-utils)"), path])


def show_in_folder(path: str) -> None:
    """Open the folder that holds `path`, with the file selected where the desktop can."""
    if sys.platform == "win32":
        _start(["explorer", f"/select,{path}"])
    elif sys.platform == "darwin":
        _start(["open", "-R", path])
    elif not _select_in_file_manager(path):
        _start([_tool("xdg-open", "a desktop opener (xdg-utils)"), str(Path(path).parent)])


def copy_image(data: bytes) -> str:
    """Put the image `data` (any format Pillow reads) on the clipboard as a PNG, the format chat
    apps take. Returns the tool that did it."""
    png = _as_png(data)
    if sys.platform == "darwin":
        return _copy_on_mac(png)
    if os.environ.get("WAYLAND_DISPLAY") and shutil.which("wl-copy"):
        _feed(["wl-copy", "--type", "image/png"], png)
        return "wl-copy"
    if os.environ.get("DISPLAY") and shutil.which("xclip"):
        _feed(["xclip", "-selection", "clipboard", "-t", "image/png", "-i"], png)
        return "xclip"
    raise DesktopUnavailable("no clipboard tool here: copying an image needs a desktop session with wl-copy "
                             "(wl-clipboard, Wayland) or xclip (X11)")


def _tool(name: str, what: str) -> str:
    found = shutil.which(name)
    if found is None or not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise DesktopUnavailable(f"no desktop here to open files with: this needs {what} in a desktop session")
    return found


def _start(argv: list[str]) -> None:
    """Start a desktop tool and leave it running (an opener may stay until its window closes)."""
    try:
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    except OSError as exc:
        raise DesktopUnavailable(f"{argv[0]} could not be started: {exc.strerror or exc}") from None


def _feed(argv: list[str], data: bytes) -> None:
    try:
        done = subprocess.run(argv, input=data, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=TOOL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DesktopUnavailable(f"{argv[0]} failed: {exc}") from None
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise DesktopUnavailable(f"{argv[0]} failed: {said[-1] if said else f'exit status {done.returncode}'}")


def _select_in_file_manager(path: str) -> bool:
    """Ask the file manager (the freedesktop FileManager1 interface) to show `path` selected."""
    gdbus = shutil.which("gdbus")
    if gdbus is None or not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return False
    try:
        done = subprocess.run([gdbus, "call", "--session", "--dest", "org.freedesktop.FileManager1",
                               "--object-path", "/org/freedesktop/FileManager1",
                               "--method", "org.freedesktop.FileManager1.ShowItems",
                               f"['{Path(path).as_uri()}']", ""],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=TOOL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _copy_on_mac(png: bytes) -> str:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".png") as tmp:
        tmp.write(png)
        tmp.flush()
        _feed(["osascript", "-e", f'set the clipboard to (read (POSIX file "{tmp.name}") as «class PNGf»)'], b"")
    return "osascript"


def _as_png(data: bytes) -> bytes:
    from indexer.imageio import ImageLoadError, decode

    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    try:
        image = decode(data).rgb
    except ImageLoadError as exc:
        raise MemesError(f"the image cannot be copied: {exc}") from None
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
