"""``ragsift search``: retrieve for the judged queries of a BEIR split and write a TREC run.

CLI contract: ``ragsift search --data DIR [--split test] --retriever SPEC --k 100 --out RUN_FILE``;
``ragsift search --data DIR --pipeline configs/X.yaml --out RUN_FILE`` runs a pipeline config
(:mod:`ragsift.pipeline`: first stage, reranker, final fusion) instead of one retriever.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time

from ragsift.cli.options import (
    add_dataset_arguments,
    add_retriever_arguments,
    retriever_from_args,
)
from ragsift.data.beir import BeirDataset, load_beir
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
    add_dataset_arguments(parser, "test", "qrels split whose queries to run")
    add_retriever_arguments(parser, required=False)
    parser.add_argument("--index", metavar="DIR", default=None,
                        help="a saved index (ragsift index) to search instead of indexing")
    parser.add_argument("--pipeline", metavar="YAML", default=None,
                        help="a pipeline config (configs/pipeline-*.yaml: first stage, "
                             "reranker, final fusion) to run instead of --retriever/--index")
    parser.add_argument("--k", type=int, default=None,
                        help="documents per query (default: 100, or the pipeline's k)")
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
    if args.pipeline and (args.retriever or args.index):
        raise UsageError("--pipeline names its own retrievers: give it without --retriever "
                         "and --index")
    if not args.retriever and not args.index and not args.pipeline:
        raise UsageError("give --retriever SPEC, --index DIR or --pipeline YAML")
    data = load_beir(args.data, args.split)
    logger.info("%s: %d documents, %d %s queries", args.data, len(data.corpus),
                len(data.queries), args.split)
    if args.pipeline:
        return run_pipeline(args, data)
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
    result = retriever.search(data.queries, k=args.k or 100)
    searched = time.perf_counter()
    write_run(result, args.out, tag=args.tag)
    logger.info("indexed in %.1fs, searched %d queries in %.1fs; wrote %s", indexed - start,
                len(data.queries), searched - indexed, args.out)
    return 0


def run_pipeline(args: argparse.Namespace, data: BeirDataset) -> int:
    """Index ``data``'s corpus with the pipeline of ``args.pipeline`` (``--k`` overriding its
    ``k``), run it for the split's queries and write the run."""
    from ragsift.pipeline.config import load_pipeline
    from ragsift.pipeline.runner import RetrievalPipeline

    config = load_pipeline(args.pipeline)
    if args.k is not None:
        if args.k < 1:
            raise UsageError(f"--k must be at least 1, got {args.k}")
        config = dataclasses.replace(config, k=args.k)
    pipeline = RetrievalPipeline(config, show_progress=True)
    start = time.perf_counter()
    pipeline.index(data.corpus)
    indexed = time.perf_counter()
    result = pipeline.search(data.queries)
    write_run(result, args.out, tag=args.tag)
    logger.info("pipeline %s (first stage %s, reranker %s, final fusion %s): indexed in %.1fs, "
                "searched %d queries in %.1fs; wrote %s", args.pipeline,
                config.first_stage_spec, config.rerank_model, config.final_fusion,
                indexed - start, len(data.queries), time.perf_counter() - indexed, args.out)
    return 0
