"""Finding memes: `search`, `similar`, `open`, `show`, and how results print."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from archive.errors import MemesError

from .base import app, err, Resident, state_of, translated


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
            typer.echo("closest by spelling or meaning (weaker):")
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
        if as_json:  # a script reading stdout gets an object too, as the gallery's API answers
            typer.echo(json.dumps({"query": query, "error": str(exc)}, ensure_ascii=False))
        raise typer.BadParameter(str(exc)) from None
    archive = state_of(ctx).existing_archive
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

    path, _ = state_of(ctx).existing_archive.image_of_meme(ref)
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
    archive = state_of(ctx).existing_archive
    answer = archive.similar(image, k)
    if answer.itself and not as_json:
        typer.echo(f"this image is in the archive: meme {answer.itself} ({archive.record(answer.itself).path}); "
                   "other memes like it:")
    _print_results(image, answer.results, answer.notices, as_json, explain=explain, itself=answer.itself)
    _stay_resident(archive)


def _stay_resident(archive) -> None:
    """Where the settings ask for one, leave a resident process for the next searches."""
    minutes = archive.config.resident_minutes
    if minutes > 0 and not Resident.serving and not archive.config.records_url:
        from memes import resident

        sys.stdout.flush()
        resident.start_in_background(archive.directory, minutes)


@app.command()
@translated
def show(ctx: typer.Context, ref: str = typer.Argument(..., metavar="ID_OR_PATH",
                                                       help="A meme id, perceptual or content hash, or path."),
         as_json: bool = typer.Option(False, "--json", help="JSON (the gallery API's shape) instead of the record.")):
    """Print a meme's record in the archive's record format."""
    archive = state_of(ctx).existing_archive
    if as_json:
        from memes.shapes import meme_json

        typer.echo(json.dumps(meme_json(archive.meme(ref)), ensure_ascii=False))
        return
    typer.echo(archive.show(ref))  # with a final newline, which reading a record file leaves out
