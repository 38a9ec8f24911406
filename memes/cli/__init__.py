"""`memes`: the command line. Parses, calls the core (`memes.app.Archive`), prints, turns errors
into one line. One module per group of commands, each registering them on `base.app`; the
order of the imports below is the order of `memes --help`.

Results go to stdout (`--json` gives one JSON object per query); progress, warnings and
`skipping PATH: reason` lines go to stderr.
"""
from .base import app
from . import indexing, searching, records, upkeep, measuring, serving  # noqa: F401 - they register the commands
from .serving import run_captured

__all__ = ["app", "main", "run_captured"]


def main() -> None:
    app(prog_name="memes")
