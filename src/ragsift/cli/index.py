"""``ragsift index``: build a retriever's index over a corpus and save it atomically."""

from __future__ import annotations

import argparse
import logging

from ragsift.cli.options import add_retriever_arguments, retriever_from_args
from ragsift.data.beir import load_corpus

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index", help="index a corpus and save the index",
        description="Index corpus.jsonl of a BEIR folder (or a corpus.jsonl file) with any "
                    "retriever and save it to a folder that `ragsift search --index` loads.",
    )
    parser.add_argument("--data", required=True, metavar="DIR_OR_FILE",
                        help="BEIR folder or corpus.jsonl")
    add_retriever_arguments(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="index folder to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    corpus = load_corpus(args.data)
    retriever = retriever_from_args(args)
    retriever.index(corpus)
    retriever.save(args.out)
    logger.info("indexed %d documents with %s into %s", len(corpus), args.retriever, args.out)
    return 0
