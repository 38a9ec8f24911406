"""The `memes` command. A search goes to the archive's resident process where one answers
(`memes.resident`: no model to load, no library to import); everything else, and a search no
resident takes, to the CLI (`memes.cli`)."""
import os
import sys


def main() -> None:
    from memes import resident

    try:
        answered = resident.forwarded(sys.argv[1:])
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    if answered is None:
        from memes.cli import main as cli

        cli()
        return
    code, out, err = answered
    try:
        for stream in (sys.stdout, sys.stderr):
            if hasattr(stream, "reconfigure"):  # file names that are not UTF-8 print as their own bytes
                stream.reconfigure(errors="surrogateescape")
        sys.stdout.write(out)
        sys.stderr.write(err)
        sys.stdout.flush()
    except BrokenPipeError:
        reader_gone()
    sys.exit(code)


def reader_gone() -> None:
    """`memes search ... | head`: the reader has what it wanted. What is left to write, and the
    flush at exit, go nowhere instead of failing."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
