"""``ragsift evaluate-rerank``: MAP and MRR@10 of a reranker over per-query candidate lists, as
MTEB's reranking tasks define them (:func:`ragsift.evaluate.evaluate_reranking`).

CLI contract: ``ragsift evaluate-rerank --model MODEL (--candidates FILE.jsonl | --data DIR
--run RUN_FILE [--split test] [--k 30]) [--max-length N] [--batch-size B] [--json]
[--per-query]``. The candidates file holds MTEB's rows, ``{"query", "positive": [...],
"negative": [...]}``; ``--data`` + ``--run`` builds them from the top ``k`` of a first-stage run
(judged documents of the split as positives, the rest as negatives).
"""

from __future__ import annotations

import argparse
import json

from ragsift.cli.argtypes import positive_int
from ragsift.errors import UsageError
from ragsift.report import markdown_table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate-rerank", help="MTEB-style reranking evaluation (MAP, MRR@10) of a reranker",
        description="Score each query's candidate list (positives and negatives) with a "
                    "reranker and report MAP and MRR@10 over the lists, as MTEB's reranking "
                    "tasks do. Queries without a positive or without a negative are skipped.",
    )
    parser.add_argument("--model", required=True, help="reranker folder, packaged name or hub id")
    parser.add_argument("--candidates", default=None, metavar="FILE.jsonl",
                        help='rows {"query", "positive": [...], "negative": [...]}')
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="BEIR folder (with --run): candidates from a first-stage run")
    parser.add_argument("--run", default=None, metavar="RUN_FILE", help="TREC run (with --data)")
    parser.add_argument("--split", default="test", help="qrels split of --data (default test)")
    parser.add_argument("--k", type=positive_int, default=30,
                        help="candidates per query taken from --run (default 30)")
    parser.add_argument("--max-length", type=positive_int, default=None,
                        help="most tokens per pair (default: the model's own)")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--per-query", action="store_true", help="include per-query values")
    parser.set_defaults(func=run)


def load_samples(args: argparse.Namespace) -> list:
    """The candidate lists the options name (a jsonl file, or a BEIR folder and a run)."""
    from ragsift.evaluate import read_reranking_samples, samples_from_run

    if (args.candidates is None) == (args.data is None or args.run is None):
        raise UsageError("give --candidates FILE, or --data DIR with --run RUN_FILE")
    if args.candidates is not None:
        if args.data or args.run:
            raise UsageError("--candidates replaces --data and --run; give one or the other")
        return list(read_reranking_samples(args.candidates))
    from ragsift.data.beir import load_beir
    from ragsift.data.trec import read_run

    data = load_beir(args.data, args.split)
    texts = {doc_id: doc.full_text() for doc_id, doc in data.corpus.items()}
    return samples_from_run(data.queries, texts, data.qrels, read_run(args.run), args.k)


def run(args: argparse.Namespace) -> int:
    from ragsift.evaluate import evaluate_reranking
    from ragsift.rerank import Reranker

    samples = load_samples(args)
    sizes = {"max_length": args.max_length} if args.max_length else {}
    reranker = Reranker.load(args.model, batch_size=args.batch_size, **sizes)
    result = evaluate_reranking(samples, reranker.score)
    if args.json:
        payload = result.to_json()
        if not args.per_query:
            del payload["per_query"]
        payload["skipped_queries"] = payload.pop("missing_queries")
        print(json.dumps(payload, indent=2))
        return 0
    print(markdown_table(["model", *result.mean], [[args.model, *result.mean.values()]]))
    print(f"\n{result.num_queries} queries; skipped (no positive or no negative): "
          f"{result.missing_queries}")
    return 0
