"""The `memes` command. A search goes to the archive's resident process where one answers
(`memes.resident`: no model to load, no library to import); everything else, and a search no
resident takes, to the CLI (`memes.cli`)."""
import sys


def main() -> None:
    from memes import resident

    answered = resident.forwarded(sys.argv[1:])
    if answered is None:
        from memes.cli import main as cli

        cli()
        return
    code, out, err = answered
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):  # file names that are not UTF-8 print as their own bytes
            stream.reconfigure(errors="surrogateescape")
    sys.stdout.write(out)
    sys.stderr.write(err)
    sys.stdout.flush()
    sys.exit(code)
