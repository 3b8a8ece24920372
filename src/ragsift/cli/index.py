"""``ragsift index``: build a retriever's index over a corpus and save it atomically."""

from __future__ import annotations

import argparse
import logging

from ragsift.cli.argtypes import positive_int
from ragsift.cli.options import add_retriever_arguments, retriever_from_args
from ragsift.data.beir import load_corpus
from ragsift.retrieve import Retriever

logger = logging.getLogger(__name__)
#: Documents per embedding-cache block for dense indexing from the command line: small enough
#: that a kill loses little work (DenseRetriever's own default, 4,096, makes a small corpus
#: one block that is lost whole).
BLOCK_SIZE = 256


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
    parser.add_argument("--block-size", type=positive_int, default=BLOCK_SIZE, metavar="N",
                        help="dense: documents encoded and cached together; a rerun after a "
                             f"kill reuses every finished block (default: {BLOCK_SIZE})")
    parser.set_defaults(func=run)


def set_block_size(retriever: Retriever, size: int) -> None:
    """Encode the documents of dense ``retriever`` (or of the dense members of a hybrid) in
    cache blocks of ``size``, so an interrupted ``ragsift index`` loses at most one block."""
    for member in [retriever, *getattr(retriever, "retrievers", [])]:
        if member.kind == "dense":
            member.block_size = size


def run(args: argparse.Namespace) -> int:
    corpus = load_corpus(args.data)
    retriever = retriever_from_args(args)
    set_block_size(retriever, args.block_size)
    retriever.index(corpus)
    retriever.save(args.out)
    logger.info("indexed %d documents with %s into %s", len(corpus), args.retriever, args.out)
    return 0
