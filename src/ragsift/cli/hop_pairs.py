"""``ragsift hop-pairs``: training rows for a second-hop reranker from multi-hop qrels.

CLI contract: ``ragsift hop-pairs --data DIR [--split train] --run RUN_FILE --out FILE.jsonl``
"""

from __future__ import annotations

import argparse
import logging

from ragsift.cli.argtypes import positive_int
from ragsift.cli.options import add_dataset_arguments
from ragsift.errors import RagsiftError

logger = logging.getLogger(__name__)

DESCRIPTION = ("For every query of a BEIR split with two or more relevant documents, write one "
               "training row per ordered pair (a, b) of them: the query followed by a (the hop "
               "query) as the query, b as the positive, the run's top documents that are not "
               "relevant as negatives. Train a second-hop reranker on the file with `ragsift "
               "train reranker` and name it as hop_model in a pipeline config.")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hop-pairs", help="training rows for a second-hop reranker (multi-hop qrels)",
        description=DESCRIPTION)
    add_dataset_arguments(parser, "train", "qrels split")
    parser.add_argument("--run", required=True, metavar="RUN_FILE",
                        help="candidates the negatives come from (TREC run)")
    parser.add_argument("--depth", type=positive_int, default=30,
                        help="negatives from each query's top DEPTH documents (default 30)")
    parser.add_argument("--context-words", type=positive_int, default=64,
                        help="words of the first document in the hop query (default 64; "
                             "the pipeline's hop_context_words must match)")
    parser.add_argument("--out", required=True, metavar="FILE.jsonl")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragsift.data.beir import load_beir
    from ragsift.data.second_hop import hop_training_examples
    from ragsift.data.training import write_training
    from ragsift.data.trec import read_run

    data = load_beir(args.data, args.split)
    examples = hop_training_examples(data, read_run(args.run), args.depth, args.context_words)
    if not examples:
        raise RagsiftError(f"no training rows: no query of the {args.split} split of "
                           f"{args.data} has two relevant documents, candidates in "
                           f"{args.run} and a negative among them")
    count = write_training(examples, args.out)
    logger.info("%d rows from %d queries written to %s", count,
                len({e.query_id for e in examples}), args.out)
    return 0
