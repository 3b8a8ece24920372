"""``ragsift label``: score each query's candidates with a teacher; write training jsonl.

CLI contract: ``ragsift label --data DIR [--split train] --run RUN_FILE --teacher MODEL
--out FILE.jsonl``
"""

from __future__ import annotations

import argparse

from ragsift.cli.options import (
    add_dataset_arguments,
    add_teacher_arguments,
    backend_from_args,
    load_teacher,
)
from ragsift.errors import RagsiftError

DESCRIPTION = ("Score the top k documents of a run for every query of a BEIR split with a "
               "teacher and write training rows with pos_scores/neg_scores (docs/scores for "
               "queries without relevant documents). Sharded and resumable: rerun the same "
               "command after a kill.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataset_arguments(parser, "train", "qrels split")
    parser.add_argument("--run", required=True, metavar="RUN_FILE", help="candidates (TREC run)")
    add_teacher_arguments(parser, required=True)
    parser.add_argument("--k", type=int, default=50, help="candidates per query (default 50)")
    parser.add_argument("--out", required=True, metavar="FILE.jsonl")
    parser.set_defaults(func=run)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "label", help="label candidates with a teacher (training jsonl with scores)",
        description=DESCRIPTION)
    add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ragsift.data.beir import load_beir
    from ragsift.data.trec import read_run
    from ragsift.jobs.label import label_run

    data = load_beir(args.data, args.split)
    candidates = read_run(args.run)
    if not any(q in data.queries for q in candidates):
        raise RagsiftError(f"{args.run} has no query of the {args.split} "
                         f"split of {args.data}")
    label_run(data, candidates, load_teacher(args), args.out, k=args.k,
              shard_size=args.shard_size, backend=backend_from_args(args))
    return 0
