"""``ragsift rerank``: re-score the top of a run with any reranker and write a new TREC run.

CLI contract: ``ragsift rerank --data DIR [--split test] --run RUN_FILE --model MODEL
[--backend torch|onnx|onnx-int8] [--long-doc max] [--k 100] [--max-length 512] --out RUN_FILE``
"""

from __future__ import annotations

import argparse
import logging
import time

from ragsift.cli.options import add_dataset_arguments
from ragsift.data.beir import load_beir
from ragsift.data.trec import read_run, write_run
from ragsift.errors import RagsiftError
from ragsift.models.onnx import BACKENDS
from ragsift.rerank import Reranker
from ragsift.rerank.long_documents import STRATEGIES

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rerank", help="rerank the top k of a TREC run with a reranker model",
        description="Re-score the top k documents of every judged query of a BEIR split with a "
                    "reranker (cross-encoder, LLM or ColBERT; the family is read from the "
                    "model's config) and write the reranked run.",
    )
    add_dataset_arguments(parser, "test", "qrels split whose queries to rerank")
    parser.add_argument("--run", required=True, metavar="RUN_FILE", help="TREC run to rerank")
    parser.add_argument("--model", required=True, help="reranker folder, packaged name or hub id")
    parser.add_argument("--family", default=None, help="force the family (default: detected)")
    parser.add_argument("--backend", choices=BACKENDS, default="torch",
                        help="torch (default), onnx (fused fp32 graph) or onnx-int8 (int8 "
                             "weights); onnx needs the [onnx] extra, exported once per model")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    parser.add_argument("--long-doc", choices=STRATEGIES, default="max",
                        help="passages longer than the model takes: score overlapping windows "
                             "and take the max (default), mean, topk-mean, the first window, "
                             "or truncate (logged)")
    parser.add_argument("--k", type=int, default=100, help="documents reranked per query")
    parser.add_argument("--max-length", type=int, default=None,
                        help="most tokens per pair (cross-encoder, LLM) or per passage "
                             "(ColBERT); default: the model's own (512 for BERT-sized "
                             "cross-encoders, the folder's document length for ColBERT)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", required=True, metavar="RUN_FILE", help="TREC run to write")
    parser.add_argument("--tag", default="ragsift-rerank", help="run tag, the 6th column")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data = load_beir(args.data, args.split)
    candidates = read_run(args.run)
    judged = {qid: docs for qid, docs in candidates.items() if qid in data.queries}
    if not judged:
        raise RagsiftError(f"{args.run} has no query of the "
                         f"{args.split} split of {args.data}")
    sizes = {"max_length": args.max_length} if args.max_length else {}
    reranker = Reranker.load(args.model, family=args.family, long_doc=args.long_doc,
                             batch_size=args.batch_size, backend=args.backend,
                             threads=args.threads, **sizes)
    start = time.perf_counter()
    result = reranker.rerank(data.queries, data.corpus, judged, k=args.k, show_progress=True)
    pairs = sum(len(docs) for docs in result.values())
    seconds = time.perf_counter() - start
    write_run(result, args.out, tag=args.tag)
    logger.info("reranked %d pairs in %.1fs (%.1f pairs/s); wrote %s", pairs, seconds,
                pairs / max(seconds, 1e-9), args.out)
    return 0
