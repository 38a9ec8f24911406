"""`memes`: the command line. Parses, calls the core, prints, turns errors into one line.

Results go to stdout (`--json` gives one JSON object per query); progress, warnings and
`skipping PATH: reason` lines go to stderr.
"""
from __future__ import annotations

import functools
import io
import json
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


class _Resident:
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
        return resolve_config(self.flags, environ=_Resident.environ)

    @property
    def archive(self):
        if self._archive is None:
            from memes.app import Archive

            self._archive = _Resident.archive(self.config) if _Resident.serving else Archive(self.config)
        return self._archive

    @property
    def existing_archive(self):
        """The archive, for a command that reads or changes what is in it: there must be one."""
        if not self.archive.exists():
            raise MemesError(f"no archive at {self.archive.where}; run `memes index PATH` first")
        return self.archive


def err(message: str) -> None:
    typer.echo(message, err=True)


class _CtrlC:
    """Whether Ctrl-C was pressed during a command. Python raises KeyboardInterrupt where the
    main thread is, but a library running native code then (Chroma, SQLite, torch) may turn it
    into an error of its own; the command was still interrupted, and says so."""

    pressed = False

    @classmethod
    def handle(cls, signum, frame):
        cls.pressed = True
        raise KeyboardInterrupt


def _watch_ctrl_c() -> None:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is \
            signal.default_int_handler:
        signal.signal(signal.SIGINT, _CtrlC.handle)


def _interrupted() -> None:
    err("interrupted: everything finished before this point is saved")
    raise typer.Exit(130)


def translated(command: Callable) -> Callable:
    """Domain errors become `Error: ...` and exit 1; Ctrl-C says what was kept."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        _watch_ctrl_c()
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise  # usage errors keep click's message and exit code 2
        except KeyboardInterrupt:
            _interrupted()
        except Exception as exc:  # domain errors, and the last line of defence: no traceback reaches a user
            if os.environ.get("MEMES_DEBUG"):
                raise
            if _CtrlC.pressed:  # a library turned Ctrl-C into an error of its own
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
    """An error no layer translated, in one line: a store that failed mid-run says which."""
    module, name = type(exc).__module__, type(exc).__name__
    first = (str(exc).strip().splitlines() or [""])[0]
    if module.startswith("psycopg"):
        return f"the records server failed ({name}: {first}); everything committed before it is kept"
    if module.startswith(("httpx", "chromadb")):
        return f"the vector store failed ({name}: {first}); everything committed before it is kept"
    return f"unexpected {name}: {exc} (set MEMES_DEBUG=1 to see where)"


def _state(ctx: typer.Context) -> State:
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


def _progress(state: State, what: str):
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


def _print_above(progress, message: str) -> None:
    if progress.disable or not progress.console.is_terminal:
        err(message)
    else:
        progress.console.print(message, markup=False, highlight=False, soft_wrap=True)


@app.command()
@translated
def index(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Image files and folders (searched recursively)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    annotate: Optional[bool] = typer.Option(
        None, "--annotate/--no-annotate",
        help="Ask the vision models (Ollama) about new memes (default: on; config `annotate`)."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when any file was skipped."),
    wait: bool = typer.Option(False, "--wait", help="If another process is writing, wait for it."),
    prune: bool = typer.Option(False, "--prune", help="Forget files under PATHS that are gone."),
    prune_orphans: bool = typer.Option(
        False, "--prune-orphans", help="With --prune: also remove memes left with no file (default: keep them)."),
    shard: Optional[str] = typer.Option(
        None, "--shard", metavar="I/N",
        help="Take only share I of N of the new files (by their bytes' hash), so N indexers (processes or "
             "machines) index one collection together; needs --records-url and --chroma-url."),
):
    """Index image files and folders: OCR, annotations, perceptual hash, text and image vectors."""
    from indexer.pipeline import Indexed, Notice, OtherShard, Regrouped, Shard, Skipped, Unchanged

    state = _state(ctx)
    share = None
    if shard is not None:
        try:
            share = Shard.parse(shard)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--shard") from None
    archive = state.archive
    if share is not None and not archive.config.servers_only:
        raise MemesError("--shard needs records and vectors on servers (--records-url and --chroma-url): "
                         "the embedded archive takes one writer at a time")
    counts = {"new_memes": 0, "new_sightings": 0, "joined_copies": 0, "unchanged": 0, "skipped": 0,
              "other_shards": 0}
    skipped: list[dict] = []
    joined: list[dict] = []
    with archive.lock(wait=wait, on_wait=err):
        found = archive.scan(paths)
        progress = _progress(state, "indexing")
        with progress:
            task = progress.add_task("indexing", total=len(found))
            for event in archive.index(found, annotate, share):
                if isinstance(event, Notice):
                    _print_above(progress, f"warning: {event.message}")
                    continue
                if isinstance(event, Skipped):
                    _print_above(progress, f"skipping {event.path}: {event.reason}")
                    skipped.append({"path": str(event.path), "reason": event.reason})
                    counts["skipped"] += 1
                elif isinstance(event, Unchanged):
                    counts["unchanged"] += 1
                elif isinstance(event, OtherShard):
                    counts["other_shards"] += 1
                elif isinstance(event, Indexed):
                    counts["new_memes" if event.new_meme else "new_sightings"] += 1
                    if event.joined:
                        counts["joined_copies"] += 1
                        joined.append({"path": str(event.path), "meme": event.meme_id})
                elif isinstance(event, Regrouped):  # counted as a new meme earlier in the run
                    counts["new_memes"] -= 1
                    counts["new_sightings"] += 1
                    counts["joined_copies"] += 1
                    joined.append({"path": str(event.path), "meme": event.meme_id})
                    continue
                progress.advance(task)
        if prune:
            forgotten, orphans, dropped = archive.prune(paths, prune_orphans)
            counts["forgotten_files"] = forgotten
            counts["memes_without_files"] = len(orphans)
            what = "removed" if dropped else "kept (--prune-orphans removes them)"
            err(f"pruned {forgotten} files that are gone; {len(orphans)} memes have no file left: {what}")
        _say_fast_queries(archive)
        total = archive.catalog.stats()["memes"]
    if as_json:
        typer.echo(json.dumps({**counts, "skipped_files": skipped, "joined_files": joined,
                               "memes_in_archive": total}))
    else:
        others = f", {counts['other_shards']} left to other shards" if share else ""
        n = counts["joined_copies"]
        copies = (f" ({n} {'an altered copy' if n == 1 else 'altered copies'} of a meme; "
                  "`memes split MEME PATH` undoes a join)") if n else ""
        err(f"indexed {len(found)} files: {counts['new_memes']} new memes, {counts['new_sightings']} new "
            f"sightings{copies}, {counts['unchanged']} unchanged, {counts['skipped']} skipped{others}; "
            f"{total} memes in {archive.where}")
    if strict and counts["skipped"]:
        raise typer.Exit(1)


def _print_results(query: str, results, notices, as_json: bool, closest=None, explain: bool = False,
                   marks: bool = False, itself=False) -> None:
    """Results (each its path and one line of text, the query's words in bold on a terminal;
    `explain` adds scores and the signals' ranks), or where a text search matched nothing, says
    so and shows the closest apart."""
    for notice in notices:
        err(f"warning: {notice}")
    if as_json:
        from memes.shapes import results_json

        typer.echo(json.dumps(results_json(query, results, notices, closest, itself), ensure_ascii=False))
        return
    if not results:
        typer.echo(f"nothing matches {query!r}" if closest is not None else f"no memes found for {query!r}")
        if closest:
            typer.echo("closest by meaning (weaker):")
            _print_ranked(closest, query if marks else None, explain)
        return
    _print_ranked(results, query if marks else None, explain)


def _print_ranked(results, query: str | None, explain: bool) -> None:
    bold = sys.stdout.isatty()
    for rank, r in enumerate(results, start=1):
        if explain:
            found_by = " ".join(f"{name}:{value}" for name, value in r.signals.items())
            typer.echo(f"{rank:>2}. {r.score:.4f}  {r.path or r.id}  [{found_by}]")
        else:
            typer.echo(f"{rank:>2}. {r.path or r.id}")
        if r.snippet:
            typer.echo(f"    {_marked(r.snippet[:160], query, bold)}")


def _marked(text: str, query: str | None, bold: bool) -> str:
    """The query's words in bold, where the output is a terminal."""
    if not query or not bold:
        return text
    from archive.readings import marked

    return marked(text, query, "\x1b[1m", "\x1b[0m")


@app.command()
@translated
def search(
    ctx: typer.Context,
    query: Optional[str] = typer.Argument(None, help='What you remember: words of the caption, what it shows; '
                                                     '"an exact phrase", -word or -"a phrase" to leave out.'),
    k: int = typer.Option(10, "-k", min=1, max=1000, help="How many results."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per query on stdout."),
    queries: Optional[Path] = typer.Option(None, "--queries", metavar="FILE",
                                           help="Answer every line of FILE as a query."),
    explain: bool = typer.Option(False, "--explain", help="Show each result's score and the signals that found it."),
    after: Optional[str] = typer.Option(None, "--after", metavar="DATE", help="First seen on or after DATE (YYYY-MM-DD)."),
    before: Optional[str] = typer.Option(None, "--before", metavar="DATE", help="First seen before DATE."),
    folder: Optional[str] = typer.Option(None, "--in", metavar="FOLDER", help="With a file under FOLDER."),
    has: Optional[str] = typer.Option(None, "--has", metavar="text|no-text",
                                      help="With (or without) words OCR read on the picture."),
    annotated: bool = typer.Option(False, "--annotated", help="Only memes a vision model described."),
    sort: str = typer.Option("relevance", "--sort", metavar="relevance|first-seen|last-seen",
                             help="Best first, or newest first by when first (or last) seen."),
    copy: bool = typer.Option(False, "--copy", help="Copy the first result's image to the clipboard."),
):
    """Search by meaning over descriptions, OCR text and the pictures themselves. Filters choose
    the memes ranked, before ranking."""
    from search.query import Filters, checked_sort, parse

    if (query is None) == (queries is None):
        raise typer.BadParameter("give a QUERY or --queries FILE (one of them)")
    if copy and queries is not None:
        raise typer.BadParameter("--copy copies the first result of one QUERY, not of --queries")
    try:
        checked_sort(sort)
        filters = Filters.given(after, before, folder, has, annotated)
        if query is not None:
            parse(query)
    except MemesError as exc:
        raise typer.BadParameter(str(exc)) from None
    archive = _state(ctx).existing_archive
    if queries is not None:
        try:
            lines = [line.strip() for line in queries.read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as exc:
            raise MemesError(f"cannot read {queries}: {exc}") from None
    else:
        lines = [query.strip()]
    answer = None
    for line, answer in archive.search_each(filter(None, lines), k, filters, sort):
        _print_results(line, answer.results, answer.notices, as_json, answer.closest, explain, marks=True)
    if copy:
        _copy_first(archive, answer.results if answer else [])
    _stay_resident(archive)


def _copy_first(archive, results) -> None:
    from memes import desktop

    if not results:
        err("nothing copied: no result")
        return
    path, data = archive.image_of_meme(results[0].id)
    desktop.copy_image(data)
    err(f"copied the image of {path} to the clipboard")


@app.command("open")
@translated
def open_(ctx: typer.Context, ref: str = typer.Argument(..., metavar="ID_OR_PATH",
                                                        help="A meme id, perceptual or content hash, or path."),
          folder: bool = typer.Option(False, "--folder", help="Show the file in its folder instead.")):
    """Open a meme's image with the desktop's application for it, or show it in its folder."""
    from memes import desktop

    path, _ = _state(ctx).existing_archive.image_of_meme(ref)
    if folder:
        desktop.show_in_folder(path)
        err(f"showed {path} in its folder")
    else:
        desktop.open_file(path)
        err(f"opened {path}")


@app.command()
@translated
def similar(
    ctx: typer.Context,
    image: str = typer.Argument(..., metavar="IMAGE_PATH_OR_ID", help="An image file, or a meme id or hash."),
    k: int = typer.Option(10, "-k", min=1, max=1000, help="How many results."),
    as_json: bool = typer.Option(False, "--json", help="A JSON object on stdout."),
    explain: bool = typer.Option(False, "--explain", help="Show each result's score and the signals that found it."),
):
    """Find memes that look like an image (reposts, edits, the same template)."""
    archive = _state(ctx).existing_archive
    answer = archive.similar(image, k)
    if answer.itself and not as_json:
        typer.echo(f"this image is in the archive: meme {answer.itself} ({archive.record(answer.itself).path}); "
                   "other memes like it:")
    _print_results(image, answer.results, answer.notices, as_json, explain=explain, itself=answer.itself)
    _stay_resident(archive)


def _stay_resident(archive) -> None:
    """Where the settings ask for one, leave a resident process for the next searches."""
    minutes = archive.config.resident_minutes
    if minutes > 0 and not _Resident.serving and not archive.config.records_url:
        from memes import resident

        sys.stdout.flush()
        resident.start_in_background(archive.directory, minutes)


@app.command()
@translated
def show(ctx: typer.Context, ref: str = typer.Argument(..., metavar="ID_OR_PATH",
                                                       help="A meme id, perceptual or content hash, or path."),
         as_json: bool = typer.Option(False, "--json", help="JSON (the gallery API's shape) instead of the record.")):
    """Print a meme's record in the archive's record format."""
    archive = _state(ctx).existing_archive
    if as_json:
        from memes.shapes import meme_json

        typer.echo(json.dumps(meme_json(archive.meme(ref)), ensure_ascii=False))
        return
    typer.echo(archive.show(ref))  # with a final newline, which reading a record file leaves out


@app.command()
@translated
def split(ctx: typer.Context,
          meme: str = typer.Argument(..., metavar="MEME", help="The meme (id, hash or one of its paths)."),
          path: Path = typer.Argument(..., metavar="PATH", help="The file, an altered copy joined to MEME."),
          as_json: bool = typer.Option(False, "--json", help="The new meme as JSON (as `memes show --json`).")):
    """Make a file that indexing joined to a meme (an altered copy) a meme of its own; no later
    index, reindex or doctor joins them again."""
    archive = _state(ctx).existing_archive
    with archive.lock():
        new = archive.split(meme, str(path))
    _print_identity_change(new, as_json, f"{path} is now meme {new.id}")


@app.command()
@translated
def join(ctx: typer.Context,
         meme: str = typer.Argument(..., metavar="MEME", help="The meme that stays (id, hash or path)."),
         other: str = typer.Argument(..., metavar="OTHER", help="The meme that becomes its sighting."),
         as_json: bool = typer.Option(False, "--json", help="The meme as JSON (as `memes show --json`).")):
    """Join meme OTHER to MEME: OTHER's files become MEME's sightings, their words stay searchable,
    OTHER's annotations are dropped (MEME keeps its own); no later index separates them."""
    archive = _state(ctx).existing_archive
    with archive.lock():
        joined = archive.join(meme, other)
    _print_identity_change(joined, as_json, f"meme {joined.id} now has {len(joined.sightings)} sightings")


def _print_identity_change(meme, as_json: bool, message: str) -> None:
    if as_json:
        from memes.shapes import meme_json

        typer.echo(json.dumps(meme_json(meme), ensure_ascii=False))
    else:
        err(message)


@app.command("import")
@translated
def import_(ctx: typer.Context, files: list[str] = typer.Argument(..., metavar="RECORDS...",
                                                                  help="Record files (.txt), folders of them (as "
                                                                       "`memes export` writes), or glob patterns.")):
    """Import record files; an image with the same perceptual hash links to its record. Exits 1
    when any record could not be imported."""
    from archive.recordfile import record_files

    archive = _state(ctx).archive
    paths, missing = record_files(files)
    for pattern in missing:
        err(f"skipping {pattern}: no such file, folder or matching records")
    imported, failed = 0, len(missing)
    with archive.lock():
        for outcome in archive.import_records(paths):
            if outcome.error:
                err(f"skipping {outcome.path}: {outcome.error}")
                failed += 1
            else:
                imported += 1
    err(f"imported {imported} records, {failed} skipped")
    if failed:
        raise typer.Exit(1)


@app.command()
@translated
def export(ctx: typer.Context, directory: Path = typer.Argument(..., metavar="DIR")):
    """Write every meme as a record file, NNN_<perceptual hash>.txt."""
    archive = _state(ctx).existing_archive
    outcome = archive.export(directory)
    err(f"exported {len(outcome.written)} records to {directory}")


@app.command()
@translated
def annotate(
    ctx: typer.Context,
    kind: Optional[str] = typer.Option(None, "--kind", metavar="KIND", help="Only this kind (simple-description, ...)."),
    model: Optional[str] = typer.Option(None, "--model", metavar="MODEL", help="Only this model."),
    redo: bool = typer.Option(False, "--redo", help="Run again even where a current annotation exists."),
    pending: bool = typer.Option(False, "--pending", help="Only what was left pending (a server was down)."),
):
    """Run the vision models on memes in the archive: what is missing, stale, failed or pending."""
    from indexer.annotate import Annotated
    from indexer.pipeline import Notice

    if redo and pending:
        raise typer.BadParameter("--redo and --pending do not go together")
    state = _state(ctx)
    archive = state.existing_archive
    mode = "redo" if redo else "pending" if pending else "missing"
    with archive.lock():
        total = archive.annotation_jobs(kind, model, mode)
        progress = _progress(state, "annotating")
        with progress:
            task = progress.add_task("annotating", total=total)
            for event in archive.annotate(kind, model, mode):
                if isinstance(event, Notice):
                    _print_above(progress, f"warning: {event.message}")
                elif isinstance(event, Annotated):
                    progress.advance(task)
    if total == 0:
        err("nothing to annotate")


@app.command()
@translated
def doctor(ctx: typer.Context, check_only: bool = typer.Option(False, "--check", help="Report, repair nothing."),
           as_json: bool = typer.Option(False, "--json", help="The report as JSON on stdout.")):
    """Check the catalog and the vector index, and repair what can be repaired; exits 1 when
    something is wrong (with --check) or left unrepaired."""
    from indexer.upkeep import healthy, unrepaired

    archive = _state(ctx).existing_archive
    with archive.lock():
        report = archive.doctor(repair=not check_only)
    failed = not healthy(report) if check_only else unrepaired(report)
    if as_json:
        typer.echo(json.dumps(report))
        raise typer.Exit(1 if failed else 0)
    _print_checkup(report)
    if failed:
        raise typer.Exit(1)


def _print_checkup(report: dict) -> None:
    problems, index = report["catalog"]["problems"], report["index"]
    typer.echo("catalog          " + ("ok" if not problems else f"DAMAGED: {problems[0]} ({len(problems)} problems); "
                                      "`memes restore BACKUP` or `memes rebuild` make it whole"))
    if index.get("damage"):
        typer.echo(f"vector index     DAMAGED: {index['damage']}")
    if index.get("moved_aside"):
        typer.echo(f"vector index     moved aside to {index['moved_aside']}; made anew from the catalog's copies")
    if index.get("removed_folders"):
        typer.echo(f"vector index     removed the files of {index['removed_folders']} collections no longer used")
    for space, found in report["spaces"].items():
        line = (f"{space:16} vectors for {found['vectors_for']} memes, {found['missing']} missing, "
                f"{found['orphans']} orphaned, {found['not_kept']} not kept in the catalog")
        if "repaired" in found and (found["missing"] or found["orphans"] or found["not_kept"]):
            done = found["repaired"]
            line += (f" (repaired: {done['restored']} vectors restored from the catalog, {done['adopted']} kept, "
                     f"{done['dropped']} dropped, {found['reembedded']} memes embedded again)")
        typer.echo(line)
    for space, n in report["pending"].items():
        if n:
            typer.echo(f"pending          {space}: {n} memes wait for vectors (`memes doctor` or `memes index` "
                       "makes them, with the models)")
    if report.get("refused"):
        typer.echo(f"refused: {report['refused']}")
    if report.get("repair_error"):
        typer.echo(f"could not repair: {report['repair_error']}")


@app.command()
@translated
def backup(ctx: typer.Context, dest: Path = typer.Argument(..., metavar="DIR", help="The backup folder (made when missing).")):
    """Copy the catalog whole into DIR, while searches and an index run go on (the vector index
    is made anew from it on restore)."""
    made = _state(ctx).archive.backup(dest)
    err(f"backed up {made.memes} memes to {made.folder} ({made.size_bytes / 1e6:.1f} MB); `memes restore "
        f"{made.folder}` puts it back")


@app.command()
@translated
def restore(ctx: typer.Context, source: Path = typer.Argument(..., metavar="BACKUP",
                                                               help="A folder made by `memes backup`.")):
    """Put a backup's catalog in place of the archive's (kept beside it) and make the vector
    index agree with it."""
    archive = _state(ctx).archive
    with archive.lock():
        restored = archive.restore(source)
        report = archive.doctor()
    err(f"restored {restored.memes} memes from {restored.folder}")
    _print_checkup(report)


@app.command()
@translated
def rebuild(ctx: typer.Context):
    """Make the catalog anew from the archive's records/ folder and the images (for a catalog
    lost or damaged with no backup); the one it replaces is kept beside it."""
    archive = _state(ctx).archive
    with archive.lock():
        outcome = archive.rebuild()
        for problem in outcome.skipped:
            err(f"skipping {problem}")
        report = archive.doctor()
    taken = ", ".join(f"{n} {space}" for space, n in outcome.vectors_taken.items()) or "none"
    err(f"rebuilt the catalog of {archive.where} from {outcome.memes} record files; vectors taken back from the "
        f"index: {taken}" + (f"; the catalog replaced is at {outcome.replaced}" if outcome.replaced else ""))
    _print_checkup(report)


@app.command()
@translated
def reindex(ctx: typer.Context,
            text_only: bool = typer.Option(False, "--text-only", help="Only the text vectors (no image decoding).")):
    """Rebuild every vector from the stored records and images (no OCR is repeated)."""
    state = _state(ctx)
    archive = state.existing_archive
    with archive.lock():
        total = len(archive.catalog.ids())
        progress = _progress(state, "reindexing")
        with progress:
            task = progress.add_task("reindexing", total=total)
            archive.reindex(on_batch=lambda report: progress.advance(task, report.memes), text_only=text_only)
        _say_fast_queries(archive)
    err(f"reindexed {total} memes")


def _say_fast_queries(archive) -> None:
    """Export the query models a search needs (once per model and archive), and say so."""
    for line in archive.prepare_fast_queries():
        err(line)


@app.command()
@translated
def stats(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON on stdout.")):
    """What the archive holds: memes, sightings, annotations, vectors and models."""
    archive = _state(ctx).existing_archive
    numbers = archive.stats()
    if as_json:
        typer.echo(json.dumps(numbers))
        return
    typer.echo(f"archive      {numbers['archive']} ({numbers['size_bytes'] / 1e6:.1f} MB)")
    typer.echo(f"memes        {numbers['memes']} ({numbers['memes_with_image']} with images, "
               f"{numbers['records_without_image']} records without)")
    typer.echo(f"sightings    {numbers['sightings']}")
    typer.echo(f"ocr text     {numbers['with_ocr_text']} memes")
    first, last = numbers["first_seen"]
    typer.echo(f"first seen   {first or '-'} .. {last or '-'}")
    for label, n in numbers["annotations"].items():
        typer.echo(f"annotation   {label}: {n}")
    for space, info in numbers["vectors"].items():
        typer.echo(f"vectors      {space}: {info['vectors']} ({info['model']}, {info['dim']}-d)")
    for label, jobs in numbers["annotation_jobs"]["by_annotator"].items():
        typer.echo(f"annotating   {label}: {jobs['done']} done, {jobs['pending']} pending, "
                   f"{jobs['failed']} failed, {jobs['stale']} stale")
    for reason, n in numbers["annotation_jobs"]["failure_reasons"].items():
        typer.echo(f"failed       {n} x {reason}")
    for space, n in numbers["pending_vectors"].items():
        if n:
            typer.echo(f"pending      {space}: {n} memes wait for vectors")


@app.command("eval")
@translated
def eval_(ctx: typer.Context,
          truth: Path = typer.Argument(..., metavar="TRUTH.jsonl", help="One line per image: id, file, template, text, variant_of."),
          queries: Path = typer.Argument(..., metavar="QUERIES.jsonl", help="Labelled queries (see search/evaluate.py)."),
          as_json: bool = typer.Option(False, "--json", help="The report as JSON on stdout."),
          tune: bool = typer.Option(False, "--tune", help="Also choose the RRF constant and signal weights on half "
                                                          "the queries and report them on the other half.")):
    """Measure search on an indexed archive: Recall@1/@10, MRR, nDCG@10 per query type and signal."""
    from search import evaluate

    archive = _state(ctx).existing_archive
    try:
        truth_rows, query_rows = evaluate.read_jsonl(truth), evaluate.read_queries(queries)
    except (OSError, ValueError, KeyError) as exc:
        raise MemesError(f"cannot read the evaluation set: {exc}") from None
    ranked, notices = archive.evaluate(query_rows, truth_rows)
    for notice in notices:
        err(f"warning: {notice}")
    if not ranked:
        raise MemesError("no query could be run on this archive")
    result = {"archive": str(archive.directory), "report": evaluate.report(ranked)}
    if tune:
        result["tuning"] = evaluate.tune_fusion(ranked)
    if as_json:
        typer.echo(json.dumps(result, indent=1))
        return
    _print_report(result["report"])
    if tune:
        t = result["tuning"]
        for kind, chosen in t["chosen"].items():
            typer.echo(f"\ntuned for {kind} on {chosen['tuning_queries']} queries: k={chosen['k']} "
                       f"weights={chosen['weights']}")
        typer.echo("held-out half, defaults vs tuned:")
        _print_report(t["held_out_defaults"], "  defaults ")
        _print_report(t["held_out_tuned"], "  tuned    ")


def _print_report(report: dict, prefix: str = "") -> None:
    typer.echo(f"{prefix}{'queries':34} {'R@1':>6} {'R@10':>6} {'MRR':>6} {'nDCG@10':>8} {'n':>5}")
    rows = [("overall (fused)", report["overall"])]
    for kind, signals in report["by_type"].items():
        rows += [(f"{kind} / {signal}", m) for signal, m in signals.items()]
    for label, m in rows:
        if m and "nothing" in m:  # negative queries: the share that returned nothing
            typer.echo(f"{prefix}{label:34} {'nothing returned':>22} {m['nothing']:6.3f} {m['queries']:5d}")
        elif m:
            typer.echo(f"{prefix}{label:34} {m['recall@1']:6.3f} {m['recall@10']:6.3f} {m['mrr']:6.3f} "
                       f"{m['ndcg@10']:8.3f} {m['queries']:5d}")


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

    archive = Archive(_state(ctx).config, resident=True)  # keeps the index open between searches
    if not archive.exists():
        raise MemesError(f"no archive at {archive.where} (index some memes first)")
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

    archive = _state(ctx).existing_archive
    if archive.config.records_url:
        raise MemesError("a resident serves an archive whose records are in its folder (not on a server)")
    import signal

    def stop(*_):
        raise resident.Stop

    signal.signal(signal.SIGTERM, stop)  # leaves as when idle, the socket removed; a caller mid-command
    _Resident.serving = True             # gets no answer and does the work itself

    def prepare() -> None:
        _Resident.kept = (archive.config, archive.generation(), archive)
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


def run_captured(argv: list[str], env: dict, cwd: str, tty: bool) -> tuple[int, str, str]:
    """Run one command line as the `memes` command would, in `cwd`, its configuration read from
    `env` (the caller's `MEMES_*` settings, not this process's): (exit code, stdout, stderr).
    What the resident runs for its callers, one at a time."""
    import contextlib

    here = os.getcwd()
    out, errors = _Output(tty), _Output(False)
    _CtrlC.pressed = False
    _Resident.environ = {k: v for k, v in env.items() if k.startswith(("MEMES_", "OLLAMA_HOST"))}
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(errors):
            try:
                app(args=argv, prog_name="memes", standalone_mode=True)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        _Resident.environ = None
        os.chdir(here)
    return code, out.getvalue(), errors.getvalue()


def main() -> None:
    app(prog_name="memes")
