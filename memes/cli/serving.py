"""Long-lived processes: `serve` (the web gallery) and `resident` (searches answered at once),
and `run_captured`, how a resident runs a caller's command."""
from __future__ import annotations

import io
import os
from functools import lru_cache
from typing import Optional

import typer

from archive.errors import MemesError

from .base import app, CtrlC, err, Resident, state_of, translated


@app.command()
@translated
def serve(ctx: typer.Context,
          host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback unless a token is set)."),
          port: int = typer.Option(8765, "--port", help="Port to listen on."),
          token: Optional[str] = typer.Option(None, "--token", envvar="MEMES_TOKEN",
                                              help="Require this token on every page and API call (env MEMES_TOKEN)."),
          allowed_host: list[str] = typer.Option([], "--allowed-host",
                                                 help="Another name the gallery answers to (a proxy's, the machine's; "
                                                      "NAME or NAME:PORT); repeatable.")):
    """The web gallery: search, browse and compare memes in a browser (and a JSON API under /api/)."""
    from memes.app import Archive
    from memes.web import create_app
    from memes.web.guard import is_loopback
    from memes.web.guard import Site

    archive = Archive(state_of(ctx).config, resident=True)  # keeps the index open between searches
    archive.require_existing()
    if not is_loopback(host) and not token:
        raise MemesError(f"refusing to listen on {host} without a token: anyone on the network could read "
                         "the archive; set --token or MEMES_TOKEN, or keep the default 127.0.0.1")
    import uvicorn

    err("loading the models (the first search would otherwise wait for them)")
    for notice in archive.warm_up():
        err(f"warning: {notice}")
    shown = f"[{host}]" if ":" in host else host
    err(f"memes gallery on http://{shown}:{port}/" + (f"?token={token}" if token else "")
        + f" for {archive.where} (Ctrl-C stops it)")
    uvicorn.run(create_app(archive, token, Site.serving(host, port, allowed_host)), host=host, port=port,
                log_level="warning")


@app.command("resident")
@translated
def resident_command(ctx: typer.Context,
                     minutes: float = typer.Option(30.0, "--minutes", min=0.1,
                                                   help="Exit after this many minutes with no command.")):
    """Keep the archive's models loaded in this process, so that `memes search` and `memes similar`
    answer through it at once (a Unix socket in the archive, for this user only); exits when idle.
    The `resident_minutes` setting starts one after a search, in the background."""
    from memes import resident

    archive = state_of(ctx).existing_archive
    if archive.config.records_url:
        raise MemesError("a resident serves an archive whose records are in its folder (not on a server)")
    import signal

    def stop(*_):
        raise resident.Stop

    signal.signal(signal.SIGTERM, stop)  # leaves as when idle, the socket removed; a caller mid-command
    Resident.serving = True             # gets no answer and does the work itself

    def prepare() -> None:
        Resident.kept = (archive.config, archive.generation(), archive)
        for notice in archive.warm_up():
            err(f"warning: {notice}")
        err(f"answering searches of {archive.where} until {minutes:g} minutes pass with none (Ctrl-C stops it)")

    try:
        resident.serve(archive.directory, minutes, run_captured, prepare)
    except resident.CannotServe as exc:
        raise MemesError(str(exc)) from None
    except resident.Stop:
        pass


class _Output(io.StringIO):
    """A command's output, kept for the caller, a terminal where the caller's is."""

    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@lru_cache(maxsize=1)
def _command():
    """The click command Typer makes of `app`, made once for every command a resident runs
    (calling `app` makes it anew each time: a fifth of a resident's answer)."""
    return typer.main.get_command(app)


def run_captured(argv: list[str], env: dict, cwd: str, tty: bool) -> tuple[int, str, str]:
    """Run one command line as the `memes` command would, in `cwd`, its configuration read from
    `env` (the caller's `MEMES_*` settings, not this process's): (exit code, stdout, stderr).
    What the resident runs for its callers, one at a time."""
    import contextlib

    here = os.getcwd()
    out, errors = _Output(tty), _Output(False)
    CtrlC.pressed = False
    Resident.environ = {k: v for k, v in env.items() if k.startswith(("MEMES_", "OLLAMA_HOST"))}
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(errors):
            try:
                _command().main(args=argv, prog_name="memes", standalone_mode=True)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        Resident.environ = None
        os.chdir(here)
    return code, out.getvalue(), errors.getvalue()
