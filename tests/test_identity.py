"""Meme identity in the user's hands: what indexing joined can be split, what it kept apart can
be joined; both are remembered by later runs and carried by exported records; every file's words
stay searchable whatever was joined."""
from __future__ import annotations

import json
import os
import time

import pytest

SMALL = "reposts/one-does-not-simply-small.jpg"
ORIGINAL = "one-does-not-simply.jpg"


@pytest.fixture
def grouped(archive_dir, samples, cli, monkeypatch):
    """The samples indexed with repost grouping on: the small repost joins its original."""
    monkeypatch.setenv("MEMES_GROUP_REPOSTS", "1")
    result = cli("index", samples, "--json")
    assert result.exit_code == 0, result.output
    return samples, json.loads(result.stdout)


def _show(cli, ref) -> dict:
    result = cli("show", ref, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _joined(cli, samples):
    """The meme the two files are, and which file joined it as a copy (whichever came second)."""
    meme = _show(cli, samples / ORIGINAL)
    copy = next(o["copy"]["path"] for o in meme["ocr"] if "copy" in o)
    return meme, copy


def _touch(path) -> None:
    later = time.time() + 5
    os.utime(path, (later, later))  # a re-run reads the file again (size and time decide)


def test_index_reports_the_copies_it_joined_and_keeps_their_words(grouped, cli):
    samples, summary = grouped
    assert summary["joined_copies"] == 1 and summary["new_sightings"] == 1
    original, copy = _joined(cli, samples)
    assert copy in (str(samples / SMALL), str(samples / ORIGINAL))
    assert summary["joined_files"] == [{"path": copy, "meme": original["id"]}]
    copies = [o for o in original["ocr"] if "copy" in o]
    assert copies and all(o["copy"]["path"] == copy for o in copies)
    assert any("SIMPLY" in o["text"].upper() for o in copies)
    record = cli("show", original["id"]).stdout
    assert f"-ocr (copy {copies[0]['copy']['id']})" in record and "\nCopies\n" in record


def test_split_then_join_are_remembered_by_later_runs_and_records(grouped, cli, tmp_path):
    samples, _ = grouped
    original, copy = _joined(cli, samples)
    split = cli("split", original["id"], copy, "--json")
    assert split.exit_code == 0, split.output
    alone = json.loads(split.stdout)
    assert alone["id"] != original["id"] and [s["path"] for s in alone["sightings"]] == [copy]
    assert alone["ocr"] and not any("copy" in o for o in alone["ocr"])  # its words came with it
    assert not any("copy" in o for o in _show(cli, original["id"])["ocr"])
    _touch(copy)
    again = json.loads(cli("index", samples, "--json").stdout)
    assert again["memes_in_archive"] == 10 and _show(cli, copy)["id"] == alone["id"]
    exported = tmp_path / "records"
    assert cli("export", exported).exit_code == 0
    assert any("Kept Apart" in f.read_text() for f in exported.iterdir())

    joined = cli("join", original["id"], alone["id"], "--json")
    assert joined.exit_code == 0, joined.output
    together = json.loads(joined.stdout)
    assert sorted(os.path.basename(s["path"]) for s in together["sightings"]) == [
        "one-does-not-simply-small.jpg", "one-does-not-simply.jpg"]
    _touch(copy)
    assert json.loads(cli("index", samples, "--json").stdout)["memes_in_archive"] == 9
    assert _show(cli, copy)["id"] == original["id"]
    record = cli("show", original["id"]).stdout
    assert "Joined By Hand" in record and "Kept Apart" not in record


def test_a_split_survives_a_rebuild_from_exported_records(grouped, cli, tmp_path, monkeypatch):
    samples, _ = grouped
    original, copy = _joined(cli, samples)
    assert cli("split", original["id"], copy).exit_code == 0
    exported = tmp_path / "records"
    assert cli("export", exported).exit_code == 0
    monkeypatch.setenv("MEMES_ARCHIVE", str(tmp_path / "rebuilt"))
    assert cli("import", *sorted(exported.iterdir())).exit_code == 0
    rebuilt = json.loads(cli("index", samples, "--json").stdout)
    assert rebuilt["memes_in_archive"] == 10 and rebuilt["joined_copies"] == 0
    assert _show(cli, samples / SMALL)["id"] != _show(cli, samples / ORIGINAL)["id"]


def test_bad_split_and_join_requests_are_one_line(grouped, cli):
    samples, _ = grouped
    original, copy = _joined(cli, samples)
    own_file = ({str(samples / SMALL), str(samples / ORIGINAL)} - {copy}).pop()
    own = cli("split", original["id"], own_file)
    assert own.exit_code == 1 and "own bytes" in own.stderr and "Traceback" not in own.stderr
    other = cli("split", original["id"], samples / "coffee-code.jpg")
    assert other.exit_code == 1 and "is not a file of meme" in other.stderr
    itself = cli("join", original["id"], original["id"])
    assert itself.exit_code == 1 and "one meme already" in itself.stderr


def test_the_gallery_splits_and_joins_from_the_meme_page(grouped, cli):
    from tests.conftest import gallery_client, page_csrf

    samples, _ = grouped
    original, copy = _joined(cli, samples)
    client = gallery_client(script=False)  # the page's own form, as a browser without scripts sends it
    page = client.get(f"/meme/{original['id']}")
    assert page.status_code == 200 and 'action="/meme/' in page.text and "Not the same meme" in page.text
    split = client.post(f"/meme/{original['id']}/split", data={"path": copy, "csrf": page_csrf(page.text)},
                        follow_redirects=False)
    assert split.status_code == 303
    alone = split.headers["location"].rsplit("/", 1)[-1]
    assert alone != original["id"] and client.get(f"/api/memes/{alone}").json()["path"] == copy
    script = {"X-Memes-Request": "1"}
    joined = client.post(f"/api/memes/{original['id']}/join", data={"other": alone}, headers=script)
    assert joined.status_code == 200 and len(joined.json()["sightings"]) == 2
    assert client.post(f"/api/memes/{original['id']}/join", data={"other": "ffffffff"},
                       headers=script).status_code == 404


def test_a_split_file_that_comes_back_new_is_still_kept_apart(grouped, cli, tmp_path):
    """Its meme forgotten (the file gone, pruned with its orphans), the file indexed again as
    new bytes: grouping would join it to the original; what the user said keeps it apart."""
    samples, _ = grouped
    original, copy = _joined(cli, samples)
    assert cli("split", original["id"], copy).exit_code == 0
    away = tmp_path / "away.jpg"
    os.rename(copy, away)
    pruned = cli("index", samples, "--prune", "--prune-orphans", "--json")
    assert json.loads(pruned.stdout)["memes_in_archive"] == 9
    os.rename(away, copy)
    back = json.loads(cli("index", samples, "--json").stdout)
    assert back["new_memes"] == 1 and back["joined_copies"] == 0 and back["memes_in_archive"] == 10
    assert _show(cli, copy)["id"] != original["id"]
