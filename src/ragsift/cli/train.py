"""``ragsift train``: fine-tune a bi-encoder, cross-encoder, ColBERT or LLM reranker.

CLI contract: ``ragsift train TASK [--config cfg.yaml] --data BEIR_DIR_OR_JSONL [--split train]
--model MODEL --out DIR [--max-steps N] [--batch-size B] [--seed S]`` (flags override the config
file; ``--set key=value`` sets any other config key, ``--set key=null`` unsets an optional
one). ``TASK`` is a key of :data:`ragsift.train.config.TASKS`; ``--help`` lists the tasks, the
group losses and every config key with its type, default and help.
"""

from __future__ import annotations

import argparse

from ragsift.config_file import fields_help, help_lines
from ragsift.errors import UsageError
from ragsift.train.config import TASKS, TrainConfig
from ragsift.train.registry import GROUP_LOSSES, table_help


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="fine-tune a retrieval model on the HF Trainer",
        description="Train a retrieval model (TASK below). Runs under torchrun for several "
                    "processes. The output folder works at once as dense:DIR or --model DIR.",
        epilog=keys_help(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("task", choices=list(TASKS), metavar="TASK",
                        help=f"one of: {', '.join(TASKS)}")
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
                        help="any config key below, e.g. --set learning_rate=3e-5")
    parser.set_defaults(func=run)


def keys_help(width: int = 96) -> str:
    """The ``--help`` epilog: tasks, group losses, then every config key (the shared ones,
    then each task's own) as ``key (type, default): help``."""
    lines = ["tasks:"] + [f"  {name}: {entry.help}" for name, entry in TASKS.items()]
    lines += ["", "group losses (loss: NAME; reranker, llm-reranker):"]
    lines += [f"  {line}" for line in table_help(GROUP_LOSSES).splitlines()]
    shared = set(fields_help(TrainConfig))
    sections = [("config keys of every task", fields_help(TrainConfig))]
    sections += [(f"{name} keys (its own, and shared keys with another default)",
                  [row for row in fields_help(entry.config) if row not in shared])
                 for name, entry in TASKS.items()]
    for title, rows in sections:
        lines += ["", f"{title}:", *help_lines(rows, width)]
    return "\n".join(lines)


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
