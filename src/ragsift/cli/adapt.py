"""``ragsift adapt``: unsupervised domain adaptation of a bi-encoder in one command (GPL-style).

CLI contract: ``ragsift adapt --data CORPUS --out DIR [--config configs/adapt.yaml]
[--generator smollm2-135m] [--model minilm-l6] [--teacher MODEL] [--cross-encoder] [--docs N]
[--budget-minutes M] [--seed S] [--set KEY=VALUE ...]``

Flags override the config file; ``--set`` sets any other key of
:class:`ragsift.adapt.config.AdaptConfig` (``--help`` lists them). ``DIR/model`` is the adapted
sentence-transformers folder (``dense:DIR/model``); rerun the same command after a kill to
resume.
"""

from __future__ import annotations

import argparse
import logging

from ragsift.cli.argtypes import positive_int
from ragsift.config_file import fields_help, help_lines
from ragsift.errors import DataFormatError, UsageError

logger = logging.getLogger(__name__)

DESCRIPTION = ("Adapt a bi-encoder to a corpus without queries or qrels: a local LM writes a "
               "query per document (kept when BM25 finds the document again), the model being "
               "adapted mines hard negatives that a teacher scores (probable false negatives "
               "dropped), and the bi-encoder (and with --cross-encoder a reranker) is trained "
               "on the teacher's scores. One folder per stage in DIR; a complete stage is "
               "skipped, so rerunning after a kill resumes.")


def register(subparsers: argparse._SubParsersAction) -> None:
    from ragsift.adapt.config import AdaptConfig

    parser = subparsers.add_parser(
        "adapt", help="unsupervised domain adaptation of a bi-encoder (GPL-style)",
        description=DESCRIPTION, epilog=keys_help(fields_help(AdaptConfig)),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, metavar="CORPUS",
                        help="BEIR folder or corpus.jsonl (only the corpus is read)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="the run's folder; the adapted model goes to DIR/model")
    parser.add_argument("--config", default=None, metavar="YAML",
                        help="settings file (e.g. configs/adapt.yaml)")
    parser.add_argument("--generator", default=None, metavar="SPEC",
                        help="query generator, as ragsift synth --generator (default "
                             "smollm2-135m)")
    parser.add_argument("--model", default=None, metavar="MODEL",
                        help="bi-encoder to adapt (default minilm-l6)")
    parser.add_argument("--teacher", default=None, metavar="MODEL",
                        help="teacher: a cross-encoder or other reranker or bi-encoder "
                             "(default: the model being adapted, as a bi-encoder)")
    parser.add_argument("--cross-encoder", action="store_const", const="true", default=None,
                        help="also train a cross-encoder reranker into DIR/reranker")
    parser.add_argument("--docs", type=positive_int, default=None, metavar="N",
                        help="at most N documents get a synthetic query (a seeded random "
                             "sample; default: all)")
    parser.add_argument("--budget-minutes", type=_positive_float, default=None, metavar="M",
                        help="time budget of this run: synthesis may use synth_share (half) "
                             "of it (its speed is measured on the first probe_docs documents, "
                             "then their count is capped) and training stops when it runs out")
    parser.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any setting below, e.g. --set round_trip_k=5")
    parser.set_defaults(func=run)


def keys_help(rows: list[tuple[str, str, str, str]], width: int = 96) -> str:
    """The ``--help`` epilog: every setting as ``key (type; default): help``."""
    return "\n".join(["settings (config file keys, or --set KEY=VALUE):",
                      *help_lines(rows, width)])


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    from ragsift.adapt.config import load_adapt_config
    from ragsift.adapt.stages import adapt

    overrides = {"generator": args.generator, "model": args.model, "teacher": args.teacher,
                 "cross_encoder": args.cross_encoder, "docs": args.docs,
                 "budget_minutes": args.budget_minutes, "seed": args.seed}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key.strip().replace("-", "_")] = value
    try:
        config = load_adapt_config(args.config, overrides)
    except DataFormatError as exc:
        if exc.path != "<command line>":
            raise
        raise UsageError(str(exc)) from None  # a bad flag or --set value
    result = adapt(args.data, args.out, config)
    logger.info("adapt: ran %s, skipped %s as complete; the adapted model is %s (use it as "
                "dense:%s)%s", result.ran or "nothing", result.skipped or "nothing",
                result.model, result.model,
                f"; the reranker is {result.reranker}" if result.reranker else "")
    return 0
