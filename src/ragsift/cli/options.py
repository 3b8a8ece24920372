"""Command-line options shared by the subcommands that build retrievers."""

from __future__ import annotations

import argparse

from ragsift.models.onnx import BACKENDS
from ragsift.retrieve import Retriever, build_retriever, parse_spec
from ragsift.retrieve.bm25 import METHODS


def add_retriever_arguments(parser: argparse.ArgumentParser, required: bool = True,
                            encoder_backend_flag: str = "--backend") -> None:
    """Add ``--retriever SPEC`` and the options that tune BM25, dense and fusion (the encoder
    backend under ``encoder_backend_flag``, for commands where ``--backend`` means another
    thing)."""
    group = parser.add_argument_group("retriever")
    group.add_argument(
        "--retriever", required=required, metavar="SPEC", type=_spec,
        help="bm25 | bm25:METHOD | dense:MODEL | colbert:MODEL | splade:MODEL | "
             "hybrid:SPEC+SPEC (e.g. hybrid:bm25+dense:minilm-l6). MODEL: a local folder, a "
             "packaged name (minilm-l6, splade-tiny) or a hub id",
    )
    group.add_argument("--fusion", choices=("rrf", "convex"), default="rrf",
                       help="how hybrid runs are fused (default: rrf)")
    group.add_argument("--normalization", choices=("minmax", "zscore"), default="minmax",
                       help="score normalisation for convex fusion (default: minmax)")
    group.add_argument("--weights", type=_floats, default=None, metavar="W1,W2",
                       help="one fusion weight per hybrid member (default: equal)")
    group.add_argument("--depth", type=int, default=100,
                       help="documents each hybrid member returns before fusion (default: 100)")
    group.add_argument("--rrf-k", type=float, default=60.0, help="RRF constant (default: 60)")
    group.add_argument("--bm25-method", choices=METHODS, default=None,
                       help="BM25 variant (default: lucene)")
    group.add_argument("--k1", type=float, default=1.5, help="BM25 k1 (default: 1.5)")
    group.add_argument("--b", type=float, default=0.75, help="BM25 b (default: 0.75)")
    group.add_argument("--stopwords", default="en",
                       help="bm25s stopword list name, or 'none' (default: en)")
    group.add_argument("--stemmer", default="english",
                       help="Snowball language for stemming, or 'none' (default: english)")
    group.add_argument("--batch-size", type=int, default=32, help="encoder batch size")
    group.add_argument("--max-length", type=int, default=None,
                       help="encoder max tokens per text (default: the model's)")
    group.add_argument("--truncate-dim", type=int, default=None,
                       help="keep the first N embedding dimensions (Matryoshka models)")
    group.add_argument(encoder_backend_flag, dest="backend", choices=BACKENDS, default="torch",
                       help="encoder backend: torch, onnx (fused fp32) or onnx-int8")
    group.add_argument("--index-kind", choices=("flat", "hnsw"), default="flat",
                       help="faiss index for dense retrieval (default: flat, exact)")
    group.add_argument("--pool-factor", type=int, default=1,
                       help="colbert: pool each document's token vectors by this factor at "
                            "indexing time (default 1: none)")
    group.add_argument("--token-k", type=int, default=64,
                       help="colbert: nearest document tokens per query token for candidates; "
                            "0 scores every document (exhaustive MaxSim) (default 64)")
    group.add_argument("--splade-top-k", type=int, default=None, metavar="N",
                       help="splade: keep the N largest term weights of each text "
                            "(default: all)")
    group.add_argument("--no-cache", action="store_true",
                       help="do not cache document embeddings on disk")


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        message = f"expected comma-separated numbers, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def _spec(text: str) -> str:
    try:
        parse_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _none(value: str) -> str | None:
    return None if value.lower() in ("none", "") else value


def retriever_from_args(args: argparse.Namespace, show_progress: bool = True) -> Retriever:
    """Build the (un-indexed) retriever the parsed arguments describe."""
    bm25_options = {"k1": args.k1, "b": args.b, "stopwords": _none(args.stopwords),
                    "stemmer": _none(args.stemmer), "show_progress": show_progress}
    if args.bm25_method:
        bm25_options["method"] = args.bm25_method
    encoder_options = {"truncate_dim": args.truncate_dim, "max_length": args.max_length,
                       "batch_size": args.batch_size, "backend": args.backend}
    dense_options = {"index_kind": args.index_kind, "show_progress": show_progress,
                     "cache_dir": False if args.no_cache else None,
                     "encoder_options": encoder_options}
    colbert_options = {"pool_factor": args.pool_factor, "token_k": args.token_k or None,
                       "index_kind": args.index_kind, "batch_size": args.batch_size,
                       "show_progress": show_progress,
                       "model_options": {"document_length": args.max_length}}
    splade_options = {"show_progress": show_progress,
                      "encoder_options": {"max_length": args.max_length,
                                          "batch_size": args.batch_size,
                                          "top_k": args.splade_top_k}}
    return build_retriever(
        args.retriever, fusion=args.fusion, normalization=args.normalization,
        weights=args.weights, depth=args.depth, rrf_k=args.rrf_k, bm25_options=bm25_options,
        dense_options=dense_options, colbert_options=colbert_options,
        splade_options=splade_options,
    )
