"""Entry point of the ``ragsift`` command.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a callable taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ragsift import __version__
from ragsift.errors import RagsiftError

_GROUPS = ("search", "index", "evaluate", "rerank", "train", "label", "mine", "synth", "gain_label",
           "job", "rag", "serve", "demo", "datasets")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every subcommand registered."""
    import importlib

    parser = argparse.ArgumentParser(
        prog="ragsift",
        description="Retrieve, rerank, train, distill, evaluate and serve retrieval models.",
    )
    parser.add_argument("--version", action="version", version=f"ragsift {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in _GROUPS:
        importlib.import_module(f"ragsift.cli.{group}").register(subparsers)
    return parser


def configure_logging(verbose: bool) -> None:
    """ragsift's own messages at INFO (DEBUG with -v); chatty dependencies at WARNING."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        for name in ("faiss", "faiss.loader", "bm25s", "httpx", "urllib3"):
            logging.getLogger(name).setLevel(logging.WARNING)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 a ragsift error, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except (RagsiftError, FileNotFoundError) as exc:
        print(f"ragsift {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ragsift {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
