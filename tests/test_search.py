import json
import re

import pytest

from archive.hashes import hamming
from search.fusion import fuse
from search.results import SignalHit
from archive.keywords import trigram_expression
from search.signals import window
import numpy as np


def test_rrf_fuses_ranks_and_keeps_one_result_per_meme():
    results = fuse({
        "keyword": [SignalHit("a", 9, "from keyword"), SignalHit("b", 5)],
        "ocr_text": [SignalHit("b", 0.9), SignalHit("a", 0.8), SignalHit("a", 0.7)],
        "image": [SignalHit("c", 0.5)],
    }, k=60, snippet_order=("keyword",))
    assert [r.id for r in results][:2] == ["a", "b"] or [r.id for r in results][:2] == ["b", "a"]
    a = next(r for r in results if r.id == "a")
    assert a.signals == {"keyword": 1, "ocr_text": 2}
    assert a.score == 1 / 61 + 1 / 62
    assert a.snippet == "from keyword"
    assert results[-1].id == "c"


def test_trigram_expression_covers_spaced_and_glued_forms():
    expr = trigram_expression('Yes, it "is"')
    grams = {g.strip('"') for g in expr.split(" OR ")}
    assert {"yes", "s i", " it", "sit", "iti", "tis"} <= grams
    assert trigram_expression("ab") is None and trigram_expression("!?") is None


def test_window_centres_on_a_query_word():
    text = "x " * 200 + "the CHART of llama sizes " + "y " * 200
    snippet = window(text, ["chart"], width=60)
    assert "CHART of llama" in snippet and snippet.startswith("…")


def test_hamming_distance_over_many_hashes():
    others = np.array([0, 0xFF, 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)
    assert hamming("0000000000000000", others).tolist() == [0, 8, 64]


def test_chart_found_by_llama_mistral_chart(indexed, cli):
    result = cli("search", "llama mistral chart", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["query"] == "llama mistral chart"
    top = answer["results"][0]
    assert top["path"].endswith("llama-mistral-chart.png")
    assert set(top) >= {"id", "path", "score", "signals", "snippet"}
    assert "keyword" in top["signals"]


def test_caption_found_with_a_missing_and_a_misspelt_word(indexed, cli):
    result = cli("search", "dose not simpy index memes", "--json", "-k", "3")
    top = json.loads(result.stdout)["results"][0]
    assert top["path"].endswith("one-does-not-simply.jpg") or top["path"].endswith("one-does-not-simply-small.jpg")


def test_every_signal_runs_including_image_vectors(indexed, cli):
    result = cli("search", "monday again", "--json", "-k", "20")
    results = json.loads(result.stdout)["results"]
    signals = set().union(*(r["signals"] for r in results))
    assert {"keyword", "ocr_text", "image"} <= signals
    monday = next(r for r in results if r["path"].endswith("monday-flat.png"))
    # the text signals agree; the tiny image model has random weights, so its rank is noise
    assert monday["signals"]["keyword"] == 1 and monday["signals"]["ocr_text"] == 1
    assert results.index(monday) <= 1


def test_repost_found_by_similar_image_at_rank_1(indexed, cli, tmp_path):
    archive_dir, samples = indexed
    from PIL import Image

    outside = tmp_path / "outside.jpg"
    Image.open(samples / "deploy-friday.jpg").resize((320, 260)).save(outside, quality=30)
    result = cli("similar", outside, "--json", "-k", "3")
    assert result.exit_code == 0, result.output
    top = json.loads(result.stdout)["results"][0]
    assert top["path"].endswith("deploy-friday.jpg")
    assert top["phash_distance"] <= 6 and set(top["signals"]) == {"phash", "image", "caption", "pixels"}
    assert top["caption_similarity"] >= 0.5


def test_similar_by_id_excludes_the_meme_itself(indexed, cli):
    archive_dir, samples = indexed
    shown = cli("similar", samples / "one-does-not-simply.jpg", "--json")
    paths = [r["path"] for r in json.loads(shown.stdout)["results"]]
    assert paths[0].endswith("reposts/one-does-not-simply-small.jpg")
    assert not any(p.endswith("/one-does-not-simply.jpg") for p in paths)


def test_words_found_allows_slips_and_glued_words_but_not_stray_trigrams():
    from search.signals import words_found

    assert words_found(["monday", "again"], "MONDAYAGAIN monday again") == 1.0
    assert words_found(["mondy", "agian"], "MONDAY AGAIN") == 1.0  # a letter dropped, two swapped
    assert words_found(["nobody", "asked"], "NOBODYASKED FOR THIS") == 1.0  # glued by OCR
    assert words_found(["xylophone", "submarine"], "ONE DOES NOT SIMPLY WALK INTO MORDOR") == 0.0
    assert words_found(["friday", "deploy"], "MONDAY AGAIN") == 0.0
    assert words_found(["one", "submarine"], "ONE DOES NOT SIMPLY") == 0.5


def test_a_slip_alone_is_no_match_but_words_said_or_read_in_order_are():
    """In an archive of a thousand memes some word OCR read is a slip away from almost any word:
    a text matches where it says one of the query's words as it is, or reads as them in order."""
    from search.signals import matches, phrase_closeness, words_found

    def match(query: str, text: str) -> bool:
        words = query.split()
        return matches(words, text, phrase_closeness(words, text))

    stray = "YOU WANT TO KNOW IS THAT IT Watt Le ee"
    assert words_found(["hassan", "wyatt"], stray) == 0.5 and not match("hassan wyatt", stray)
    assert not match("alleged", "CHARGERS ARE BETTER THEN CHALLENGERS CHANGE MY MIND")
    assert not match("fridya", "DEPLOYING ON FRIDAY")  # one misspelt word: the meaning decides
    assert match("deploying fridya", "DEPLOYING ON FRIDAY")  # one said as it is, one a slip away
    assert match("mondy agian", "MONDAY AGAIN NOBODY ASKED")  # two slips, read in order
    assert match("nobody asked", "NOBODYASKED FOR THIS")  # inside words OCR glued together
    assert match("friday", "DEPLOYING ON FRIDAY")
    assert match("cat", "CATS BE LIKE") and match("mondays", "MONDAY AGAIN") and match("memes", "ONE MEME")  # plurals
    assert not match("notes", "NOT TODAY") and not match("caring", "MY CAR") and not match("glass", "GLAS")


def test_texts_a_slip_away_do_not_vote_and_fill_at_most_three_of_the_closest():
    from search.engine import CLOSEST_SLIPS, by_meaning, matching

    def hit(meme_id, score, near=None):
        return SignalHit(meme_id, score, detail=None if near is None else {"passage": "", "words": [], "near": near})

    hits = {"keyword": [hit("said", 2.0, near=False)] + [hit(f"slip{i}", 1.9 - i / 10, near=True) for i in range(5)],
            "ocr_text": [hit("close", 0.7), hit("weak", 0.3)]}
    voting = matching(hits)
    assert [h.meme_id for h in voting["keyword"]] == ["said"] and [h.meme_id for h in voting["ocr_text"]] == ["close"]
    near = by_meaning(hits)
    assert [h.meme_id for h in near["keyword"]] == [f"slip{i}" for i in range(CLOSEST_SLIPS)] and CLOSEST_SLIPS == 3
    assert [h.meme_id for h in near["ocr_text"]] == ["close", "weak"]  # under the floor too
    assert "keyword" not in by_meaning({"keyword": [hit("said", 2.0, near=False)], "ocr_text": []})


def test_words_found_asked_about_a_share_answers_on_the_same_side_of_it():
    import random

    from search.signals import words_found

    rnd = random.Random(3)
    pool = ["monday", "mondy", "again", "agian", "one", "does", "not", "simply", "mordor", "x", "it's", "café"]
    for _ in range(3000):
        words = rnd.sample(pool, rnd.randint(1, 5))
        text = rnd.choice(["", " ", "_", "-"]).join(rnd.choice(pool).upper() for _ in range(rnd.randint(0, 8)))
        for share in (0.34, 0.5, 0.75):
            assert (words_found(words, text, share) < share) == (words_found(words, text) < share), (words, text)


def test_a_query_that_matches_nothing_finds_nothing_and_says_so(indexed, cli):
    for query in ("xylophone submarine", "zzzzqqqq", "pennsylvanian decryption"):
        result = cli("search", query, "--json")
        answer = json.loads(result.stdout)
        assert result.exit_code == 0 and answer["results"] == [], (query, answer["results"])
        assert isinstance(answer["closest"], list)
    text = cli("search", "xylophone submarine")
    assert text.stdout.startswith("nothing matches 'xylophone submarine'")
    friday = json.loads(cli("search", "friday", "--json", "-k", "20").stdout)["results"]
    assert [r["path"].rsplit("/", 1)[-1] for r in friday] == ["deploy-friday.jpg"]  # not every meme
    assert json.loads(cli("search", "friday", "--json").stdout)["closest"] == []
    for blank in ("", "   "):
        empty = cli("search", blank)
        assert empty.exit_code == 2 and "the query is empty" in empty.stderr and empty.stdout == ""
        as_json = cli("search", blank, "--json")
        assert as_json.exit_code == 2 and json.loads(as_json.stdout) == {
            "query": blank, "error": "the query is empty: give some words to search for"}
    bad_date = cli("search", "friday", "--after", "yesterday", "--json")
    assert bad_date.exit_code == 2 and "yesterday" in json.loads(bad_date.stdout)["error"]


def test_results_read_cleanly_and_say_why_only_when_asked(indexed, cli):
    archive_dir, samples = indexed
    top = json.loads(cli("search", "monday again", "--json", "-k", "1").stdout)["results"][0]
    assert top["path"].endswith("monday-flat.png")
    assert "MONDAYAGAIN" not in top["snippet"] and "monday again" not in top["snippet"]  # one reading, not three
    assert "MONDAY AGAIN" in top["snippet"]
    plain = cli("search", "monday again", "-k", "1").stdout.splitlines()
    assert plain[0] == f" 1. {samples / 'monday-flat.png'}" and plain[1].strip().startswith("MONDAY AGAIN")
    explained = cli("search", "monday again", "-k", "1", "--explain").stdout.splitlines()
    assert re.match(r" 1\. \d+\.\d{4}  \S+monday-flat\.png  \[keyword:1 ", explained[0]), explained[0]


def test_clean_reading_folds_the_added_word_forms_back():
    from archive.readings import clean_reading, matched_spans
    from indexer.ocr import restore_word_breaks

    read = restore_word_breaks(["MONDAYAGAIN", "NOBODYASKED FOR THIS"])
    assert read.startswith("MONDAYAGAIN monday again")
    assert clean_reading(read) == "MONDAY AGAIN NOBODY ASKED FOR THIS"
    assert clean_reading("MMLU mm lu (%) LLaMA2 llama 2 70") == "MMLU (%) LLaMA2 70"  # as read, once
    assert clean_reading("hungrylizardhatesmy hungry lizard hates my homeworkafterlunch homework after lunch") \
        == "hungry lizard hates my homework after lunch"  # a caption read in lower case, glued
    assert clean_reading("Papa John's john's co mmercials m mercia ls") == "Papa John's co mmercials"  # a fragment
    assert matched_spans("MONDAY AGAIN, monday", "monday x") == [(0, 6), (14, 20)]


def test_searching_by_an_archived_image_names_it_and_shows_the_others(indexed, cli):
    _, samples = indexed
    own = samples / "monday-flat.png"
    meme_id = json.loads(cli("show", own, "--json").stdout)["id"]
    answer = json.loads(cli("similar", own, "--json", "-k", "3").stdout)
    assert answer["itself"] == meme_id and meme_id not in [r["id"] for r in answer["results"]]
    assert answer["results"]  # the others like it
    text = cli("similar", own, "-k", "3").stdout
    assert text.startswith(f"this image is in the archive: meme {meme_id} ({own}); other memes like it:")


def test_the_query_language_takes_phrases_and_exclusions_apart():
    from archive.errors import MemesError
    from search.query import parse

    q = parse('one "does not" simply -mordor -"stack trace"')
    assert q.words == "one does not simply" and q.phrases == ("does not",)
    assert q.excluded == ("mordor", "stack trace")
    assert q.admits("ONE DOES NOT SIMPLY walk") and not q.admits("one does not simply walk into MORDOR")
    assert not q.admits("ONE DOES SIMPLY NOT") and not q.admits("one does not simply read the STACK TRACE")
    assert q.admits("one does not simply read the stack_trace; stack-trace") is False  # "_" parts words
    assert parse('"monday again"').phrases == ("monday again",)
    with pytest.raises(MemesError):
        parse("-mordor")


def test_phrases_and_exclusions_admit_as_the_text_words_spaced_do():
    import random
    import re

    from search.query import parse

    def words_of(text: str) -> list[str]:
        return [w.lower() for w in re.findall(r"[^\W_]+", text)]

    def said(term: str, text: str) -> bool:  # the rule as written: the term's words, spaced, among the text's
        words = words_of(term)
        return bool(words) and f" {' '.join(words)} " in f" {' '.join(words_of(text))} "

    rnd = random.Random(1)
    pieces = ["one", "does", "not", "ONE", "Does", "x_y", "3d", "it's", "é", "İ", "K", "_", "-", "...", " ", "\n"]
    terms = ['"one does"', "-not", '"x y"', '-"3d it\'s"', '"é"', '-""', '"k"', "word", '"does one"']
    for _ in range(4000):
        text = "".join(rnd.choice(pieces) + rnd.choice(["", " ", "_", ","]) for _ in range(rnd.randint(0, 12)))
        query = parse(" ".join(rnd.choice(terms) for _ in range(rnd.randint(1, 3))) + " meme")
        expected = all(said(p, text) for p in query.phrases) and not any(said(x, text) for x in query.excluded)
        assert query.admits(text) == expected, (query, text)



def test_phrases_exclusions_filters_and_sorting_on_the_command_line(indexed, cli, tmp_path):
    _, samples = indexed

    def found(*args) -> list[str]:
        result = cli("search", *args, "--json", "-k", "20")
        assert result.exit_code == 0, result.output
        return [r["path"].rsplit("/", 1)[-1] for r in json.loads(result.stdout)["results"]]

    memes = found("memes")
    assert {"loading.gif", "one-does-not-simply-small.jpg"} <= set(memes)
    assert "loading.gif" not in found("memes -loading") and "loading.gif" not in found('memes -"please wait"')
    assert found('"memes please"') == ["loading.gif"]  # the phrase, in order
    assert found('"please memes"') == []
    assert found("memes", "--in", samples / "reposts") == ["one-does-not-simply-small.jpg"]
    assert found("memes", "--after", "2999-01-01") == [] and set(found("memes", "--before", "2999-01-01")) == set(memes)
    assert found("memes", "--annotated") == []  # nothing here was described by a vision model
    assert set(found("memes", "--has", "text")) == set(memes) and found("memes", "--has", "no-text") == []
    newest = found("memes", "--sort", "first-seen")
    assert sorted(newest) == sorted(memes)
    bad = cli("search", "memes", "--after", "yesterday")
    assert bad.exit_code == 2 and "not a date" in bad.stderr
    assert cli("search", "memes", "--sort", "colour").exit_code == 2


def test_clean_reading_leaves_prose_that_spells_a_word_alone():
    from archive.readings import clean_reading

    assert clean_reading("we came together to get her") == "we came together to get her"
    assert clean_reading("2019 2019 CRAPPY 2020 2020 MEMES") == "2019 CRAPPY 2020 MEMES"


def test_a_batch_of_queries_answers_as_one_query_at_a_time(indexed, cli, tmp_path, monkeypatch):
    """`--queries` reads each query's keyword sections on a thread of their own, ahead, or from
    the sections' trigrams held in memory (a batch of `HOLD_TRIGRAMS_FROM` or more, whose vectors
    are also made and scanned `VECTORS_AT_ONCE` queries at a time, from the catalog's copies or
    from Chroma): the answers are the ones each query gets alone, phrases, exclusions and filters
    included."""
    from search import engine

    _, samples = indexed
    queries = ["monday again", "memes -loading", '"memes please"', "llama mistral chart", "zzzzqqqq",
               "one does not simply", "deploy friday"]
    batch = tmp_path / "queries.txt"
    batch.write_text("\n".join(queries) + "\n")
    monkeypatch.setattr(engine, "VECTORS_AT_ONCE", 3)  # a batch's vectors made and scanned 3 queries at a time
    for scan_limit, extra in (("20000", []), ("0", []), ("20000", ["--in", str(samples / "reposts")]),
                              ("20000", ["--sort", "first-seen"])):
        monkeypatch.setenv("MEMES_EXACT_SCAN_LIMIT", scan_limit)  # 0: the searches ask Chroma
        alone = [cli("search", q, "--json", "-k", "5", *extra).stdout.strip() for q in queries]
        for hold_from in (len(queries) + 1, len(queries)):
            monkeypatch.setattr(engine, "HOLD_TRIGRAMS_FROM", hold_from)
            together = cli("search", "--queries", batch, "--json", "-k", "5", *extra)
            assert together.exit_code == 0, together.output
            assert together.stdout.strip().splitlines() == alone, (scan_limit, extra, hold_from)
    refused = tmp_path / "refused.txt"
    refused.write_text("monday again\n-onlyleftout\nmemes\n")
    for hold_from in (4, 3):
        monkeypatch.setattr(engine, "HOLD_TRIGRAMS_FROM", hold_from)
        result = cli("search", "--queries", refused, "--json")
        assert result.exit_code != 0 and "nothing to look for" in result.stderr
        assert len(result.stdout.splitlines()) == 1  # the query before it was answered


def test_a_reader_that_stops_reading_gets_no_error(indexed, tmp_path):
    """`memes search ... | head -1`: the pipe closes while answers are still being written."""
    import subprocess
    import sys

    queries = tmp_path / "queries.txt"
    queries.write_text("memes\n" * 1500)  # far more than a pipe holds
    proc = subprocess.Popen([sys.executable, "-m", "memes", "search", "--queries", str(queries), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b'{"query": "memes"')
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0 and "Error" not in stderr and "Traceback" not in stderr, stderr
