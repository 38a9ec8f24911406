"""Keeping an archive whole: `doctor`, `backup`, `restore`, `rebuild`, `reindex`, `stats`."""
from __future__ import annotations

import json
from pathlib import Path

import typer


from .base import app, err, progress_bar, say_fast_queries, state_of, translated


@app.command()
@translated
def doctor(ctx: typer.Context, check_only: bool = typer.Option(False, "--check", help="Report, repair nothing."),
           as_json: bool = typer.Option(False, "--json", help="The report as JSON on stdout.")):
    """Check the catalog and the vector index, and repair what can be repaired; exits 1 when
    something is wrong (with --check) or left unrepaired."""
    from indexer.upkeep import healthy, unrepaired

    archive = state_of(ctx).existing_archive
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
    made = state_of(ctx).archive.backup(dest)
    err(f"backed up {made.memes} memes to {made.folder} ({made.size_bytes / 1e6:.1f} MB); `memes restore "
        f"{made.folder}` puts it back")


@app.command()
@translated
def restore(ctx: typer.Context, source: Path = typer.Argument(..., metavar="BACKUP",
                                                               help="A folder made by `memes backup`.")):
    """Put a backup's catalog in place of the archive's (kept beside it) and make the vector
    index agree with it."""
    archive = state_of(ctx).archive
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
    archive = state_of(ctx).archive
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
    state = state_of(ctx)
    archive = state.existing_archive
    with archive.lock():
        total = archive.summary()["memes"]
        progress = progress_bar(state, "reindexing")
        with progress:
            task = progress.add_task("reindexing", total=total)
            archive.reindex(on_batch=lambda report: progress.advance(task, report.memes), text_only=text_only)
        say_fast_queries(archive)
    err(f"reindexed {total} memes")


@app.command()
@translated
def stats(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON on stdout.")):
    """What the archive holds: memes, sightings, annotations, vectors and models."""
    archive = state_of(ctx).existing_archive
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
