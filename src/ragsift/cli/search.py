"""``ragsift search``: retrieve for the judged queries of a BEIR split and write a TREC run.

CLI contract: ``ragsift search --data DIR [--split test] --retriever SPEC --k 100 --out RUN_FILE``
"""

from __future__ import annotations

import argparse
import logging
import time

from ragsift.cli.options import add_retriever_arguments, retriever_from_args
from ragsift.data.beir import load_beir
from ragsift.data.trec import write_run
from ragsift.errors import IndexMismatchError, UsageError
from ragsift.retrieve.base import Retriever
from ragsift.retrieve.spec import HYBRID, parse_spec

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search", help="retrieve for a BEIR split and write a TREC run file",
        description="Index the corpus of a BEIR folder (or load a saved index) and retrieve the "
                    "top k documents for every query judged in qrels/<split>.tsv.",
    )
    parser.add_argument("--data", required=True, metavar="DIR", help="BEIR dataset folder")
    parser.add_argument("--split", default="test", help="qrels split whose queries to run")
    add_retriever_arguments(parser, required=False)
    parser.add_argument("--index", metavar="DIR", default=None,
                        help="a saved index (ragsift index) to search instead of indexing")
    parser.add_argument("--k", type=int, default=100, help="documents per query (default: 100)")
    parser.add_argument("--out", required=True, metavar="RUN_FILE", help="TREC run file to write")
    parser.add_argument("--tag", default="ragsift", help="run tag, the 6th column")
    parser.set_defaults(func=run)


def load_index(path: str, spec: str | None) -> Retriever:
    """Load a saved index; with a spec, refuse an index of another kind or model."""
    if spec is None:
        return Retriever.load(path)
    parsed = parse_spec(spec)
    # a hybrid spec names its members' models: the user trusts the folders it names
    retriever = Retriever.load(path, model=parsed.model, trust_model_paths=parsed.kind == HYBRID)
    if retriever.kind != parsed.kind:
        raise IndexMismatchError(f"{path}: holds a {retriever.kind!r} index, not {spec!r}")
    return retriever


def run(args: argparse.Namespace) -> int:
    if not args.retriever and not args.index:
        raise UsageError("give --retriever SPEC or --index DIR")
    data = load_beir(args.data, args.split)
    logger.info("%s: %d documents, %d %s queries", args.data, len(data.corpus),
                len(data.queries), args.split)
    start = time.perf_counter()
    if args.index:
        retriever = load_index(args.index, args.retriever)
        if retriever.num_documents != len(data.corpus):
            logger.warning("index %s holds %d documents, corpus has %d", args.index,
                           retriever.num_documents, len(data.corpus))
    else:
        retriever = retriever_from_args(args)
        retriever.index(data.corpus)
    indexed = time.perf_counter()
    result = retriever.search(data.queries, k=args.k)
    searched = time.perf_counter()
    write_run(result, args.out, tag=args.tag)
    logger.info("indexed in %.1fs, searched %d queries in %.1fs; wrote %s", indexed - start,
                len(data.queries), searched - indexed, args.out)
    return 0
