"""The search-quality harness: its arithmetic, its query builder, and a run on the project's own
evaluation set (made here, indexed here) that fails when a figure drops below its floor."""
from __future__ import annotations

import json
import random
import sys

import pytest

from search.evaluate import (FUSED, KNOWN_ITEM, NEGATIVE, REPOST, SAME_TEMPLATE, SHOWN, Query, Ranked, build_queries,
                             metrics, misspell, report, tune)
from search.results import SignalHit
from tests.conftest import ROOT

# Floors for the own set (12 templates x 3 memes, 144 altered copies), set a little under what
# this machine measured with the tiny random image model (`memes eval` on it: known item keyword
# 1.000 / 1.000, fused 1.000 / 1.000; repost phash 0.917, pixels 1.000, fused 1.000 (crop 1.000,
# border 1.000); same template fused 0.958). One query of 36 is 0.028.
FLOORS = {
    (KNOWN_ITEM, "keyword"): {"recall@1": 0.94, "recall@10": 0.97},
    (KNOWN_ITEM, FUSED): {"recall@1": 0.94, "recall@10": 0.97},
    (KNOWN_ITEM, SHOWN): {"recall@10": 0.97},
    (REPOST, "phash"): {"recall@1": 0.85},
    (REPOST, "pixels"): {"recall@1": 0.97},
    (REPOST, FUSED): {"recall@1": 0.97, "recall@10": 0.97},
    (f"{REPOST}:crop", FUSED): {"recall@1": 0.94},
    (f"{REPOST}:border", FUSED): {"recall@1": 0.94},
    (SAME_TEMPLATE, FUSED): {"recall@1": 0.9},
    # 200 queries whose words are in no meme: the share that returns nothing (measured 0.985)
    (NEGATIVE, FUSED): {"nothing": 0.95},
    (NEGATIVE, "keyword"): {"nothing": 0.95},
}


def test_metrics_of_one_ranking():
    m = metrics(["a", "b", "c"], {"b"})
    assert m["recall@1"] == 0 and m["recall@10"] == 1 and m["mrr"] == 0.5
    assert m["ndcg@10"] == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert metrics(["a"], {"z"}) == {"recall@1": 0.0, "recall@10": 0.0, "mrr": 0.0, "ndcg@10": 0.0}
    two = metrics(["x", "y"], {"x", "y"})
    assert two["ndcg@10"] == pytest.approx(1.0)


def _ranked(n: int) -> list[Ranked]:
    rnd = random.Random(0)
    out = []
    for i in range(n):
        target = f"m{i}"
        noise = [f"n{rnd.randrange(100)}" for _ in range(5)]
        good = [SignalHit(x, 1.0) for x in [noise[0], target] + noise[1:]]  # right at rank 2
        bad = [SignalHit(x, 1.0) for x in noise[::-1]]  # never right, confident about noise
        out.append(Ranked(Query(f"q{i}", KNOWN_ITEM, [target]), {"good": good, "bad": bad}))
    return out


def test_report_scores_each_signal_and_the_fusion():
    result = report(_ranked(20))
    known = result["by_type"][KNOWN_ITEM]
    assert known["good"]["mrr"] == 0.5 and known["bad"]["mrr"] == 0.0
    assert known[FUSED]["queries"] == 20 and result["overall"]["queries"] == 20


def test_a_known_item_under_the_floor_counts_as_shown_only_where_nothing_matched():
    near = {"ocr_text": [SignalHit("other", 0.3), SignalHit("target", 0.2)]}
    lost = Ranked(Query("q1", KNOWN_ITEM, ["target"]), {"keyword": [], "ocr_text": []}, near)
    crowded = Ranked(Query("q2", KNOWN_ITEM, ["target"]), {"keyword": [SignalHit("third", 1.0)], "ocr_text": []}, near)
    known = report([lost, crowded])["by_type"][KNOWN_ITEM]
    assert known[FUSED]["recall@10"] == 0.0
    assert known[SHOWN]["recall@10"] == 0.5 and known[SHOWN]["recall@1"] == 0.0 and known[SHOWN]["mrr"] == 0.25


def test_tuning_turns_a_useless_signal_down():
    ranked = _ranked(30)
    k, weights, mrr = tune(ranked, ["bad", "good"])
    assert weights["bad"] < weights["good"]
    assert mrr > report(ranked)["by_type"][KNOWN_ITEM][FUSED]["mrr"]


def test_queries_are_built_from_a_truth_file():
    truth = [{"id": f"m{i}", "file": f"m{i}.jpg", "template": f"t{i % 3}", "text": f"caption number {i} about cats and dogs",
              "variant_of": None} for i in range(9)]
    truth.append({"id": "m0_crop", "file": "m0_crop.jpg", "template": "t0", "text": truth[0]["text"],
                  "variant_of": "m0", "variant": "crop"})
    queries = build_queries(truth, variants_dir="copies")
    kinds = [q["type"] for q in queries]
    assert kinds.count(KNOWN_ITEM) == 9 and kinds.count(REPOST) == 1 and kinds.count(SAME_TEMPLATE) == 6
    repost = next(q for q in queries if q["type"] == REPOST)
    assert repost == {"id": "r-m0_crop", "type": REPOST, "image": "copies/m0_crop.jpg", "alteration": "crop",
                      "relevant": ["m0"]}
    for q in queries:
        if q["type"] == SAME_TEMPLATE:
            assert q["meme"] not in q["relevant"] and len(q["relevant"]) == 2
        if q["type"] == KNOWN_ITEM:
            assert 2 <= len(q["text"].split()) <= 6
    assert misspell("simply", random.Random(1)) != "simply"


@pytest.fixture(scope="module")
def own_set(tmp_path_factory, tiny_clip_dir):
    """The own evaluation set, made and indexed once: (folder, report from `memes eval --json --tune`)."""
    sys.path.insert(0, str(ROOT / "data"))
    from make_evalset import make

    folder = tmp_path_factory.mktemp("evalset")
    make(folder, templates=12, per_template=3)
    env = {"MEMES_ARCHIVE": str(folder / "archive"), "MEMES_CLIP_MODEL": f"local-dir:{tiny_clip_dir}",
           "MEMES_ANNOTATE": "0"}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        from typer.testing import CliRunner

        from memes.cli import app

        indexed = CliRunner().invoke(app, ["--quiet", "index", str(folder / "images")])
        assert indexed.exit_code == 0, indexed.output
        result = CliRunner().invoke(app, ["eval", str(folder / "truth.jsonl"), str(folder / "queries.jsonl"),
                                          "--json", "--tune"])
        assert result.exit_code == 0, result.output
        text = CliRunner().invoke(app, ["eval", str(folder / "truth.jsonl"), str(folder / "queries.jsonl")])
        assert text.exit_code == 0 and "known_item / keyword" in text.stdout
    return folder, json.loads(result.stdout)


@pytest.mark.slow
def test_the_harness_covers_every_query_type_and_signal(own_set):
    by_type = own_set[1]["report"]["by_type"]
    assert by_type[KNOWN_ITEM]["keyword"]["queries"] == 36
    assert {"keyword", "ocr_text", "annotation_text", "image", FUSED, SHOWN} <= set(by_type[KNOWN_ITEM])
    assert {"phash", "image", FUSED} <= set(by_type[REPOST]) and by_type[REPOST][FUSED]["queries"] == 144
    assert {f"{REPOST}:{a}" for a in ("jpeg", "half", "crop", "border")} <= set(by_type)
    assert by_type[SAME_TEMPLATE][FUSED]["queries"] == 24
    tuning = own_set[1]["tuning"]
    assert set(tuning["chosen"]) == {"text", "image"} and tuning["held_out_queries"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("where", sorted(FLOORS))
def test_search_quality_stays_above_its_floor(own_set, where):
    figures = own_set[1]["report"]["by_type"][where[0]][where[1]]
    for metric, floor in FLOORS[where].items():
        assert figures[metric] >= floor, f"{where} {metric} fell to {figures[metric]} (floor {floor})"
