"""Hard-negative mining with false-negative filtering.

For each query of the split: candidates are a retriever's ranks ``skip+1 .. skip+depth``
minus the documents judged relevant. With a teacher, every positive and candidate is scored
(:class:`ragsift.jobs.teacher.Teacher`, ``probability`` scale) and candidates that are probably
unlabelled positives are dropped. With ``s+`` the lowest teacher score among the query's
positives and ``s`` a candidate's score:

- ``margin`` (NV-Retriever's TopK-MarginPos): drop when ``s > s+ - margin``;
- ``percpos`` (TopK-PercPos): drop when ``s > percent * s+`` (``percent`` = 0.95);
- ``threshold`` (any filter, or alone): drop when ``s > threshold``;
- ``none``: keep all.

Then ``negatives`` candidates are kept: the best-ranked (``sampling="top"``) or a seeded sample
(``random``), in rank order. Rows are ``{"query", "pos", "neg", "query_id", "pos_ids",
"neg_ids"}`` (+ ``pos_scores``/``neg_scores`` with a teacher, raw scale, and ``filtered``:
how many candidates each filter dropped), which ``ragsift train`` reads directly.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ragsift.data.beir import BeirDataset
from ragsift.errors import UsageError
from ragsift.jobs.backends import Lazy, ShardBackend, resolve
from ragsift.jobs.sharded import JobResult, run_sharded
from ragsift.jobs.teacher import Teacher
from ragsift.types import Run, ranked

FilterName = Literal["margin", "percpos", "none"]


@dataclass
class FilterSettings:
    """Which false-negative filter to apply, and its parameters."""

    method: FilterName = "percpos"
    margin: float = 0.05
    percent: float = 0.95
    threshold: float | None = None


def false_negative_reasons(positive: float, scores: np.ndarray,
                           settings: FilterSettings) -> list[str | None]:
    """For each candidate score, the filter that drops it (``None``: kept).

    Example:
        >>> false_negative_reasons(0.9, np.array([0.95, 0.5, 0.86]), FilterSettings("percpos"))
        ['percpos', None, 'percpos']
    """
    reasons: list[str | None] = []
    for score in scores.tolist():
        if settings.method == "margin" and score > positive - settings.margin:
            reasons.append("margin")
        elif settings.method == "percpos" and score > settings.percent * positive:
            reasons.append("percpos")
        elif settings.threshold is not None and score > settings.threshold:
            reasons.append("threshold")
        else:
            reasons.append(None)
    return reasons


def mine_negatives(data: BeirDataset, run: Run, out: str | Path,
                   teacher: Teacher | Lazy[Teacher] | None = None,
                   settings: FilterSettings | None = None, negatives: int = 8, depth: int = 50,
                   skip: int = 0, sampling: Literal["top", "random"] = "random",
                   seed: int = 0, shard_size: int = 64, show_progress: bool = True,
                   backend: ShardBackend | None = None) -> tuple[JobResult, Counter]:
    """Mine ``negatives`` per query of ``data`` from ``run``; returns the job result and the
    count of candidates dropped by each filter (and of queries left without a negative).
    Shards run on ``backend``; a :class:`Lazy` teacher loads once per worker."""
    settings = settings or FilterSettings()
    if teacher is None and (settings.method != "none" or settings.threshold is not None):
        needs = (f"the {settings.method} filter" if settings.method != "none"
                 else "a teacher-score threshold")
        raise UsageError(f"{needs} needs a teacher: pass --teacher, or use --filter none "
                         "without --threshold")
    qids = sorted(q for q in data.queries
                  if any(rel > 0 for rel in data.qrels.get(q, {}).values()))

    def text(doc_id: str) -> str:
        return data.corpus[doc_id].full_text()

    def work(shard: list[str]) -> list[str]:
        found = []  # (qid, positives, candidates) of each query
        for qid in shard:
            positives = [d for d, rel in data.qrels[qid].items() if rel > 0 and d in data.corpus]
            candidates = [d for d, _ in ranked(run.get(qid, {}))[skip:]
                          if d not in positives and d in data.corpus][:depth]
            found.append((qid, positives, candidates))
        # the teacher scores the whole shard in one call: batches across queries, and a
        # bi-encoder encodes each passage the shard's queries share once
        pairs = [(data.queries[qid], text(d)) for qid, positives, candidates in found
                 if positives for d in positives + candidates] if teacher is not None else []
        scorer = resolve(teacher) if pairs else None
        raw_scores = scorer.score(pairs) if scorer else np.zeros(0, dtype=np.float32)
        scaled_scores = scorer.probability(raw_scores) if scorer else raw_scores
        lines, start = [], 0
        for qid, positives, candidates in found:
            row: dict = {"query": data.queries[qid], "pos": [text(d) for d in positives],
                         "query_id": qid, "pos_ids": positives}
            raw: dict[str, float] = {}
            dropped: Counter = Counter()
            if scorer is not None and positives:
                end = start + len(positives) + len(candidates)
                scaled = scaled_scores[start:end]
                raw = dict(zip(positives + candidates, raw_scores[start:end].tolist()))
                start = end
                reasons = false_negative_reasons(float(scaled[:len(positives)].min()),
                                                 scaled[len(positives):], settings)
                dropped.update(r for r in reasons if r)
                candidates = [d for d, r in zip(candidates, reasons) if r is None]
            if sampling == "random" and len(candidates) > negatives:
                rng = random.Random(f"{seed}:{qid}")
                chosen = set(rng.sample(candidates, negatives))
                candidates = [d for d in candidates if d in chosen]
            else:
                candidates = candidates[:negatives]
            row.update({"neg": [text(d) for d in candidates], "neg_ids": candidates})
            if raw:
                row["pos_scores"] = [raw[d] for d in positives]
                row["neg_scores"] = [raw[d] for d in candidates]
                row["filtered"] = dict(sorted(dropped.items()))
            lines.append(json.dumps(row, ensure_ascii=False))
        return lines

    result = run_sharded(qids, work, out, shard_size, desc="mine", show_progress=show_progress,
                         backend=backend)
    totals: Counter = Counter()
    with open(out, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            totals.update(row.get("filtered", {}))
            totals["queries"] += 1
            totals["negatives"] += len(row["neg"])
            totals["queries_without_negatives"] += not row["neg"]
    return result, totals
