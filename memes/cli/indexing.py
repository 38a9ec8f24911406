"""`memes index`: files into the archive, with progress and a summary."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from archive.errors import MemesError

from .base import app, err, print_above, progress_bar, say_fast_queries, state_of, translated


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

    state = state_of(ctx)
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
    joined: dict[str, str] = {}  # file that joined a meme as an altered copy -> the meme
    with archive.lock(wait=wait, on_wait=err):
        found = archive.scan(paths)
        progress = progress_bar(state, "indexing")
        with progress:
            task = progress.add_task("indexing", total=len(found))
            for event in archive.index(found, annotate, share):
                if isinstance(event, Notice):
                    print_above(progress, f"warning: {event.message}")
                    continue
                if isinstance(event, Skipped):
                    print_above(progress, f"skipping {event.path}: {event.reason}")
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
                        joined[str(event.path)] = event.meme_id
                elif isinstance(event, Regrouped):  # counted earlier in the run
                    if event.new_meme:
                        counts["new_memes"] -= 1
                        counts["new_sightings"] += 1
                        counts["joined_copies"] += 1
                    if event.new_meme or str(event.path) in joined:
                        joined[str(event.path)] = event.meme_id
                    continue
                progress.advance(task)
        if prune:
            forgotten, orphans, dropped = archive.prune(paths, prune_orphans)
            counts["forgotten_files"] = forgotten
            counts["memes_without_files"] = len(orphans)
            what = "removed" if dropped else "kept (--prune-orphans removes them)"
            err(f"pruned {forgotten} files that are gone; {len(orphans)} memes have no file left: {what}")
        say_fast_queries(archive)
        total = archive.summary()["memes"]
    if as_json:
        joined_files = [{"path": path, "meme": meme_id} for path, meme_id in joined.items()]
        typer.echo(json.dumps({**counts, "skipped_files": skipped, "joined_files": joined_files,
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
