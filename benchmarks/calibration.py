"""Calibration of a reranker's scores: expected calibration error before and after fitting.

For a BEIR folder with ``train`` and ``test`` qrels: the candidates are BM25's top ``--depth``
documents of each query, labelled 1 when the qrels judge them relevant and 0 otherwise. The
reranker scores the pairs of both splits; calibration (Platt and temperature scaling,
:class:`ragsift.rerank.Calibration`) is fitted on the ``train`` pairs and evaluated on the held-out
``test`` pairs. Reported per method: ECE (``--bins`` equal-width bins), the mean predicted
probability against the positive rate, and the log-loss; "uncalibrated" is the model's own
sigmoid of its raw score.

Usage:
    python -m benchmarks.calibration --model DIR [--data DIR ...] [--depth 20]
        [--limit-queries N] [--bins 15] [--out FILE.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.common import SHARED, environment, report, slice_dataset
from ragsift.data.beir import load_beir
from ragsift.rerank import Calibration, Reranker, expected_calibration_error
from ragsift.retrieve import BM25Retriever
from ragsift.types import ranked


def labelled_pairs(folder: Path, split: str, depth: int, limit: int | None
                   ) -> tuple[list[tuple[str, str]], np.ndarray]:
    """BM25's top ``depth`` (query, passage) pairs of ``split`` and their 0/1 labels."""
    data = slice_dataset(load_beir(folder, split), limit, None)
    bm25 = BM25Retriever()
    bm25.index(data.corpus)
    run = bm25.search(data.queries, k=depth)
    pairs, labels = [], []
    for qid, docs in run.items():
        for doc_id, _ in ranked(docs):
            pairs.append((data.queries[qid], data.corpus[doc_id].full_text()))
            labels.append(int(data.qrels[qid].get(doc_id, 0) > 0))
    return pairs, np.asarray(labels)


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="reranker folder")
    parser.add_argument("--data", action="append", type=Path, metavar="DIR")
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--limit-queries", type=int, default=None)
    parser.add_argument("--bins", type=int, default=15)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    reranker = Reranker.load(args.model)
    results, rows = [], []
    for folder in args.data or [SHARED / "scifact"]:
        fit_pairs, fit_labels = labelled_pairs(folder, "train", args.depth, args.limit_queries)
        test_pairs, test_labels = labelled_pairs(folder, "test", args.depth, args.limit_queries)
        fit_raw, test_raw = reranker.score(fit_pairs), reranker.score(test_pairs)
        methods = {"uncalibrated": reranker.uncalibrated_probability(test_raw)}
        for method in ("platt", "temperature"):
            methods[method] = Calibration.fit(fit_raw, fit_labels, method).apply(test_raw)
        for name, probability in methods.items():
            ece = expected_calibration_error(probability, test_labels, args.bins)
            result = {"dataset": folder.name, "method": name, "ece": ece,
                      "mean_probability": float(probability.mean()),
                      "positive_rate": float(test_labels.mean()),
                      "log_loss": log_loss(probability, test_labels),
                      "fit_pairs": len(fit_pairs), "test_pairs": len(test_pairs)}
            results.append(result)
            rows.append([folder.name, name, f"{ece:.4f}", f"{result['mean_probability']:.4f}",
                         f"{result['positive_rate']:.4f}", f"{result['log_loss']:.4f}"])
    report(results, ["dataset", "method", "ECE", "mean p", "positive rate", "log-loss"], rows,
           args.out, benchmark="calibration", model=str(args.model), depth=args.depth,
           environment=environment(["torch", "transformers"]))


if __name__ == "__main__":
    main()
