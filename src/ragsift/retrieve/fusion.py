"""Fusing several runs into one: reciprocal rank fusion and convex combination of scores.

- RRF (Cormack et al., 2009): ``s(d) = sum_i w_i / (k + rank_i(d))`` over the runs that retrieved
  ``d`` (rank 1 = best); ``k = 60`` by default. Scores' scales do not matter, only ranks.
- Convex: ``s(d) = sum_i w_i * norm_i(score_i(d))`` with per-query normalisation of each run:
  ``minmax``: ``(x - min) / (max - min)`` (1 when all scores are equal);
  ``zscore``: ``(x - mean) / std`` (0 when std is 0).
  A document missing from run ``i`` gets that run's lowest normalised score for the query
  (0 for minmax), i.e. it is treated as ranked just below the run's last document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from ragsift.errors import UsageError
from ragsift.types import Run

Normalization = Literal["minmax", "zscore"]


def _weights(runs: Sequence[Run], weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0] * len(runs)
    if len(weights) != len(runs):
        raise UsageError(f"{len(weights)} weights for {len(runs)} runs")
    return [float(w) for w in weights]


def _query_ids(runs: Sequence[Run]) -> list[str]:
    seen: dict[str, None] = {}
    for run in runs:
        seen.update(dict.fromkeys(run))
    return list(seen)


def rrf(runs: Sequence[Run], k: float = 60.0, weights: Sequence[float] | None = None) -> Run:
    """Reciprocal rank fusion of ``runs``.

    Example:
        >>> fused = rrf([{"q": {"a": 9.0, "b": 1.0}}, {"q": {"b": 0.9, "c": 0.1}}], k=1)
        >>> {d: round(s, 3) for d, s in fused["q"].items()}
        {'a': 0.5, 'b': 0.833, 'c': 0.333}
    """
    from ragsift.types import ranked

    w = _weights(runs, weights)
    fused: Run = {}
    for qid in _query_ids(runs):
        scores: dict[str, float] = {}
        for run, weight in zip(runs, w):
            for rank, (doc_id, _) in enumerate(ranked(run.get(qid, {})), start=1):
                scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
        fused[qid] = scores
    return fused


def normalize_scores(scores: dict[str, float], method: Normalization) -> dict[str, float]:
    """One query's scores normalised by ``minmax`` or ``zscore`` (see the module docstring)."""
    if not scores:
        return {}
    values = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
    if method == "minmax":
        low, span = values.min(), values.max() - values.min()
        normed = (values - low) / span if span > 0 else np.ones_like(values)
    elif method == "zscore":
        std = values.std()
        normed = (values - values.mean()) / std if std > 0 else np.zeros_like(values)
    else:
        raise UsageError(f"unknown normalization {method!r}; choose 'minmax' or 'zscore'")
    return dict(zip(scores, normed.tolist()))


def convex(
    runs: Sequence[Run],
    weights: Sequence[float] | None = None,
    normalization: Normalization = "minmax",
) -> Run:
    """Weighted sum of per-query normalised scores.

    Example:
        >>> fused = convex([{"q": {"a": 10.0, "b": 0.0}}, {"q": {"b": 1.0, "c": 0.5}}])
        >>> fused["q"]
        {'a': 1.0, 'b': 1.0, 'c': 0.0}
    """
    w = _weights(runs, weights)
    fused: Run = {}
    for qid in _query_ids(runs):
        normed = [normalize_scores(run.get(qid, {}), normalization) for run in runs]
        floors = [min(n.values()) if n else 0.0 for n in normed]
        docs = dict.fromkeys(d for n in normed for d in n)
        fused[qid] = {
            d: sum(weight * n.get(d, floor) for n, weight, floor in zip(normed, w, floors))
            for d in docs
        }
    return fused
