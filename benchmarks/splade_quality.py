"""SPLADE retrieval quality and indexing speed per encoder backend, side by side in one run.

For each dataset (optionally sliced: ``--limit-queries`` queries, all their judged documents and
``--limit-docs`` others), :class:`ragsift.retrieve.splade.SparseRetriever` indexes the corpus
with each backend's encoder (queries and documents encoded by the same backend) and searches
the queries; reported per backend: nDCG@10 and Recall@100 (pytrec_eval), the nDCG@10
difference from ``torch``, indexing documents per second and its speed-up over ``torch``.

Usage:
    python -m benchmarks.splade_quality [--data DIR] [--limit-queries N] [--limit-docs N] \
        [--model splade-tiny] [--backends torch,onnx-int8] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import add_dataset_arguments, datasets, environment, report
from ragsift.evaluate import evaluate
from ragsift.models.splade import SpladeEncoder
from ragsift.retrieve.splade import SparseRetriever

METRICS = ("ndcg@10", "recall@100")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_arguments(parser)
    parser.add_argument("--model", default="splade-tiny")
    parser.add_argument("--backends", default="torch,onnx-int8")
    args = parser.parse_args()

    results = []
    for name, data in datasets(args):
        baseline: dict | None = None
        for backend in args.backends.split(","):
            encoder = SpladeEncoder.from_pretrained(args.model, backend=backend)
            retriever = SparseRetriever(encoder)
            start = time.perf_counter()
            retriever.index(data.corpus)
            seconds = time.perf_counter() - start
            run = retriever.search(data.queries, k=100)
            scores = evaluate(data.qrels, run, METRICS).mean
            row = {"dataset": name, "backend": backend, "queries": len(data.queries),
                   "documents": len(data.corpus), "index_seconds": seconds,
                   "documents_per_second": len(data.corpus) / seconds, **scores}
            baseline = baseline or row
            row["ndcg@10_minus_first"] = row["ndcg@10"] - baseline["ndcg@10"]
            row["speedup"] = row["documents_per_second"] / baseline["documents_per_second"]
            results.append(row)
    rows = [[r["dataset"], r["backend"], r["documents"], f"{r['ndcg@10']:.4f}",
             f"{r['ndcg@10_minus_first']:+.4f}", f"{r['recall@100']:.4f}",
             f"{r['documents_per_second']:.2f}", f"{r['speedup']:.2f}x"] for r in results]
    report(results, ["dataset", "backend", "documents", "nDCG@10", "vs first backend",
                     "Recall@100", "index docs/s", "speed-up"], rows, args.out,
           model=args.model, environment=environment(["onnxruntime", "torch"]))


if __name__ == "__main__":
    main()
