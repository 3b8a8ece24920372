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
from ragsift.errors import RagsiftError, UsageError

_GROUPS = ("search", "index", "evaluate", "rerank", "train", "label", "mine", "synth", "gain_label",
           "job", "rag", "serve", "demo", "datasets", "collection")


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


EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    0: success; 1: a data error (a bad or missing input file, model or index, or an unexpected
    failure); 2: a usage error (a bad option or value; argparse's own errors too); 130:
    interrupted. Every error is one line on stderr, ``ragsift COMMAND: error: ...``; only an
    unexpected internal exception prints its traceback, and only with ``-v``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"ragsift {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, never a traceback
        status, message = describe_error(exc)
        if status is None:
            if args.verbose:
                raise
            message += "; rerun with -v for the traceback"
            status = EXIT_DATA
        print(f"ragsift {args.command}: error: {message}", file=sys.stderr)
        return status


def describe_error(exc: Exception) -> tuple[int | None, str]:
    """The exit status and one-line message for ``exc``; status ``None`` for an unexpected
    (internal) exception, whose traceback ``-v`` shows."""
    if isinstance(exc, UsageError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, RagsiftError):
        return EXIT_DATA, str(exc)
    if isinstance(exc, OSError):
        return EXIT_DATA, _os_error(exc)
    if isinstance(exc, MemoryError):
        return EXIT_DATA, "out of memory (try a smaller --batch-size or input)"
    if type(exc) is ValueError:  # library code's checks of values the user passed
        return None, _first_line(exc) or "invalid value"
    return None, f"internal error ({type(exc).__name__}): {_first_line(exc)}"


def _os_error(exc: OSError) -> str:
    """``path: reason`` for an operating-system error (permission denied, is a folder, ...)."""
    if exc.filename is not None and exc.strerror:
        where = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
        return f"{where}: {exc.strerror}"
    return _first_line(exc) or type(exc).__name__


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


if __name__ == "__main__":
    sys.exit(main())
