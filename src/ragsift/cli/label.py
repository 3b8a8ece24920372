"""``ragsift label``: score each query's candidates with a teacher; write training jsonl.

CLI contract: ``ragsift label --data DIR [--split train] --run RUN_FILE --teacher MODEL
--out FILE.jsonl``
"""

from __future__ import annotations

import argparse

from ragsift.errors import RagsiftError
from ragsift.models.onnx import BACKENDS


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


DESCRIPTION = ("Score the top k documents of a run for every query of a BEIR split with a "
               "teacher and write training rows with pos_scores/neg_scores (docs/scores for "
               "queries without relevant documents). Sharded and resumable: rerun the same "
               "command after a kill.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR", help="BEIR dataset folder")
    parser.add_argument("--split", default="train", help="qrels split (default: train)")
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
    from ragsift.cli.job import backend_from_args
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
