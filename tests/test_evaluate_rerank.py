"""MTEB-style reranking evaluation: MAP and MRR@10 against hand computations, scikit-learn's
average precision (what MTEB's RerankingEvaluator calls) and pytrec_eval where they coincide."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from ragsift.errors import DataFormatError
from ragsift.evaluate import (
    RerankingSample,
    average_precision,
    evaluate,
    evaluate_reranking,
    read_reranking_samples,
    reciprocal_rank,
)


def by_text(scores):
    return lambda pairs: [scores[doc] for _, doc in pairs]


def test_hand_computed_map_and_mrr():
    samples = [
        # ranking by score: n1 (0.9), p1 (0.8), n2 (0.5), p2 (0.3)
        # AP = (1/2 + 2/4) / 2 = 0.5; first positive at rank 2: RR = 1/2
        RerankingSample("q1", ["p1", "p2"], ["n1", "n2"]),
        # ranking: p3 (0.7), n3 (0.2): AP = 1, RR = 1
        RerankingSample("q2", ["p3"], ["n3"]),
        # 11 negatives above the positive: AP = 1/12, RR@10 = 0 (rank 12 is past the cut)
        RerankingSample("q3", ["p4"], [f"m{i}" for i in range(11)]),
        RerankingSample("q4", [], ["n1"]),  # no positive: skipped, as MTEB does
    ]
    scores = {"p1": 0.8, "p2": 0.3, "n1": 0.9, "n2": 0.5, "p3": 0.7, "n3": 0.2, "p4": 0.0,
              **{f"m{i}": 1.0 + i for i in range(11)}}
    result = evaluate_reranking(samples, by_text(scores))
    assert result.per_query["map"] == pytest.approx({"0": 0.5, "1": 1.0, "2": 1 / 12})
    assert result.per_query["mrr@10"] == pytest.approx({"0": 0.5, "1": 1.0, "2": 0.0})
    assert result.mean["map"] == pytest.approx((0.5 + 1 + 1 / 12) / 3)
    assert result.mean["mrr@10"] == pytest.approx(0.5)
    assert (result.num_queries, result.missing_queries) == (3, 1)


def test_ties_group_in_ap_and_rank_negatives_first_in_mrr():
    # all three tied: AP = precision of the whole tied set = 1/3; the positive ranks third
    assert average_precision([True, False, False], [1.0, 1.0, 1.0]) == pytest.approx(1 / 3)
    assert reciprocal_rank([True, False, False], [1.0, 1.0, 1.0]) == pytest.approx(1 / 3)
    # p (0.9) then {p, n} tied at 0.5: thresholds 0.9 -> R 1/2, P 1; 0.5 -> R 1, P 2/3
    assert average_precision([True, True, False], [0.9, 0.5, 0.5]) == pytest.approx(
        0.5 * 1 + 0.5 * 2 / 3)


def test_average_precision_equals_scikit_learn_with_ties():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for _ in range(200):
        size = int(rng.integers(2, 30))
        relevant = rng.random(size) < 0.3
        relevant[0], relevant[-1] = True, False
        scores = rng.integers(0, 6, size) / 5  # many ties
        assert average_precision(relevant, scores) == pytest.approx(
            metrics.average_precision_score(relevant, scores), abs=1e-12)


def test_map_and_mrr_equal_pytrec_eval_without_ties():
    rng = np.random.default_rng(1)
    samples, scores, qrels, run = [], {}, {}, {}
    for q in range(40):
        size = int(rng.integers(2, 25))
        positives = int(rng.integers(1, size))
        docs = [f"q{q}d{i}" for i in range(size)]
        values = rng.permutation(size) + rng.random()  # distinct scores
        scores.update(zip(docs, values))
        samples.append(RerankingSample(f"q{q}", docs[:positives], docs[positives:]))
        qrels[f"q{q}"] = {d: 1 for d in docs[:positives]}
        run[f"q{q}"] = dict(zip(docs, map(float, values)))
    ours = evaluate_reranking(samples, by_text(scores))
    peer = evaluate(qrels, run, ["map", "mrr@10"])
    assert ours.mean["map"] == pytest.approx(peer.mean["map"], abs=1e-9)
    assert ours.mean["mrr@10"] == pytest.approx(peer.mean["mrr@10"], abs=1e-9)


def test_reading_candidates_names_the_line_and_field(tmp_path):
    path = tmp_path / "cands.jsonl"
    path.write_text(json.dumps({"query": "q", "positive": ["a"], "negative": ["b", "c"]})
                    + "\n" + json.dumps({"query": "q", "positive": ["a"]}) + "\n")
    with pytest.raises(DataFormatError) as info:
        list(read_reranking_samples(path))
    assert (info.value.line, info.value.field) == (2, "negative")


def test_command_scores_a_reranker(tmp_path, tiny_cross_encoder, tiny_beir, capsys):
    from ragsift.cli import evaluate_rerank
    from ragsift.rerank import Reranker

    rows = [{"query": "which animals sleep a lot", "positive": ["Cats sleep a lot."],
             "negative": ["Rust is a language.", "Wolves hunt in packs."]},
            {"query": "tower in paris", "positive": ["The Eiffel Tower is in Paris."],
             "negative": ["BM25 ranks documents."]}]
    path = tmp_path / "cands.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    parser = argparse.ArgumentParser()
    evaluate_rerank.register(parser.add_subparsers())
    args = parser.parse_args(["evaluate-rerank", "--model", str(tiny_cross_encoder),
                              "--candidates", str(path), "--json", "--per-query"])
    assert args.func(args) == 0
    printed = json.loads(capsys.readouterr().out)
    samples = list(read_reranking_samples(path))
    expected = evaluate_reranking(samples, Reranker.load(tiny_cross_encoder).score)
    assert printed["mean"] == pytest.approx(expected.mean)
    assert printed["num_queries"] == 2 and printed["skipped_queries"] == 0
    # candidates from a BEIR folder and a run: judged documents are the positives
    run_file = tmp_path / "run.trec"
    run_file.write_text("q1 Q0 d1 1 2.0 x\nq1 Q0 d2 2 1.0 x\nq4 Q0 d3 1 1.0 x\n")
    args = parser.parse_args(["evaluate-rerank", "--model", str(tiny_cross_encoder),
                              "--data", str(tiny_beir), "--run", str(run_file), "--json"])
    assert args.func(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["num_queries"] == 1 and printed["skipped_queries"] == 1  # q4: no positive
