"""``ragsift job encode|label|mine``: the batch jobs, on this machine or a Ray cluster.

CLI contract: ``ragsift job encode|label|mine ... [--backend local|ray]``. ``job label`` and
``job mine`` take the arguments of ``ragsift label`` and ``ragsift mine`` (the encoder backend
of ``mine``'s retriever is ``--encoder-backend`` here); ``job encode`` writes one base64
float32 vector per corpus document (:mod:`ragsift.jobs.encode`). Every job is sharded: shards
run as tasks of Ray actors (one model load per actor), finished shards are written at once,
and rerunning the same command after a crash skips them.
"""

from __future__ import annotations

import argparse

from ragsift.cli import label, mine
from ragsift.cli.options import add_backend_arguments, backend_from_args
from ragsift.models.onnx import BACKENDS as ENCODER_BACKENDS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "job", help="batch jobs (encode, label, mine) locally or on Ray",
        description="Sharded, resumable batch jobs, run in this process or on a Ray cluster.")
    jobs = parser.add_subparsers(dest="job", metavar="JOB", required=True)

    encode = jobs.add_parser("encode", help="encode a corpus into vectors",
                             description="Encode every document of a BEIR corpus with a "
                                         "bi-encoder; one jsonl row per document holding its "
                                         "id and base64 float32 vector.")
    encode.add_argument("--data", required=True, metavar="DIR",
                        help="BEIR dataset folder (its corpus.jsonl is read)")
    encode.add_argument("--model", required=True, help="bi-encoder: folder, packaged name or "
                                                       "hub id")
    encode.add_argument("--batch-size", type=int, default=32)
    encode.add_argument("--max-length", type=int, default=None,
                        help="max tokens per document (default: the model's)")
    encode.add_argument("--encoder-backend", dest="backend", choices=ENCODER_BACKENDS,
                        default="torch", help="encoder backend (default torch)")
    encode.add_argument("--shard-size", type=int, default=1024,
                        help="documents per shard (default 1024)")
    encode.add_argument("--out", required=True, metavar="FILE.jsonl")
    encode.set_defaults(func=run_encode)
    add_backend_arguments(encode)

    label_parser = jobs.add_parser("label", help="label candidates with a teacher",
                                   description=label.DESCRIPTION)
    label.add_arguments(label_parser)
    add_backend_arguments(label_parser)

    mine_parser = jobs.add_parser("mine", help="mine hard negatives",
                                  description=mine.DESCRIPTION)
    mine.add_arguments(mine_parser, encoder_backend_flag="--encoder-backend")
    add_backend_arguments(mine_parser)


def run_encode(args: argparse.Namespace) -> int:
    from functools import partial
    from pathlib import Path

    from ragsift.data.beir import load_corpus
    from ragsift.jobs.backends import Lazy
    from ragsift.jobs.encode import encode_corpus
    from ragsift.models.bi_encoder import BiEncoder
    from ragsift.models.hub import resolve_model

    resolve_model(args.model)
    corpus = load_corpus(Path(args.data) / "corpus.jsonl")
    options = {"batch_size": args.batch_size, "backend": args.backend}
    if args.max_length:
        options["max_length"] = args.max_length
    encoder = Lazy(partial(BiEncoder.from_pretrained, args.model, **options))
    encode_corpus(corpus, encoder, args.out, args.shard_size, backend=backend_from_args(args))
    return 0
