"""``ragsift mine``: hard negatives from any retriever, false negatives filtered by a teacher.

CLI contract: ``ragsift mine --data DIR [--split train] --retriever SPEC [--teacher MODEL]
[--filter margin|percpos|none] [--negatives 8] --out FILE.jsonl``
"""

from __future__ import annotations

import argparse
import logging

from ragsift.cli.options import (
    add_dataset_arguments,
    add_retriever_arguments,
    add_teacher_arguments,
    backend_from_args,
    load_teacher,
    retriever_from_args,
)

logger = logging.getLogger(__name__)


DESCRIPTION = ("Retrieve candidates for every query of a BEIR split, drop the relevant ones "
               "and, with a teacher, the probable false negatives (margin or percentage of the "
               "positive's score, optional absolute threshold), and keep N negatives per "
               "query. Sharded and resumable.")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mine", help="mine hard negatives (training jsonl ragsift train reads)",
        description=DESCRIPTION)
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser, encoder_backend_flag: str = "--backend"
                  ) -> None:
    add_dataset_arguments(parser, "train", "qrels split")
    add_retriever_arguments(parser, encoder_backend_flag=encoder_backend_flag)
    add_teacher_arguments(parser, required=False)
    parser.add_argument("--filter", choices=("margin", "percpos", "none"), default=None,
                        help="false-negative filter (default: percpos with a teacher, else none)")
    parser.add_argument("--margin", type=float, default=0.05,
                        help="margin filter: drop negatives scoring above s+ - margin")
    parser.add_argument("--percent", type=float, default=0.95,
                        help="percpos filter: drop negatives scoring above percent * s+")
    parser.add_argument("--threshold", type=float, default=None,
                        help="also drop negatives whose teacher score exceeds this")
    parser.add_argument("--negatives", type=int, default=8, help="negatives per query")
    parser.add_argument("--candidates", type=int, default=50,
                        help="retrieved candidates considered per query (default 50)")
    parser.add_argument("--skip", type=int, default=0, help="skip the first N ranks")
    parser.add_argument("--sampling", choices=("random", "top"), default="random",
                        help="keep a seeded random sample (default) or the best-ranked")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, metavar="FILE.jsonl")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragsift.data.beir import load_beir
    from ragsift.jobs.mine import FilterSettings, mine_negatives

    data = load_beir(args.data, args.split)
    teacher = load_teacher(args)
    method = args.filter or ("percpos" if teacher else "none")
    retriever = retriever_from_args(args)
    retriever.index(data.corpus)
    run_ = retriever.search(data.queries, k=args.skip + args.candidates + 20)
    settings = FilterSettings(method, args.margin, args.percent, args.threshold)
    _, totals = mine_negatives(data, run_, args.out, teacher, settings, args.negatives,
                               args.candidates, args.skip, args.sampling, args.seed,
                               args.shard_size, backend=backend_from_args(args))
    logger.info("mined %d negatives for %d queries; dropped as false negatives: %s; queries "
                "left without negatives: %d", totals["negatives"], totals["queries"],
                {k: totals[k] for k in ("margin", "percpos", "threshold") if totals[k]},
                totals["queries_without_negatives"])
    return 0
