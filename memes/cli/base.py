"""What every command shares: the Typer app and its global options, the archive of a command
(`State`), errors turned into one line (`translated`), progress bars, and the resident's kept
archive.
"""
from __future__ import annotations

import functools
import logging
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import typer

from archive.config import CLIP_PRESETS, Config, resolve_config
from archive.errors import MemesError

app = typer.Typer(
    name="memes", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="A searchable meme archive: index folders of memes, then find the one you remember.")


def _quiet_libraries() -> None:
    """Model libraries log and draw progress bars of their own; users get ours only."""
    for name, value in {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
                        "TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}.items():
        os.environ.setdefault(name, value)
    logging.getLogger().addHandler(logging.NullHandler())
    logging.getLogger().setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore")


class Resident:
    """In a resident process (`memes resident`): the archive of the last command, its models
    loaded, kept for the next while the configuration and `Archive.generation` are the same."""

    serving = False
    kept: tuple | None = None  # (config, generation, archive)
    environ: dict | None = None  # the caller's settings, for the command being run

    @classmethod
    def archive(cls, config: Config):
        from memes.app import Archive

        if cls.kept is not None and cls.kept[0] == config and cls.kept[2].generation() == cls.kept[1]:
            return cls.kept[2]
        archive = Archive(config)
        cls.kept = (config, archive.generation(), archive)
        return archive


@dataclass
class State:
    flags: dict
    quiet: bool = False
    _archive: object = None

    @property
    def config(self) -> Config:
        return resolve_config(self.flags, environ=Resident.environ)

    @property
    def archive(self):
        if self._archive is None:
            from memes.app import Archive

            self._archive = Resident.archive(self.config) if Resident.serving else Archive(self.config)
        return self._archive

    @property
    def existing_archive(self):
        """The archive, for a command that reads or changes what is in it: there must be one."""
        self.archive.require_existing()
        return self.archive


def err(message: str) -> None:
    typer.echo(message, err=True)


class CtrlC:
    """Whether Ctrl-C was pressed during a command. Python raises KeyboardInterrupt where the
    main thread is, but a library running native code then (Chroma, SQLite, torch) may turn it
    into an error of its own; the command was still interrupted, and says so."""

    pressed = False
    swallowed = False  # pressed where Python could not raise it (see `redelivering`)
    running = False  # a command is running: only then is a swallowed Ctrl-C delivered again

    @classmethod
    def handle(cls, signum, frame):
        cls.pressed = True
        raise KeyboardInterrupt

    @classmethod
    def redelivering(cls, hook):
        """`sys.unraisablehook` over `hook`: Python swallows an exception raised where nothing can
        catch it (a weakref callback, a `__del__`) and prints its traceback; Ctrl-C landing there
        would be lost with a traceback shown. While a command runs, it is delivered again to the
        main thread once the hook has returned (at once, it would land in the hook, as
        unraisable); a command that ends before then says it was interrupted all the same."""

        def deliver(unraisable):
            if not isinstance(unraisable.exc_value, KeyboardInterrupt):
                return hook(unraisable)
            cls.swallowed = True
            if cls.running and not sys.is_finalizing():
                import threading

                again = threading.Timer(0.05, cls._again)
                again.daemon = True
                again.start()

        return deliver

    @classmethod
    def _again(cls) -> None:
        import _thread

        if cls.running:
            _thread.interrupt_main()


def _watch_ctrl_c() -> None:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is \
            signal.default_int_handler:
        signal.signal(signal.SIGINT, CtrlC.handle)
        sys.unraisablehook = CtrlC.redelivering(sys.unraisablehook)


def _interrupted() -> None:
    err("interrupted: everything finished before this point is saved")
    raise typer.Exit(130)


def translated(command: Callable) -> Callable:
    """Domain errors become `Error: ...` and exit 1; Ctrl-C says what was kept."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        _watch_ctrl_c()
        running, CtrlC.running, CtrlC.swallowed = CtrlC.running, True, False
        try:
            try:
                done = command(*args, **kwargs)
            finally:
                CtrlC.running = running
            if CtrlC.swallowed:  # pressed where Python could not raise it, and the command ended first
                raise KeyboardInterrupt
            return done
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise  # usage errors keep click's message and exit code 2
        except BrokenPipeError:  # the reader of stdout stopped reading: nothing to say
            from memes.entry import reader_gone

            reader_gone()
            raise typer.Exit(0) from None
        except KeyboardInterrupt:
            _interrupted()
        except Exception as exc:  # domain errors, and the last line of defence: no traceback reaches a user
            if os.environ.get("MEMES_DEBUG"):
                raise
            if CtrlC.pressed:  # a library turned Ctrl-C into an error of its own
                _interrupted()
            if not isinstance(exc, MemesError):
                exc = _explained(kwargs.get("ctx"), exc)
            err(f"Error: {exc if isinstance(exc, MemesError) else _unexpected(exc)}")
            raise typer.Exit(1)

    return run


def _explained(ctx, exc: Exception) -> Exception:
    """What the archive makes of a failure no layer translated (a full or read-only disk)."""
    archive = getattr(ctx.obj, "_archive", None) if ctx is not None else None
    try:
        return (archive.explain(exc) if archive is not None else None) or exc
    except Exception:  # noqa: BLE001 - explaining must not hide the failure
        return exc


def _unexpected(exc: Exception) -> str:
    """An error no layer translated, in one line."""
    return f"unexpected {type(exc).__name__}: {exc} (set MEMES_DEBUG=1 to see where)"


def state_of(ctx: typer.Context) -> State:
    return ctx.ensure_object(State)


@app.callback()
def options(
    ctx: typer.Context,
    archive: Optional[Path] = typer.Option(
        None, "--archive", metavar="DIR",
        help="The archive directory (env MEMES_ARCHIVE; default: the platform's user data dir)."),
    clip_model: Optional[str] = typer.Option(
        None, "--clip-model", metavar="MODEL",
        help=f"Image model: a preset ({', '.join(CLIP_PRESETS)}), an open_clip architecture, "
             "hf-hub:ORG/REPO or local-dir:PATH (env MEMES_CLIP_MODEL)."),
    clip_pretrained: Optional[str] = typer.Option(
        None, "--clip-pretrained", metavar="TAG", help="open_clip pretrained tag (env MEMES_CLIP_PRETRAINED)."),
    clip_checkpoint: Optional[Path] = typer.Option(
        None, "--clip-checkpoint", metavar="FILE", help="Local open_clip checkpoint file (env MEMES_CLIP_CHECKPOINT)."),
    text_model: Optional[str] = typer.Option(
        None, "--text-model", metavar="MODEL", help="sentence-transformers model (env MEMES_TEXT_MODEL)."),
    ollama_host: Optional[str] = typer.Option(
        None, "--ollama-host", metavar="URL[,URL...]",
        help="Ollama server(s) for annotation, comma-separated (env OLLAMA_HOST; default http://127.0.0.1:11434)."),
    records_url: Optional[str] = typer.Option(
        None, "--records-url", metavar="postgresql://USER@HOST:PORT/DB",
        help="Keep the records on a PostgreSQL server instead of SQLite in the archive directory "
             "(env MEMES_RECORDS_URL). See README, \"Bigger archives\"."),
    chroma_url: Optional[str] = typer.Option(
        None, "--chroma-url", metavar="http://HOST:PORT",
        help="Keep the vectors on a Chroma server (`chroma run`) instead of embedded Chroma "
             "(env MEMES_CHROMA_URL). `chroma run` checks no credentials: keep it on loopback "
             "(--host 127.0.0.1) or behind a proxy that wants a token, and pass that token."),
    chroma_token: Optional[str] = typer.Option(
        None, "--chroma-token", metavar="TOKEN",
        help="Sent to the Chroma server as `Authorization: Bearer TOKEN`; prefer env MEMES_CHROMA_TOKEN "
             "(a flag shows in the process list)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """A searchable meme archive: index folders of memes, then find the one you remember."""
    _quiet_libraries()
    if hasattr(sys.stdout, "reconfigure"):  # file names that are not UTF-8 print as their own bytes
        sys.stdout.reconfigure(errors="surrogateescape")
    ctx.obj = State(flags={"archive": archive, "clip_model": clip_model, "clip_pretrained": clip_pretrained,
                           "clip_checkpoint": clip_checkpoint, "text_model": text_model,
                           "ollama_host": ollama_host, "records_url": records_url, "chroma_url": chroma_url,
                           "chroma_token": chroma_token}, quiet=quiet)


def progress_bar(state: State, what: str):
    """A progress bar on stderr with rate and time left; off with --quiet."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn,
                               TextColumn, TimeRemainingColumn)
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed:.1f}/s" if task.speed else "")

    return Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), Rate(), TimeRemainingColumn(),
                    console=Console(stderr=True), disable=state.quiet or not sys.stderr.isatty(),
                    transient=True)


def print_above(progress, message: str) -> None:
    if progress.disable or not progress.console.is_terminal:
        err(message)
    else:
        progress.console.print(message, markup=False, highlight=False, soft_wrap=True)


def say_fast_queries(archive) -> None:
    """Export the query models a search needs (once per model and archive), and say so."""
    for line in archive.prepare_fast_queries():
        err(line)
