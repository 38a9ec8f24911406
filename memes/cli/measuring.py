"""`memes eval`: how well search finds labelled memes, per signal."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from archive.errors import MemesError

from .base import app, err, state_of, translated


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

    archive = state_of(ctx).existing_archive
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
