"""Metrics against hand-computed cases; significance tests against scipy and exact enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from ragsift.evaluate import evaluate, paired_tests, parse_metric

QRELS = {"q1": {"a": 2, "c": 1}, "q2": {"x": 1}, "q3": {"z": 1}}
RUN = {"q1": {"b": 0.9, "a": 0.8, "d": 0.7, "c": 0.6}, "q2": {"y": 0.5, "x": 0.4}}


def test_hand_computed_metrics():
    result = evaluate(QRELS, RUN, ["ndcg@3", "mrr@1", "mrr@10", "map", "recall@2",
                                   "precision@2", "hit@2"])
    per = result.per_query
    dcg = 2 / math.log2(3)  # graded gain of "a" at rank 2; "c" at rank 4 is past the cut
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert per["ndcg@3"]["q1"] == pytest.approx(dcg / idcg)
    assert per["mrr@1"] == {"q1": 0.0, "q2": 0.0, "q3": 0.0}
    assert per["mrr@10"] == pytest.approx({"q1": 0.5, "q2": 0.5, "q3": 0.0})
    assert per["map"]["q1"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert per["recall@2"] == pytest.approx({"q1": 0.5, "q2": 1.0, "q3": 0.0})
    assert per["precision@2"] == pytest.approx({"q1": 0.5, "q2": 0.5, "q3": 0.0})
    assert per["hit@2"] == {"q1": 1.0, "q2": 1.0, "q3": 0.0}
    # q3 is judged but absent from the run: it counts as 0 in every mean
    assert result.missing_queries == 1 and result.num_queries == 3
    assert result.mean["mrr@10"] == pytest.approx(1 / 3)


def test_identical_ids_are_dropped_like_beir():
    qrels = {"q1": {"d": 1}}
    run = {"q1": {"q1": 9.0, "d": 1.0}}
    assert evaluate(qrels, run, ["mrr@10"]).mean["mrr@10"] == 1.0
    assert evaluate(qrels, run, ["mrr@10"], ignore_identical_ids=False).mean["mrr@10"] == 0.5


@pytest.mark.parametrize("bad", ["ndcg@0", "recall", "bleu", "ndcg@x"])
def test_bad_metric_names(bad):
    with pytest.raises(ValueError):
        parse_metric(bad)


def test_paired_t_test_matches_scipy():
    rng = np.random.default_rng(1)
    a = {f"q{i}": float(v) for i, v in enumerate(rng.random(30))}
    b = {q: v + 0.05 + 0.1 * rng.standard_normal() for q, v in a.items()}
    result = paired_tests(a, b, "m")
    qids = sorted(a)
    expected = stats.ttest_rel([b[q] for q in qids], [a[q] for q in qids]).pvalue
    assert result.t_test_p == pytest.approx(expected)
    assert result.delta == pytest.approx(np.mean([b[q] - a[q] for q in qids]))


def test_randomization_test_matches_exact_enumeration():
    d = np.array([0.3, 0.1, -0.05, 0.2, 0.25, -0.1, 0.15, 0.05])
    a = {f"q{i}": 0.5 for i in range(8)}
    b = {f"q{i}": 0.5 + x for i, x in enumerate(d)}
    observed = abs(d.mean())
    signs = np.array(list(itertools.product([-1, 1], repeat=8)))
    exact = np.mean(np.abs((signs * d).mean(axis=1)) >= observed - 1e-12)
    result = paired_tests(a, b, permutations=20000, seed=3)
    assert result.randomization_p == pytest.approx(exact, abs=0.01)


def test_identical_runs_are_not_significant():
    a = {"q1": 0.5, "q2": 0.7, "q3": 0.1}
    result = paired_tests(a, dict(a))
    assert result.t_test_p == 1.0 and result.randomization_p == 1.0
    with pytest.raises(ValueError):
        paired_tests(a, {"q1": 0.5})


@pytest.mark.parametrize("score", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_run_scores_are_refused(score):
    # a NaN used to turn a perfect ranking's nDCG@10 of 1.0 into 0.8155
    with pytest.raises(ValueError, match="not a finite number"):
        evaluate({"q": {"a": 1}}, {"q": {"a": score, "b": 0.5}}, ["ndcg@10"])


@pytest.mark.parametrize("rel", [99999999999999999999, 2**31, 1.5, True, "1"])
def test_relevance_pytrec_eval_cannot_hold_is_refused(rel):
    # 99999999999999999999 used to crash pytrec_eval with a SystemError
    with pytest.raises(ValueError, match="relevance"):
        evaluate({"q": {"a": rel}}, {"q": {"a": 1.0}}, ["ndcg@10"])


def test_relevance_at_the_range_ends_evaluates():
    result = evaluate({"q": {"a": 2**31 - 1, "b": -(2**31)}}, {"q": {"a": 1.0, "b": 0.5}},
                      ["ndcg@10"])
    assert result.mean["ndcg@10"] == pytest.approx(1.0)
