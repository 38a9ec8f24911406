"""How long `memes search` and `memes similar` take from the command line, each run a new process.

usage: python bench/cli_latency.py --sample ARCHIVE [--with-images ARCHIVE --clip-model M]
                                   [--big ARCHIVE [--make-big 10000]] [--reference CHECKOUT]
                                   [--runs 5]

- `--sample`: the sample archive (`scripts/demo.sh`: no image model loads here, so no image vectors).
- `--with-images`: the same memes indexed with an image model (`--clip-model`, e.g. a `local-dir:`
  copy of the default ViT-B-16-SigLIP with random weights: the speed of a model is not in its weights).
- `--big`: a bigger archive; `--make-big N` first builds one of N synthetic records (OCR text of
  25 words and a 70-word description each, drawn from the seed record's words), text vectors made
  by the real text model, the query models exported as `memes index` does.
- `--reference`: a checkout of an earlier commit; its `memes search --json` answers the same
  queries on the same archives, and the ids and scores are compared (same ids in the same order,
  scores within 1e-5).

Every timing is the wall time of a new process (`python -m memes ...`), bytecode already
compiled by one untimed run (as an installed tool has it), printed beside `python -c pass`
measured in the same run, with the process's peak RSS. Medians of `--runs` runs.
`--queries`: 1,000 queries of 2-4 words from the big archive's own texts, one process.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUERIES = ["deploy friday", "llama mistral chart", "one does not simply", "monday again", "zzqx vlorp"]
SIMILAR = ROOT / "data" / "samples" / "one-does-not-simply.jpg"


def timed(argv: list[str], env: dict, cwd: Path = ROOT) -> tuple[float, float, subprocess.CompletedProcess]:
    """(seconds, peak RSS in MB, result) of one new process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(argv, os.waitstatus_to_exitcode(status), out.read().decode(),
                                             err.read().decode())
    return seconds, usage.ru_maxrss / 1024, result


def median_of(argv: list[str], env: dict, runs: int, cwd: Path = ROOT) -> dict:
    timed(argv, env, cwd)  # compiles bytecode; not counted
    seconds, peaks = [], []
    for _ in range(runs):
        s, rss, result = timed(argv, env, cwd)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {result.stderr[-500:]}")
        seconds.append(s)
        peaks.append(rss)
    return {"median_s": round(statistics.median(seconds), 3), "runs_s": [round(s, 3) for s in seconds],
            "peak_rss_mb": round(max(peaks))}


def env_for(archive: Path, clip_model: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(MEMES_ARCHIVE=str(archive), MEMES_ANNOTATE="0")
    if clip_model:
        env["MEMES_CLIP_MODEL"] = clip_model
    return env


def memes(*args: str) -> list[str]:
    return [sys.executable, "-m", "memes", *args]


def through_resident(archive: Path, env: dict, runs: int) -> dict:
    """The same commands answered by a resident (`memes resident`), each still a new process."""
    from memes import resident

    direct = timed(memes("search", "deploy friday", "--json", "-k", "3"), env)
    server = subprocess.Popen(memes("resident", "--minutes", "5"), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        while not resident.running(archive):
            if server.poll() is not None:
                raise SystemExit("the resident did not start")
            time.sleep(0.2)
        out = {"search, through the resident": median_of(memes("search", "deploy friday", "-k", "3"), env, runs),
               "similar IMAGE, through the resident": median_of(memes("similar", str(SIMILAR), "-k", "3"), env, runs)}
        via = timed(memes("search", "deploy friday", "--json", "-k", "3"), env)
        out["resident answers as the CLI"] = via[2].stdout == direct[2].stdout
        return out
    finally:
        server.terminate()
        server.wait(timeout=60)


def same_answers(archive: Path, env: dict, reference: Path, queries: list[str]) -> dict:
    """This checkout's answers against the reference checkout's, query by query."""
    differing = []
    for query in queries:
        ours = json.loads(timed(memes("search", query, "--json", "-k", "10"), env)[2].stdout)
        theirs = json.loads(timed(memes("search", query, "--json", "-k", "10"), env, cwd=reference)[2].stdout)
        for part in ("results", "closest"):
            a, b = ours.get(part) or [], theirs.get(part) or []
            if [r["id"] for r in a] != [r["id"] for r in b] or any(
                    abs(x["score"] - y["score"]) > 1e-5 for x, y in zip(a, b)):
                differing.append({"query": query, "part": part})
    return {"queries": len(queries), "differing": differing}


def make_big(directory: Path, n: int) -> None:
    from archive.config import resolve_config
    from archive.model import Annotation, Meme, OcrText
    from archive.recordfile import read_record_file
    from memes.app import Archive

    seed = read_record_file(ROOT / "tests" / "fixtures" / "000_3d4397e866a55657.txt")
    pool = " ".join(a.text for a in seed.annotations).split()
    rnd = random.Random(11)
    archive = Archive(resolve_config({"archive": directory}, environ={}))
    with archive.lock(), archive.catalog.transaction():
        for i in range(n):
            words = lambda count: " ".join(rnd.choice(pool) for _ in range(count))  # noqa: E731
            archive.catalog.save(Meme(id=f"{i:016x}", first_seen=seed.first_seen, sections=[
                OcrText("tesseract", words(25)), Annotation("simple-description", "llama3.2-vision_11b", words(70))]))
    with archive.lock():
        archive.reindex(text_only=True)
        print("\n".join(archive.prepare_fast_queries()), file=sys.stderr)


def query_file(archive: Path, count: int) -> Path:
    import sqlite3

    rnd = random.Random(5)
    texts = [r[0] for r in sqlite3.connect(archive / "catalog.sqlite3").execute(
        "SELECT body FROM sections WHERE type = 'ocr' ORDER BY id LIMIT 5000")] or ["nothing"]
    lines = []
    for _ in range(count):
        words = rnd.choice(texts).split()
        size = min(len(words), rnd.randint(2, 4))
        start = rnd.randint(0, len(words) - size)
        lines.append(" ".join(words[start:start + size]))
    target = Path(tempfile.mkdtemp()) / "queries.txt"
    target.write_text("\n".join(lines) + "\n")
    return target


def main() -> None:
    if sys.argv[1:2] == ["--build"]:
        make_big(Path(sys.argv[2]), int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", type=Path, required=True)
    ap.add_argument("--with-images", type=Path)
    ap.add_argument("--clip-model")
    ap.add_argument("--big", type=Path)
    ap.add_argument("--make-big", type=int, default=0)
    ap.add_argument("--reference", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    report: dict = {"python -c pass": median_of([sys.executable, "-c", "pass"], dict(os.environ), args.runs)}
    sets = [("sample, no image vectors", args.sample, None)]
    if args.with_images:
        sets.append(("sample, image vectors", args.with_images, args.clip_model))
    for label, archive, clip in sets:
        env = env_for(archive, clip)
        row = {"search": median_of(memes("search", "deploy friday", "-k", "3"), env, args.runs),
               "search, PyTorch encoders": median_of(memes("search", "deploy friday", "-k", "3"),
                                                     {**env, "MEMES_FAST_QUERIES": "0"}, args.runs),
               "similar IMAGE": median_of(memes("similar", str(SIMILAR), "-k", "3"), env, args.runs)}
        row.update(through_resident(archive, env, args.runs))
        if args.reference:
            row["same as reference"] = same_answers(archive, env, args.reference, QUERIES)
        report[label] = row
    if args.big:
        if args.make_big and not (args.big / "catalog.sqlite3").exists():
            start = time.perf_counter()  # in a process of its own: a child forked from a process
            # that loaded the models would report their memory as its own peak
            subprocess.run([sys.executable, __file__, "--build", str(args.big), str(args.make_big)], check=True)
            report["big archive built in s"] = round(time.perf_counter() - start, 1)
        env = env_for(args.big)
        queries = query_file(args.big, 1000)
        row = {"search": median_of(memes("search", "bold text meme", "-k", "10"), env, args.runs)}
        seconds, rss, result = timed(memes("search", "--queries", str(queries), "--json", "-k", "10"), env)
        answered = len(result.stdout.splitlines())
        row["--queries 1000"] = {"answered": answered, "seconds": round(seconds, 2),
                                 "queries_per_s": round(answered / seconds, 1),
                                 "queries_per_s_after_start": round(
                                     answered / max(seconds - row["search"]["median_s"], 1e-3), 1),
                                 "peak_rss_mb": round(rss)}
        if args.reference:
            row["same as reference"] = same_answers(args.big, env, args.reference,
                                                    queries.read_text().splitlines()[:20])
        report["big archive"] = row
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
