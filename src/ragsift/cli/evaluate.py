"""``ragsift evaluate``: metrics of one or more runs, and paired tests against the first.

CLI contract: ``ragsift evaluate --qrels FILE RUN_FILE [RUN_FILE ...] [--metrics ndcg@10,recall@100]
[--json]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ragsift.cli.argtypes import positive_int
from ragsift.data.trec import read_any_qrels, read_run
from ragsift.errors import DataFormatError
from ragsift.evaluate import DEFAULT_METRICS, evaluate, paired_tests, parse_metric, results_table
from ragsift.report import markdown_table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score TREC runs against qrels (and compare them)",
        description="Compute metrics with pytrec_eval. With several runs, each run after the "
                    "first is compared with the first by a paired t-test and a randomization "
                    "test on every metric.",
    )
    parser.add_argument("--qrels", required=True, metavar="FILE",
                        help="qrels: BEIR tsv (qrels/test.tsv) or TREC format")
    parser.add_argument("runs", nargs="+", metavar="RUN_FILE", help="TREC run files")
    parser.add_argument("--metrics", default=list(DEFAULT_METRICS), type=metric_list,
                        help="comma-separated: ndcg@k, mrr@k, map, map@k, recall@k, "
                             f"precision@k, hit@k (default: {','.join(DEFAULT_METRICS)})")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--per-query", action="store_true", help="include per-query values")
    parser.add_argument("--keep-identical-ids", action="store_true",
                        help="keep documents whose id equals the query id (BEIR drops them)")
    parser.add_argument("--permutations", type=positive_int, default=10000,
                        help="randomization test permutations (default: 10000)")
    parser.set_defaults(func=run)


def metric_list(text: str) -> list[str]:
    """``--metrics``: comma-separated metric names, each checked (a bad one is a usage error).

    Example:
        >>> metric_list("ndcg@10, recall@100")
        ['ndcg@10', 'recall@100']
    """
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one metric, e.g. ndcg@10")
    for name in names:
        try:
            parse_metric(name)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return names


def run(args: argparse.Namespace) -> int:
    metrics = args.metrics
    qrels = read_any_qrels(args.qrels)
    if not any(qrels.values()):
        raise DataFormatError(args.qrels, None, None, "no judgements in this qrels file")
    names = [Path(p).name if Path(p).name not in _dupes(args.runs) else p for p in args.runs]
    results = [evaluate(qrels, read_run(p), metrics, not args.keep_identical_ids)
               for p in args.runs]
    comparisons = [
        paired_tests(results[0].per_query[m], r.per_query[m], m, args.permutations)
        for r in results[1:] for m in results[0].mean
    ]
    if args.json:
        payload = {
            "qrels": args.qrels,
            "runs": {p: (r.to_json() if args.per_query else
                         {k: v for k, v in r.to_json().items() if k != "per_query"})
                     for p, r in zip(args.runs, results)},
            "comparisons": [
                {"baseline": args.runs[0], "run": args.runs[1 + i // len(results[0].mean)],
                 **c.__dict__} for i, c in enumerate(comparisons)
            ],
        }
        print(json.dumps(payload, indent=2))
        return 0
    print(results_table(names, results))
    print(f"\n{results[0].num_queries} judged queries", end="")
    missing = [f"{n}: {r.missing_queries}" for n, r in zip(names, results) if r.missing_queries]
    print(f"; queries missing from runs (scored 0): {', '.join(missing)}" if missing else "")
    if comparisons:
        rows = [[names[1 + i // len(results[0].mean)], c.metric, c.mean_a, c.mean_b, c.delta,
                 c.t_test_p, c.randomization_p] for i, c in enumerate(comparisons)]
        print(f"\npaired tests against {names[0]}:")
        print(markdown_table(["run", "metric", "baseline", "value", "delta", "t-test p",
                              "randomization p"], rows))
    return 0


def _dupes(paths: list[str]) -> set[str]:
    names = [Path(p).name for p in paths]
    return {n for n in names if names.count(n) > 1}
