from datetime import datetime, timedelta, timezone

import pytest

from archive.catalog import Catalog
from archive.errors import MemeNotFound
from archive.model import Annotation, Meme, OcrText, Sighting

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def catalog(tmp_path, backend):
    c = Catalog(backend.catalog_location(tmp_path))
    yield c
    c.close()


def _meme(meme_id="aaaa000011112222", text="ONE DOES NOT SIMPLY WALK INTO MORDOR", path="/m/a.jpg"):
    return Meme(id=meme_id, content_hash=meme_id * 4, phash="ffff0000ffff0000", first_seen=T0,
                sections=[OcrText("tesseract", text)], sightings=[Sighting(path, T0, 10, 1.5)])


def test_save_and_get_keep_sections_in_order(catalog):
    meme = _meme()
    meme.sections.insert(0, Annotation("simple-description", "llava", "A man in a cloak."))
    catalog.save(meme)
    again = catalog.require(meme.id)
    assert [type(s).__name__ for s in again.sections] == ["Annotation", "OcrText"]
    assert again.sightings[0].path == "/m/a.jpg" and again.path == "/m/a.jpg"


def test_resaving_replaces_a_section_of_the_same_kind_and_source(catalog):
    meme = _meme()
    catalog.save(meme)
    meme.sections = [OcrText("tesseract", "NEW TEXT")]
    catalog.save(meme)
    assert catalog.require(meme.id).ocr_text == "NEW TEXT"
    assert [r["meme_id"] for r in catalog.match_sections("new text", 5)] == [meme.id]
    assert catalog.match_sections("mordor", 5) == []


def test_many_memes_read_at_once_are_each_as_read_alone(catalog):
    first, second = _meme(), _meme("bbbb000011112222", "MONDAY AGAIN", "/m/b.jpg")
    first.sections += [Annotation("simple-description", "llava", "A man."), OcrText("tesseract", "COPY", copy="c" * 16)]
    first.kept_apart, second.joined_by_hand = ["1" * 64, "0" * 64], ["2" * 64]
    catalog.save(first)
    catalog.save(second)
    catalog.add_sighting(first.id, Sighting("/m/z.jpg", T0 + timedelta(days=1)))
    catalog.add_sighting(first.id, Sighting("/m/0.jpg", T0))
    both = catalog.get_many([second.id, "ffff000011112222", first.id])
    assert set(both) == {first.id, second.id}  # an id that is no meme is left out
    for meme_id in (first.id, second.id):
        assert both[meme_id] == catalog.get(meme_id)
    alone = catalog.get(first.id)
    assert [s.path for s in alone.sightings] == ["/m/0.jpg", "/m/a.jpg", "/m/z.jpg"] and alone.path == "/m/z.jpg"
    assert alone.kept_apart == ["0" * 64, "1" * 64] and catalog.get(second.id).joined_by_hand == ["2" * 64]
    assert [type(s).__name__ for s in alone.sections] == ["OcrText", "Annotation", "OcrText"]
    assert catalog.get_many([]) == {}


def test_first_seen_is_the_earliest_sighting(catalog):
    catalog.save(_meme())
    catalog.add_sighting("aaaa000011112222", Sighting("/m/old.jpg", T0 - timedelta(days=30)))
    catalog.add_sighting("aaaa000011112222", Sighting("/m/new.jpg", T0 + timedelta(days=30)))
    assert catalog.require("aaaa000011112222").first_seen == T0 - timedelta(days=30)


def test_resolve_by_id_prefix_hash_and_path(catalog):
    catalog.save(_meme())
    catalog.save(_meme("aaaa999911112222", "OTHER", "/m/b.jpg"))
    assert catalog.resolve("aaaa000011112222") == "aaaa000011112222"
    assert catalog.resolve("aaaa0000") == "aaaa000011112222"
    assert catalog.resolve("/m/b.jpg") == "aaaa999911112222"
    assert catalog.resolve("aaaa999911112222" * 4) == "aaaa999911112222"
    with pytest.raises(MemeNotFound, match="several memes"):
        catalog.resolve("aaaa")
    with pytest.raises(MemeNotFound, match="no meme matches"):
        catalog.resolve("/m/none.jpg")


def test_keyword_match_tolerates_glued_and_misread_words(catalog):
    catalog.save(_meme(text="ONEDOES NOTSIMPLY WALK INTO M0RDOR"))
    catalog.save(_meme("bbbb000011112222", "SUCCESS KID FIST PUMP", "/m/c.jpg"))
    rows = catalog.match_sections("one does not simply walk into mordor", 10)
    assert rows[0]["meme_id"] == "aaaa000011112222"


def test_vector_bookkeeping(catalog):
    catalog.save(_meme())
    assert catalog.marks.needing("ocr_text", "m1") == ["aaaa000011112222"]
    catalog.marks.mark(["aaaa000011112222"], "ocr_text", "m1")
    assert catalog.marks.needing("ocr_text", "m1") == []
    assert catalog.marks.needing("ocr_text", "m2") == ["aaaa000011112222"]
    catalog.marks.unmark("aaaa000011112222")
    assert catalog.marks.needing("ocr_text", "m1") == ["aaaa000011112222"]


def test_committed_owner_from_another_thread(catalog):
    import threading

    catalog.save(_meme())
    seen = []
    thread = threading.Thread(target=lambda: seen.append(catalog.committed_owner("aaaa000011112222" * 4)))
    thread.start()
    thread.join()
    assert seen == [_meme().id]


def test_reopening_keeps_everything(tmp_path, backend):
    first = Catalog(backend.catalog_location(tmp_path))
    first.save(_meme())
    first.close()
    again = Catalog(backend.catalog_location(tmp_path))
    assert again.ids() == ["aaaa000011112222"]


def test_keyword_search_prefers_the_words_in_their_order(catalog):
    from search.signals import keyword, phrase_closeness

    catalog.save(_meme("aaaa000000000001", "PAPER PAPER PRINTER JAM JAM SAYS", "/m/1.jpg"))
    catalog.save(_meme("aaaa000000000002", "WHEN THE PRINTER SAYS PAPER JAM BUT THERE IS NO PAPER", "/m/2.jpg"))
    # the word soup shares the query's trigrams most densely; the caption that says it comes first
    assert catalog.match_sections("printer says paper jam", 5)[0]["meme_id"] == "aaaa000000000001"
    assert [h.meme_id for h in keyword(catalog, "printer says paper jam", 5)][0] == "aaaa000000000002"
    assert phrase_closeness(["paper", "jam", "again"], "the printer says\nPAPER JAM AGAIN!") == 1.0
    assert phrase_closeness(["paper", "jam", "again"], "THEPRINTERSAYSPAPERJAMAGAIN") == 1.0  # glued by OCR
    assert (phrase_closeness(["paper", "jm", "again"], "the printer says PAPER JAM AGAIN")
            > phrase_closeness(["paper", "jm", "again"], "AGAIN JAM PAPER"))


def test_every_change_to_a_record_is_noted_for_the_records_folder(tmp_path):
    from archive.recordsdir import read_folder, write_changed

    catalog = Catalog(tmp_path / "c.sqlite3")
    first, second = _meme(), _meme("bbbb000011112222", "ANOTHER ONE", "/m/b.jpg")
    catalog.save(first)
    catalog.save(second)
    assert catalog.changed_records(10) == sorted([first.id, second.id])
    assert write_changed(catalog, tmp_path / "records") == 2 and catalog.changed_records(10) == []
    catalog.add_sighting(first.id, Sighting("/m/again.jpg", T0 + timedelta(days=1)))  # an upsert's trigger too
    catalog.save(first)
    catalog.put_identity_rule(second.content_hash, "apart", first.content_hash)
    assert catalog.changed_records(10) == sorted([first.id, second.id])
    with catalog.transaction():
        catalog.delete(second.id)
    write_changed(catalog, tmp_path / "records")
    kept = list(read_folder(tmp_path / "records"))
    assert [k.meme.id for k in kept] == [first.id]
    assert [s.path for s in kept[0].meme.sightings] == ["/m/a.jpg", "/m/again.jpg"]
    catalog.close()


def test_sqlite_and_postgresql_schemas_describe_the_same_tables_and_columns(tmp_path, backend):
    """Both engines run the one list of migrations (`archive.schema`): the same tables with the same
    columns, apart from each engine's own (FTS5's index tables, PostgreSQL's schema version)."""
    if backend.name != "servers":
        pytest.skip("compares SQLite with the PostgreSQL server")
    sqlite, postgres = Catalog(tmp_path / "c.sqlite3"), Catalog(backend.records_url)
    try:
        lite = {t: {c[1] for c in sqlite.db.execute(f"PRAGMA table_info({t})")}
                for (t,) in sqlite.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if not t.startswith(("sqlite_", "sections_fts"))}
        pg: dict[str, set[str]] = {}
        for table, column in postgres.db.execute(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"):
            if table != "schema_version":
                pg.setdefault(table, set()).add(column)
    finally:
        sqlite.close()
        postgres.close()
    assert lite == pg
    assert {"memes", "sightings", "sections", "annotation_jobs", "embeddings", "record_changes"} <= set(lite)


@pytest.mark.parametrize("chunk_rows", [2000, 7])
def test_trigrams_held_in_memory_rank_as_fts5_does(tmp_path, monkeypatch, chunk_rows):
    """`TrigramIndex` (a batch of queries) gives the rows, order and scores FTS5's `bm25()` gives:
    capitals, accents and other scripts, glued and misread words, short and long sections,
    identical sections (ties go by row id), and queries that match nothing."""
    import random

    from archive import keywords

    monkeypatch.setattr(keywords, "CHUNK_ROWS", chunk_rows)
    rnd = random.Random(5)
    words = ["monday", "again", "NOBODY", "asked", "Ünïcode", "straße", "日本語テキスト", "deploy", "friday",
             "ONE", "does", "not", "simply", "walk", "into", "mordor", "cat", "x", "ok", "🙂🙂🙂", "çava"]
    columns = ("meme_id", "type", "kind", "source", "body", "score")
    catalog = Catalog(tmp_path / "c.sqlite3")
    try:
        for n in range(60):
            text = " ".join(rnd.choice(words) for _ in range(rnd.randint(0, 25)))
            if n % 7 == 0:
                text = text.replace(" ", "")  # OCR that glued the words
            catalog.save(Meme(id=f"{n:016x}", content_hash=f"{n:064x}", phash="ffff0000ffff0000", first_seen=T0,
                              sections=[OcrText("tesseract", text),
                                        OcrText("rapidocr", "MONDAY AGAIN" if n % 5 == 0 else text[:2])],
                              sightings=[Sighting(f"/m/{n}.jpg", T0)]))
        held = catalog.trigram_index()
        found = 0
        for query in ["monday again", "mondayagain", "nobody asked", "UNICODE", "strasse straße", "日本語", "one does",
                      "simpy walk into mordr", "zzzz qqqq", "ok", "çava 🙂", "deploy friday cat"]:
            for limit in (3, 200):
                fts5 = [{c: r[c] for c in columns} for r in catalog.match_sections(query, limit)]
                assert [{c: r[c] for c in columns} for r in catalog.match_sections(query, limit, held=held)] == fts5
                found += len(fts5)
        assert found > 300
    finally:
        catalog.close()
