"""``ragsift train``: fine-tune a bi-encoder, cross-encoder, ColBERT or LLM reranker.

CLI contract: ``ragsift train embedding|reranker|colbert|llm-reranker [--config cfg.yaml]
--data BEIR_DIR_OR_JSONL [--split train] --model MODEL --out DIR [--max-steps N]
[--batch-size B] [--seed S]`` (flags override the config file; ``--set key=value`` sets any
other config key).
"""

from __future__ import annotations

import argparse

from ragsift.errors import UsageError
from ragsift.train.config import CONFIGS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="fine-tune a retrieval model on the HF Trainer",
        description="Train a bi-encoder (embedding), cross-encoder (reranker), ColBERT "
                    "(colbert) or LLM reranker (llm-reranker, LoRA). Runs under torchrun for "
                    "several processes. The output folder works at once as dense:DIR or "
                    "--model DIR.",
    )
    parser.add_argument("task", choices=sorted(CONFIGS))
    parser.add_argument("--config", default=None, metavar="YAML", help="config file")
    parser.add_argument("--data", default=None, metavar="BEIR_DIR_OR_JSONL",
                        help="a BEIR folder (qrels positives + BM25 negatives) or training jsonl")
    parser.add_argument("--split", default=None, help="qrels split to train on (default train)")
    parser.add_argument("--model", default=None, help="starting model: folder, packaged name, "
                                                      "or hub id")
    parser.add_argument("--out", default=None, metavar="DIR", help="where the model goes")
    parser.add_argument("--max-steps", type=int, default=None, help="optimizer steps "
                                                                      "(default: --set epochs)")
    parser.add_argument("--batch-size", type=int, default=None, help="queries per device step")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--eval-data", default=None, metavar="BEIR_DIR",
                        help="evaluate nDCG@10 on this BEIR folder during training")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other config key, e.g. --set learning_rate=3e-5")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragsift.train.config import load_config
    from ragsift.train.trainer import train

    overrides = {"data": args.data, "split": args.split, "model": args.model, "out": args.out,
                 "max_steps": args.max_steps, "batch_size": args.batch_size, "seed": args.seed,
                 "eval_data": args.eval_data}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key.strip().replace("-", "_")] = value
    config = load_config(args.task, args.config, overrides)
    train(args.task, config)
    return 0
