"""The resident process: searches handed to it answer as the CLI's own do, never from an archive
state it no longer has, and a CLI that finds none (or a dead one) does the work itself."""
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from memes import resident
from tests.conftest import flat_colour_memes


def _ask(*argv: str):
    """What the resident answers for a `memes` command line (None: it did not answer)."""
    return resident.forwarded(list(argv))


@pytest.fixture
def running(indexed):
    archive_dir, samples = indexed
    proc = subprocess.Popen([sys.executable, "-m", "memes", "resident", "--minutes", "2"], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not resident.running(archive_dir):
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline, "the resident did not start"
        time.sleep(0.2)
    yield archive_dir, samples, proc
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_the_resident_answers_as_the_cli_does(running, cli, monkeypatch):
    archive_dir, samples, _ = running
    monkeypatch.chdir(samples.parent)  # relative paths are the caller's
    mode = stat.S_IMODE(os.stat(archive_dir / resident.SOCKET).st_mode)
    assert mode == 0o600
    for argv in (["search", "deploy friday", "--json"], ["search", "zzqqxx", "--json", "-k", "3"],
                 ["search", "monday", "--explain"], ["search", "chart", "--sort", "first-seen"],
                 ["similar", str(samples / "one-does-not-simply.jpg"), "--json"],
                 ["search", "friday", "--in", "samples", "--json"], ["similar", "samples/deploy-friday.jpg"]):
        answered = _ask(*argv)
        assert answered is not None, argv
        direct = cli(*argv)
        assert answered == (direct.exit_code, direct.stdout, direct.stderr), argv
    code, out, err = _ask("search", "x", "--sort", "sideways")
    assert code == 2 and "sort must be one of" in err and out == ""  # a usage error, as the CLI says it
    assert _ask("stats") is None and _ask("search", "--help") is None  # not searches: the CLI's own


def test_the_resident_never_answers_from_an_archive_that_changed(running, cli, tmp_path):
    archive_dir, _, _ = running
    code, out, _ = _ask("search", "good meme number 3 says hello", "--json")
    assert code == 0 and not any("good03" in r["path"] for r in json.loads(out)["results"])
    folder = tmp_path / "more"
    flat_colour_memes(folder, 4)
    assert cli("index", folder).exit_code == 0  # another process's commit, as far as the resident knows
    code, out, _ = _ask("search", "good meme number 3 says hello", "--json")
    assert json.loads(out)["results"][0]["path"].endswith("good03.jpg")


def test_a_dead_resident_is_no_matter(indexed, cli):
    archive_dir, _ = indexed
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:  # bound, never listening: as one killed
        stale.bind(str(archive_dir / resident.SOCKET))
    assert _ask("search", "deploy friday") is None
    run = subprocess.run([sys.executable, "-m", "memes", "search", "deploy friday", "--json"], env=dict(os.environ),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and json.loads(run.stdout)["results"][0]["path"].endswith("deploy-friday.jpg")


def test_a_search_can_leave_a_resident_behind(indexed, monkeypatch):
    archive_dir, _ = indexed
    env = dict(os.environ, MEMES_RESIDENT_MINUTES="0.5")
    run = subprocess.run([sys.executable, "-m", "memes", "search", "deploy friday"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    deadline = time.time() + 120
    while not resident.running(archive_dir):
        assert time.time() < deadline, "no resident was started"
        time.sleep(0.2)
    answered = _ask("search", "deploy friday")
    assert answered is not None and answered[1] == run.stdout
    second = subprocess.run([sys.executable, "-m", "memes", "resident", "--minutes", "0.1"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 1 and "already serves" in second.stderr
    (archive_dir / resident.SOCKET).unlink()  # the first exits after its next command (or when idle)
    assert _ask("search", "deploy friday") is None


def test_a_stopped_resident_leaves_nothing_behind(running):
    archive_dir, _, proc = running
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert not (archive_dir / resident.SOCKET).exists()
    assert _ask("search", "deploy friday") is None
