"""``ragsift demo``: BM25, dense and hybrid retrieval end to end, with a metrics table.

With no arguments it builds a retrieval task from the docstrings of Python's standard library
(summary line = query, the rest of the docstring = its relevant document), so it runs on any
machine with no network; ``--data DIR`` runs the same on a BEIR folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from ragsift.data.beir import BeirDataset, load_beir
from ragsift.data.trec import write_run
from ragsift.evaluate import evaluate, paired_tests
from ragsift.report import markdown_table
from ragsift.retrieve import BM25Retriever, DenseRetriever, HybridRetriever
from ragsift.types import top_k

logger = logging.getLogger(__name__)
DEMO_METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="BM25 + dense + hybrid end to end, with a metrics table",
        description="Index a task with BM25 and a dense model, fuse them, evaluate all four "
                    "runs. Default task: Python standard-library docstrings (no network needed).",
    )
    parser.add_argument("--data", metavar="DIR", help="a BEIR folder instead of the built-in task")
    parser.add_argument("--split", default="test", help="qrels split with --data (default: test)")
    parser.add_argument("--model", default="minilm-l6", help="dense model (default: minilm-l6)")
    parser.add_argument("--queries", type=int, default=300, help="built-in task: queries")
    parser.add_argument("--documents", type=int, default=1000, help="built-in task: documents")
    parser.add_argument("--seed", type=int, default=13, help="built-in task: sampling seed")
    parser.add_argument("--k", type=int, default=100, help="documents retrieved per query")
    parser.add_argument("--out", metavar="DIR", help="write the runs and metrics.json here")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.set_defaults(func=run)


def load_task(args: argparse.Namespace) -> BeirDataset:
    """The BEIR folder given by ``--data``, or the built-in docstring task."""
    if args.data:
        return load_beir(args.data, args.split)
    from ragsift.data.docstring_task import build_docstring_task

    return build_docstring_task(args.queries, args.documents, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    data = load_task(args)
    name = str(args.data) if args.data else "python-docstrings"
    logger.info("task %s: %d documents, %d queries", name, len(data.corpus), len(data.queries))
    bm25 = BM25Retriever()
    dense = DenseRetriever(args.model, show_progress=not args.json)
    runs, seconds = {}, {}
    for label, retriever in (("bm25", bm25), (f"dense:{args.model}", dense)):
        start = time.perf_counter()
        retriever.index(data.corpus)
        indexed = time.perf_counter()
        runs[label] = retriever.search(data.queries, k=max(args.k, 100))
        seconds[label] = (indexed - start, time.perf_counter() - indexed)
    member_runs = list(runs.values())
    for fusion in ("rrf", "convex"):
        start = time.perf_counter()
        hybrid = HybridRetriever([bm25, dense], fusion=fusion)
        runs[f"hybrid-{fusion}"] = top_k(hybrid.fuse(member_runs), args.k)
        seconds[f"hybrid-{fusion}"] = (0.0, time.perf_counter() - start)
    runs = {label: top_k(r, args.k) for label, r in runs.items()}
    results = {label: evaluate(data.qrels, r, DEMO_METRICS) for label, r in runs.items()}
    bm25_label, dense_label = list(runs)[:2]
    tests = {
        f"hybrid-rrf vs {other}": paired_tests(results[other].per_query["ndcg@10"],
                                               results["hybrid-rrf"].per_query["ndcg@10"],
                                               "ndcg@10")
        for other in (bm25_label, dense_label)
    }
    summary = {
        "task": name, "documents": len(data.corpus), "queries": len(data.queries),
        "metrics": {label: r.mean for label, r in results.items()},
        "seconds": {label: {"index": s[0], "search": s[1]} for label, s in seconds.items()},
        "significance_ndcg@10": {k: {"delta": c.delta, "t_test_p": c.t_test_p,
                                     "randomization_p": c.randomization_p}
                                 for k, c in tests.items()},
    }
    if args.out:
        out = Path(args.out)
        for label, r in runs.items():
            write_run(r, out / f"{label.replace(':', '_').replace('/', '_')}.trec")
        (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"\nragsift demo on {name}: {len(data.corpus)} documents, {len(data.queries)} queries\n")
    rows = [[label, *r.mean.values(), seconds[label][0] or "-", seconds[label][1]]
            for label, r in results.items()]
    print(markdown_table(["run", *DEMO_METRICS, "index s", "search s"], rows))
    print()
    for label, c in tests.items():
        print(f"{label}: ndcg@10 delta {c.delta:+.4f}, paired t-test p={c.t_test_p:.3g}, "
              f"randomization p={c.randomization_p:.3g}")
    return 0
