"""Reranker distillation report: a teacher and its students on the same candidates.

For each dataset, BM25 (bm25s) retrieves the top ``--depth`` documents of each test query; the
teacher and every student (any ragsift reranker, or a bi-encoder, loaded like ``ragsift label
--teacher``) score the same (query, document) pairs, at most ``--max-length`` tokens per pair
(rerankers score longer documents as windows, max over windows). Reported per dataset and
model: nDCG@10 of the reranked run, the paired randomization p-value of its per-query nDCG@10
against the teacher's, pairs/s (wall time of loading nothing but scoring every pair, one
pass, same torch threads) and its speed relative to the teacher. BM25 alone is the first row.
A student given as ``NAME=MODEL@LENGTH`` scores at ``LENGTH`` tokens per window instead of
``--max-length`` (a student trained on short inputs is also meant to be run on them).
``--baseline NAME=OTHER`` also reports NAME's gain over OTHER (another row's name: typically
the same student trained without the teacher): the nDCG@10 difference, relative to OTHER's,
and the paired randomization p-value between their per-query nDCG@10.

Typical use (issue 6, recipe 1): the teacher, a student distilled from it and the same student
trained on labels alone, in domain (the training collection's test split) and out of domain
(other BEIR folders, e.g. the docstring task of ``ragsift datasets docstrings``).

Usage:
    python -m benchmarks.distill_reranker --teacher MODEL --student NAME=MODEL[@LENGTH] [...] \
        --data DIR [--data DIR ...] [--depth 30] [--max-length 256] [--limit-queries N] \
        [--backend torch|onnx] [--baseline NAME=OTHER ...]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from benchmarks.common import add_dataset_arguments, datasets, report
from ragsift.evaluate import evaluate, paired_tests
from ragsift.jobs.teacher import Teacher
from ragsift.models.onnx import BACKENDS
from ragsift.retrieve import BM25Retriever
from ragsift.types import Run


def scored_run(model: str, pairs: list[tuple[str, str, str, str]], max_length: int,
               backend: str = "torch") -> tuple[Run, float]:
    """The run of ``model``'s scores over ``pairs`` (query id, doc id, query, text) and its
    pairs/s (scoring only: the model is loaded and warmed on another pair first, so a
    bi-encoder's passage cache starts empty), on ``backend`` (torch, onnx, onnx-int8)."""
    teacher = Teacher.load(model, max_length=max_length, backend=backend)
    teacher.score([("warm-up", "warm-up")])  # first-call costs outside the timing
    start = time.perf_counter()
    scores = teacher.score([(query, text) for _, _, query, text in pairs])
    seconds = time.perf_counter() - start
    run: Run = {}
    for (qid, doc_id, _, _), score in zip(pairs, scores):
        run.setdefault(qid, {})[doc_id] = float(score)
    return run, len(pairs) / seconds


def gain_over(per_query: dict[str, dict[str, float]], name: str,
              baseline: str | None) -> dict[str, Any]:
    """Row ``name``'s gain over row ``baseline`` from their per-query nDCG@10: ``{"baseline",
    "gain_vs_baseline": mean(name) - mean(baseline), "relative_gain": that / mean(baseline),
    "p_vs_baseline"}`` (paired randomization test); ``{}`` without a baseline."""
    if baseline is None:
        return {}
    test = paired_tests(per_query[baseline], per_query[name], "ndcg@10")
    return {"baseline": baseline, "gain_vs_baseline": test.delta,
            "relative_gain": test.delta / test.mean_a if test.mean_a else float("nan"),
            "p_vs_baseline": test.randomization_p}


def student_spec(spec: str, max_length: int) -> tuple[str, str, int]:
    """``NAME=MODEL[@LENGTH]`` -> (name, model, tokens per window; ``max_length`` without
    ``@LENGTH``).

    Raises:
        ValueError: no ``=``, or something other than a positive number after ``@``.
    """
    name, sep, model = spec.partition("=")
    if not sep or not name or not model:
        raise ValueError(f"--student {spec!r}: expected NAME=MODEL[@LENGTH]")
    if "@" not in model:
        return name, model, max_length
    model, _, length = model.rpartition("@")
    if not length.isdigit() or int(length) == 0:
        raise ValueError(f"--student {spec!r}: LENGTH after @ must be a number of tokens")
    return name, model, int(length)


def baseline_spec(spec: str, names: Sequence[str]) -> tuple[str, str]:
    """``NAME=OTHER`` -> (NAME, OTHER), both rows of the table (``names``).

    Raises:
        ValueError: no ``=``, or a name that is not a row.
    """
    name, sep, other = spec.partition("=")
    if not sep:
        raise ValueError(f"--baseline {spec!r}: expected NAME=OTHER")
    for part in (name, other):
        if part not in names:
            raise ValueError(f"--baseline {spec!r}: {part!r} is not one of the rows {list(names)}")
    return name, other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_arguments(parser)
    parser.add_argument("--teacher", required=True, help="the teacher model")
    parser.add_argument("--student", action="append", default=[], metavar="NAME=MODEL[@LENGTH]",
                        help="a student and its label in the table, optionally its own tokens "
                             "per window (repeatable)")
    parser.add_argument("--depth", type=int, default=30, help="BM25 candidates per query")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per pair")
    parser.add_argument("--backend", choices=BACKENDS, default="torch",
                        help="every model's backend (default torch; onnx: the fused graph)")
    parser.add_argument("--baseline", action="append", default=[], metavar="NAME=OTHER",
                        help="also report row NAME's gain over row OTHER with its p-value "
                             "(repeatable)")
    args = parser.parse_args()
    models = {"teacher": (args.teacher, args.max_length)}  # name -> (model, tokens per window)
    for spec in args.student:
        try:
            name, model, max_length = student_spec(spec, args.max_length)
        except ValueError as error:
            parser.error(str(error))
        models[name] = (model, max_length)
    baselines = {}
    for spec in args.baseline:
        try:
            name, other = baseline_spec(spec, ["bm25", *models])
        except ValueError as error:
            parser.error(str(error))
        baselines[name] = other

    results, rows = [], []
    for dataset, data in datasets(args):
        bm25 = BM25Retriever()
        bm25.index(data.corpus)
        candidates = bm25.search(data.queries, k=args.depth)
        pairs = [(qid, doc_id, data.queries[qid], data.corpus[doc_id].full_text())
                 for qid, hits in candidates.items() for doc_id in hits]
        runs = {"bm25": (candidates, None)}
        for name, (model, max_length) in models.items():
            runs[name] = scored_run(model, pairs, max_length, args.backend)
        per_query = {name: evaluate(data.qrels, run, ["ndcg@10"]).per_query["ndcg@10"]
                     for name, (run, _) in runs.items()}
        teacher_rate = runs["teacher"][1]
        for name, (_, rate) in runs.items():
            scores = per_query[name]
            ndcg = sum(scores.values()) / len(scores)
            p = None if name == "teacher" else \
                paired_tests(per_query["teacher"], scores, "ndcg@10").randomization_p
            model, max_length = models.get(name, ("bm25", None))
            gain = gain_over(per_query, name, baselines.get(name))
            results.append({"dataset": dataset, "name": name, "model": model,
                            "max_length": max_length, "ndcg@10": ndcg,
                            "p_vs_teacher": p, "pairs_per_s": rate,
                            "speed_vs_teacher": rate / teacher_rate if rate else None,
                            "queries": len(scores), "pairs": len(pairs), **gain})
            rows.append([dataset, name, f"{ndcg:.4f}", "-" if p is None else f"{p:.3f}",
                         "-" if rate is None else f"{rate:.1f}",
                         "-" if rate is None else f"{rate / teacher_rate:.2f}x",
                         "-" if not gain else f"{gain['gain_vs_baseline']:+.4f} "
                         f"({gain['relative_gain']:+.1%}, p {gain['p_vs_baseline']:.3f}) "
                         f"over {gain['baseline']}"])
    report(results, ["dataset", "model", "nDCG@10", "p vs teacher", "pairs/s",
                     "speed vs teacher", "gain"], rows, args.out, depth=args.depth,
           max_length=args.max_length, backend=args.backend,
           models={name: model for name, (model, _) in models.items()})


if __name__ == "__main__":
    main()
