"""Changing what the archive holds: `split`, `join`, `import`, `export`, `annotate`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


from .base import app, err, print_above, progress_bar, state_of, translated


@app.command()
@translated
def split(ctx: typer.Context,
          meme: str = typer.Argument(..., metavar="MEME", help="The meme (id, hash or one of its paths)."),
          path: Path = typer.Argument(..., metavar="PATH", help="The file, an altered copy joined to MEME."),
          as_json: bool = typer.Option(False, "--json", help="The new meme as JSON (as `memes show --json`).")):
    """Make a file that indexing joined to a meme (an altered copy) a meme of its own; no later
    index, reindex or doctor joins them again."""
    archive = state_of(ctx).existing_archive
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
    archive = state_of(ctx).existing_archive
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

    archive = state_of(ctx).archive
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
    archive = state_of(ctx).existing_archive
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
    state = state_of(ctx)
    archive = state.existing_archive
    mode = "redo" if redo else "pending" if pending else "missing"
    with archive.lock():
        total = archive.annotation_jobs(kind, model, mode)
        progress = progress_bar(state, "annotating")
        with progress:
            task = progress.add_task("annotating", total=total)
            for event in archive.annotate(kind, model, mode):
                if isinstance(event, Notice):
                    print_above(progress, f"warning: {event.message}")
                elif isinstance(event, Annotated):
                    progress.advance(task)
    if total == 0:
        err("nothing to annotate")
