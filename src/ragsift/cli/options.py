"""Command-line options shared by several subcommands: the BEIR dataset and split (search, rerank,
label, mine, hop-pairs), the retriever (search, index, mine, synth), the teacher (label, mine)
and where sharded jobs run (job, label, mine)."""

from __future__ import annotations

import argparse

from ragsift.cli.argtypes import positive_int
from ragsift.jobs.backends import BACKENDS as JOB_BACKENDS
from ragsift.jobs.backends import ShardBackend, make_backend
from ragsift.models.onnx import BACKENDS
from ragsift.retrieve.base import Retriever
from ragsift.retrieve.bm25 import METHODS
from ragsift.retrieve.spec import (
    KINDS,
    RetrieverSpecError,
    build_retriever,
    parse_spec,
    spec_forms,
)


def add_dataset_arguments(parser: argparse.ArgumentParser, split: str, split_help: str) -> None:
    """Add ``--data DIR`` (a BEIR folder, required) and ``--split`` (default ``split``)."""
    parser.add_argument("--data", required=True, metavar="DIR", help="BEIR dataset folder")
    parser.add_argument("--split", default=split, help=f"{split_help} (default: {split})")


def add_retriever_arguments(parser: argparse.ArgumentParser, required: bool = True,
                            encoder_backend_flag: str = "--backend") -> None:
    """Add ``--retriever SPEC`` and the options that tune BM25, dense and fusion (the encoder
    backend under ``encoder_backend_flag``, for commands where ``--backend`` means another
    thing)."""
    group = parser.add_argument_group("retriever")
    group.add_argument(
        "--retriever", required=required, metavar="SPEC", type=_spec, action=_OneRetriever,
        help=retriever_help(),
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
    group.add_argument("--colbert-engine", choices=("auto", "flat", "plaid"), default="auto",
                       help="colbert: flat token index, PLAID (centroids + compressed "
                            "residuals, exact MaxSim last), or auto: PLAID from 1,000 documents")
    group.add_argument("--nprobe", type=positive_int, default=4,
                       help="colbert plaid: nearest centroids per query token (default 4)")
    group.add_argument("--ncandidates", type=positive_int, default=1024,
                       help="colbert plaid: candidate documents from the centroids; the best "
                            "quarter by centroid scores gets exact MaxSim (default 1024)")
    group.add_argument("--residual-bits", type=int, choices=(0, 4, 8), default=8,
                       help="colbert plaid: bits per residual dimension; 0 keeps the token "
                            "vectors exactly, as float16 (default 8)")
    group.add_argument("--splade-top-k", type=int, default=None, metavar="N",
                       help="splade: keep the N largest term weights of each text "
                            "(default: all)")
    group.add_argument("--no-cache", action="store_true",
                       help="do not cache document embeddings on disk")


def retriever_help() -> str:
    """The ``--retriever`` help: every form of :data:`~ragsift.retrieve.spec.KINDS`, then what
    each kind is."""
    kinds = "; ".join(f"{kind.name}: {kind.summary}" for kind in KINDS.values())
    return (f"{' | '.join(spec_forms())}. {kinds}. MODEL: a local folder, a packaged name "
            "(minilm-l6, splade-tiny) or a hub id")


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        message = f"expected comma-separated numbers, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def _spec(text: str) -> str:
    try:
        parse_spec(text)
    except RetrieverSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


class _OneRetriever(argparse.Action):
    """Store ``--retriever SPEC``, refusing a second one: two specs are not a fusion (that is
    ``hybrid:A+B``), and silently keeping the last would search with one of them only."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        first = getattr(namespace, self.dest, None)
        if first is not None:
            parser.error(f"--retriever given twice ({first!r}, then {values!r}); to fuse "
                         f"retrievers give one spec: --retriever hybrid:{first}+{values}")
        setattr(namespace, self.dest, values)


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
                       "index_kind": args.index_kind, "engine": args.colbert_engine,
                       "nprobe": args.nprobe, "ncandidates": args.ncandidates,
                       "residual_bits": args.residual_bits or None,
                       "batch_size": args.batch_size,
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


def add_teacher_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    """``--teacher`` and the options of the teacher model."""
    parser.add_argument("--teacher", required=required, metavar="MODEL",
                        help="a reranker (cross-encoder, LLM, ColBERT) or bi-encoder: folder, "
                             "packaged name or hub id")
    parser.add_argument("--teacher-kind", choices=("auto", "reranker", "bi-encoder"),
                        default="auto", help="default: read from the model's config")
    parser.add_argument("--teacher-max-length", type=int, default=None,
                        help="teacher max tokens (default: the model's)")
    parser.add_argument("--teacher-batch-size", type=int, default=32)
    parser.add_argument("--teacher-backend", choices=BACKENDS, default="torch",
                        help="torch (default), onnx (fused fp32 graph, about twice as fast on "
                             "CPU) or onnx-int8; as `ragsift rerank --backend`")
    parser.add_argument("--shard-size", type=int, default=64,
                        help="queries per shard; finished shards survive a kill (default 64)")


def load_teacher(args: argparse.Namespace):
    """The teacher the arguments name as a :class:`ragsift.jobs.backends.Lazy` (loaded on
    first use, once per worker), or None. The model's folder is resolved now, so a wrong
    name fails before any work starts."""
    from functools import partial

    from ragsift.jobs.backends import Lazy
    from ragsift.jobs.teacher import Teacher
    from ragsift.models.hub import resolve_model

    if not args.teacher:
        return None
    resolve_model(args.teacher)
    options = {"batch_size": args.teacher_batch_size, "backend": args.teacher_backend}
    if args.teacher_max_length:
        options["max_length"] = args.teacher_max_length
    return Lazy(partial(Teacher.load, args.teacher, args.teacher_kind, **options))


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backend local|ray`` and the Ray options."""
    group = parser.add_argument_group("where shards run")
    group.add_argument("--backend", dest="job_backend", choices=JOB_BACKENDS, default="local",
                       help="local: this process (default); ray: a pool of Ray actors")
    group.add_argument("--workers", type=int, default=None,
                       help="Ray actors (default: cluster CPUs / --cpus-per-worker)")
    group.add_argument("--cpus-per-worker", type=float, default=1.0,
                       help="CPUs each Ray actor reserves (default 1)")
    group.add_argument("--ray-address", default=None,
                       help="Ray cluster address, e.g. auto or ray://head:10001 (default: the "
                            "running Ray session, else a local one)")
    group.add_argument("--retries", type=int, default=2,
                       help="restarts of a dead Ray worker before the job stops (default 2)")


def backend_from_args(args: argparse.Namespace) -> ShardBackend:
    """The shard backend the arguments ask for (``local`` when the command has no such
    option, as in ``ragsift label``)."""
    name = getattr(args, "job_backend", "local")
    if name == "local":
        return make_backend("local")
    return make_backend(name, args.workers, args.ray_address, args.cpus_per_worker,
                        args.retries)
