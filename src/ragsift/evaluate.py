"""Retrieval metrics through pytrec_eval, per query and averaged, and paired significance tests.

Metric names (case-insensitive) and their definitions, for a query with ranking ``d_1, d_2, ...``
and graded relevance ``rel(d)`` (binary metrics count ``rel >= 1`` as relevant, ``R`` = number of
relevant documents):

- ``ndcg@k``: ``DCG@k / IDCG@k`` with ``DCG@k = sum_{i<=k} rel(d_i) / log2(i + 1)`` (trec_eval's
  linear gain, as BEIR reports it); IDCG is the DCG of the ideal ordering.
- ``mrr@k``: ``1 / rank`` of the first relevant document within the top ``k`` (0 if none);
  ``mrr``: the same over the whole ranking.
- ``map`` / ``map@k``: mean over relevant documents of precision at their rank, divided by ``R``.
- ``recall@k``: ``|relevant in top k| / R``.
- ``precision@k`` (``p@k``): ``|relevant in top k| / k``.
- ``hit@k``: 1 if any relevant document is in the top ``k``, else 0.

Averages are over every query in the qrels: a judged query missing from the run scores 0 on every
metric (trec_eval's ``-c``), so a retriever cannot gain by skipping hard queries. Like BEIR,
documents whose id equals the query id are dropped from the run by default.

Reranking evaluation as MTEB's reranking tasks define it (:func:`evaluate_reranking`): each
query comes with its own candidate list of positives and negatives (:class:`RerankingSample`);
the model scores every candidate and the list is judged alone (no qrels, no corpus):

- ``map``: mean over queries of the average precision of the list,
  ``AP = sum_n (R_n - R_{n-1}) P_n`` over the distinct scores in decreasing order, with ``R_n``
  and ``P_n`` the recall and precision of the candidates scoring at least the n-th distinct
  score (scikit-learn's ``average_precision_score``, which MTEB's ``RerankingEvaluator`` calls;
  without ties it is trec_eval's AP with ``R`` = the number of positives);
- ``mrr@10``: mean of ``1 / rank`` of the first positive within the top 10 (0 if none); tied
  scores rank negatives first (MTEB leaves ties to ``torch.argsort``: a model that scores
  everything alike must not look perfect).

As in MTEB, a query without a positive or without a negative is skipped (and counted).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytrec_eval

from ragsift.data.checks import RELEVANCE_MAX, RELEVANCE_MIN
from ragsift.errors import UsageError
from ragsift.report import markdown_table
from ragsift.types import Qrels, Run

DEFAULT_METRICS = ("ndcg@10", "mrr@10", "map", "recall@100", "precision@10")
_PATTERN = re.compile(r"^(ndcg|mrr|map|recall|precision|p|hit)(?:@(\d+))?$")


@dataclass(frozen=True)
class Metric:
    """A parsed metric name: ``name`` and optional cutoff ``k``."""

    name: str
    k: int | None

    def __str__(self) -> str:
        return f"{self.name}@{self.k}" if self.k is not None else self.name

    @property
    def trec_measure(self) -> tuple[str, str]:
        """The pytrec_eval measure to request and the key it reports the value under."""
        if self.name == "ndcg":
            return (f"ndcg_cut.{self.k}", f"ndcg_cut_{self.k}") if self.k else ("ndcg", "ndcg")
        if self.name == "map":
            return (f"map_cut.{self.k}", f"map_cut_{self.k}") if self.k else ("map", "map")
        if self.name == "recall":
            return f"recall.{self.k}", f"recall_{self.k}"
        if self.name == "precision":
            return f"P.{self.k}", f"P_{self.k}"
        if self.name == "hit":
            return f"success.{self.k}", f"success_{self.k}"
        return "recip_rank", "recip_rank"  # mrr: the run is cut at k first


def parse_metric(text: str) -> Metric:
    """Parse ``ndcg@10``, ``map``, ``mrr@10``, ``recall@100``, ``p@5``, ``hit@1`` ...

    Example:
        >>> parse_metric("NDCG@10")
        Metric(name='ndcg', k=10)
    """
    match = _PATTERN.match(text.strip().lower())
    if not match:
        raise UsageError(
            f"unknown metric {text!r}; use ndcg@k, mrr@k, map, map@k, recall@k, precision@k, hit@k"
        )
    name, k = match.group(1), match.group(2)
    name = "precision" if name == "p" else name
    if name in ("recall", "precision", "hit") and k is None:
        raise UsageError(f"metric {text!r} needs a cutoff, as {name}@k")
    if k is not None and int(k) < 1:
        raise UsageError(f"metric {text!r}: cutoff must be >= 1")
    return Metric(name, int(k) if k else None)


def _trec_order_top(scores: dict[str, float], k: int) -> dict[str, float]:
    # trec_eval orders by score, then by doc id, both descending; cut the same way it ranks.
    items = sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)
    return dict(items[:k])


@dataclass
class Evaluation:
    """Per-query metric values and their means over all judged queries.

    ``per_query[metric][qid]`` is a value for every qrels query; ``mean[metric]`` its average.
    """

    per_query: dict[str, dict[str, float]]
    mean: dict[str, float]
    num_queries: int
    missing_queries: int

    def to_json(self) -> dict:
        return {"mean": self.mean, "num_queries": self.num_queries,
                "missing_queries": self.missing_queries, "per_query": self.per_query}


def evaluate(
    qrels: Qrels,
    run: Run,
    metrics: Sequence[str] = DEFAULT_METRICS,
    ignore_identical_ids: bool = True,
) -> Evaluation:
    """Score ``run`` against ``qrels`` with pytrec_eval.

    Example:
        >>> result = evaluate({"q": {"a": 1}}, {"q": {"b": 2.0, "a": 1.0}}, ["mrr@10", "hit@1"])
        >>> result.mean
        {'mrr@10': 0.5, 'hit@1': 0.0}
    """
    parsed = [parse_metric(m) for m in metrics]
    check_inputs(qrels, run)
    judged = {qid: docs for qid, docs in qrels.items() if docs}
    if ignore_identical_ids:
        run = {qid: {d: s for d, s in docs.items() if d != qid} for qid, docs in run.items()}
    run = {qid: run[qid] for qid in judged if run.get(qid)}
    per_query: dict[str, dict[str, float]] = {}
    plain = [m for m in parsed if m.name != "mrr" or m.k is None]
    if plain:
        evaluator = pytrec_eval.RelevanceEvaluator(judged, {m.trec_measure[0] for m in plain})
        results = evaluator.evaluate(run)
        for m in plain:
            key = m.trec_measure[1]
            per_query[str(m)] = {q: results[q][key] if q in results else 0.0 for q in judged}
    for m in parsed:
        if m.name == "mrr" and m.k is not None:
            cut = {qid: _trec_order_top(docs, m.k) for qid, docs in run.items()}
            results = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"}).evaluate(cut)
            per_query[str(m)] = {q: results[q]["recip_rank"] if q in results else 0.0
                                 for q in judged}
    ordered = {str(m): per_query[str(m)] for m in parsed}
    mean = {name: float(np.mean(list(v.values()))) if v else 0.0 for name, v in ordered.items()}
    return Evaluation(ordered, mean, len(judged), sum(q not in run for q in judged))


def check_inputs(qrels: Qrels, run: Run) -> None:
    """Refuse what pytrec_eval would crash on or silently mis-rank.

    Raises:
        ValueError: a relevance that is not an integer in ``[-2**31, 2**31 - 1]``, or a run
            score that is not a finite number (NaN sorts arbitrarily and skews every metric).
    """
    for qid, docs in qrels.items():
        for doc_id, rel in docs.items():
            if (isinstance(rel, bool) or not isinstance(rel, numbers.Integral)
                    or not RELEVANCE_MIN <= rel <= RELEVANCE_MAX):
                raise ValueError(f"qrels ({qid!r}, {doc_id!r}): relevance {rel!r} is not an "
                                 f"integer in [{RELEVANCE_MIN}, {RELEVANCE_MAX}]")
    for qid, docs in run.items():
        for doc_id, score in docs.items():
            if not math.isfinite(score):
                raise ValueError(f"run ({qid!r}, {doc_id!r}): score {score} is not a finite "
                                 f"number")


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of two runs on one metric (``delta = mean(b) - mean(a)``)."""

    metric: str
    mean_a: float
    mean_b: float
    delta: float
    t_test_p: float
    randomization_p: float
    num_queries: int


def paired_tests(
    a: dict[str, float], b: dict[str, float], metric: str = "",
    permutations: int = 10000, seed: int = 0,
) -> Comparison:
    """Two-sided paired significance of the per-query differences ``d_i = b_i - a_i``.

    - paired t-test: ``t = mean(d) / (std(d, ddof=1) / sqrt(n))`` with ``n - 1`` degrees of freedom
      (``scipy.stats.ttest_rel``); p = 1 when every difference is 0.
    - randomization (sign-flip permutation) test: under the null each ``d_i`` is as likely to
      have either sign; ``p = (1 + #{s : |mean(s * d)| >= |mean(d)|}) / (1 + permutations)`` over
      random sign vectors ``s`` (Smucker et al., 2007).

    Both dicts must hold the same query ids.
    """
    from scipy import stats

    if set(a) != set(b):
        raise ValueError("paired tests need per-query values for the same queries in both runs")
    qids = sorted(a)
    x = np.array([a[q] for q in qids])
    y = np.array([b[q] for q in qids])
    d = y - x
    if len(d) < 2 or np.allclose(d, d[0]):
        t_p = 1.0 if np.allclose(d, 0) else 0.0
    else:
        t_p = float(stats.ttest_rel(y, x).pvalue)
    rng = np.random.default_rng(seed)
    observed = abs(d.mean()) if len(d) else 0.0
    extreme = 0
    for start in range(0, permutations, 1000):
        n = min(1000, permutations - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(n, len(d)))
        extreme += int((np.abs((signs * d).mean(axis=1)) >= observed - 1e-12).sum())
    r_p = (extreme + 1) / (permutations + 1)
    return Comparison(metric, float(x.mean()), float(y.mean()), float(d.mean()), t_p, r_p, len(d))


def results_table(names: Sequence[str], evaluations: Sequence[Evaluation]) -> str:
    """A markdown table: one row per run, one column per metric mean."""
    metrics = list(evaluations[0].mean) if evaluations else []
    rows = [[name, *[e.mean[m] for m in metrics]] for name, e in zip(names, evaluations)]
    return markdown_table(["run", *metrics], rows)


@dataclass(frozen=True)
class RerankingSample:
    """One query of a reranking task and its candidate list (MTEB's ``query``, ``positive``,
    ``negative`` fields)."""

    query: str
    positive: list[str]
    negative: list[str]


def read_reranking_samples(path: str | Path) -> Iterator[RerankingSample]:
    """Samples from a jsonl file of ``{"query": str, "positive": [str], "negative": [str]}``
    rows; :class:`DataFormatError` names the file, line and field of a bad row."""
    from ragsift.data.jsonl import field_list, field_str, read_jsonl
    from ragsift.errors import DataFormatError

    for line, row in read_jsonl(path):
        lists = []
        for name in ("positive", "negative"):
            texts = field_list(row, name, path, line, str)
            if texts is None:
                raise DataFormatError(path, line, name, "missing field (a list of texts)")
            lists.append(texts)
        yield RerankingSample(field_str(row, "query", path, line), *lists)


def average_precision(relevant: Sequence[bool], scores: Sequence[float]) -> float:
    """AP of one candidate list with tied scores grouped: ``sum_n (R_n - R_{n-1}) P_n`` over
    the distinct scores ``t_1 > t_2 > ...``, where ``R_n`` and ``P_n`` are the recall and
    precision of the set ``{i : score_i >= t_n}`` (0 when nothing is relevant).

    Example:
        >>> average_precision([False, True, True], [0.9, 0.8, 0.1])  # (1/2 + 2/3) / 2
        0.5833333333333333
    """
    labels = np.asarray(relevant, dtype=bool)
    values = np.asarray(scores, dtype=float)
    total = int(labels.sum())
    if not total:
        return 0.0
    ap = 0.0
    hits = kept = 0
    for threshold in np.unique(values)[::-1]:
        tied = values == threshold
        kept += int(tied.sum())
        new_hits = int(labels[tied].sum())
        hits += new_hits
        ap += new_hits / total * (hits / kept)
    return ap


def reciprocal_rank(relevant: Sequence[bool], scores: Sequence[float], k: int = 10) -> float:
    """``1 / rank`` of the first relevant candidate within the top ``k`` when sorted by score
    (ties: irrelevant candidates first), 0 when none is there.

    Example:
        >>> reciprocal_rank([False, True, False], [0.9, 0.5, 0.5])  # the tie ranks it third
        0.3333333333333333
    """
    labels = np.asarray(relevant, dtype=bool)
    order = np.lexsort((labels, -np.asarray(scores, dtype=float)))  # score desc, then False
    hits = np.flatnonzero(labels[order][:k])
    return 1.0 / (int(hits[0]) + 1) if len(hits) else 0.0


def evaluate_reranking(samples: Sequence[RerankingSample],
                       score: Callable[[list[tuple[str, str]]], Sequence[float]],
                       mrr_k: int = 10) -> Evaluation:
    """MTEB-style reranking evaluation (see the module docstring): ``score`` gets each query's
    ``(query, candidate)`` pairs (positives, then negatives) and returns their scores.

    Per-query values are keyed by the sample's position (``"0"``, ``"1"``, ...);
    ``missing_queries`` counts the samples skipped for lacking positives or negatives.

    Example:
        >>> sample = RerankingSample("q", ["good"], ["bad", "worse"])
        >>> scores = {"good": 0.5, "bad": 0.9, "worse": 0.1}
        >>> evaluate_reranking([sample], lambda pairs: [scores[d] for _, d in pairs]).mean
        {'map': 0.5, 'mrr@10': 0.5}
    """
    per_query: dict[str, dict[str, float]] = {"map": {}, f"mrr@{mrr_k}": {}}
    skipped = 0
    for index, sample in enumerate(samples):
        if not sample.positive or not sample.negative:
            skipped += 1
            continue
        candidates = sample.positive + sample.negative
        values = np.asarray(score([(sample.query, c) for c in candidates]), dtype=float)
        if values.shape != (len(candidates),) or not np.isfinite(values).all():
            raise ValueError(f"sample {index}: expected {len(candidates)} finite scores")
        relevant = [True] * len(sample.positive) + [False] * len(sample.negative)
        per_query["map"][str(index)] = average_precision(relevant, values)
        per_query[f"mrr@{mrr_k}"][str(index)] = reciprocal_rank(relevant, values, mrr_k)
    mean = {name: float(np.mean(list(v.values()))) if v else 0.0
            for name, v in per_query.items()}
    return Evaluation(per_query, mean, len(per_query["map"]), skipped)


def samples_from_run(queries: dict[str, str], texts: dict[str, str], qrels: Qrels, run: Run,
                     k: int) -> list[RerankingSample]:
    """Reranking samples from a first-stage run: for each judged query of ``run``, its top
    ``k`` candidates, the ones judged relevant (``qrels`` > 0) as positives and the rest as
    negatives; ``texts`` maps document ids to their text (sorted query ids, so the samples'
    positions are stable)."""
    samples = []
    for qid in sorted(set(run) & set(qrels) & set(queries)):
        top = sorted(run[qid].items(), key=lambda item: (-item[1], item[0]))[:k]
        relevant = [doc for doc, _ in top if qrels[qid].get(doc, 0) > 0]
        others = [doc for doc, _ in top if qrels[qid].get(doc, 0) <= 0]
        samples.append(RerankingSample(queries[qid], [texts[d] for d in relevant],
                                       [texts[d] for d in others]))
    return samples
