"""Entry point of the ``ragsift`` command.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a callable taking the parsed arguments and returning an exit code (and
``own_sigterm=True`` where the command handles SIGTERM itself, as ``serve`` does; every other
command turns SIGTERM into :class:`Terminated`, exit status 143). :data:`COMMANDS`
lists them; only the module of the command being run is imported, so ``ragsift --help`` and
light commands (``evaluate``, ``datasets validate``) start without torch or transformers.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import NamedTuple

from ragsift import __version__
from ragsift.errors import RagsiftError, UsageError


class Command(NamedTuple):
    """A subcommand: the module under ``ragsift.cli`` that registers it, and its one-line help
    (the same text the module's ``register`` gives; tests/cli checks that they agree)."""

    module: str
    help: str


COMMANDS: dict[str, Command] = {
    "search": Command("search", "retrieve for a BEIR split and write a TREC run file"),
    "index": Command("index", "index a corpus and save the index"),
    "evaluate": Command("evaluate", "score TREC runs against qrels (and compare them)"),
    "evaluate-rerank": Command("evaluate_rerank", "MTEB-style reranking evaluation (MAP, "
                               "MRR@10) of a reranker"),
    "rerank": Command("rerank", "rerank the top k of a TREC run with a reranker model"),
    "train": Command("train", "fine-tune a retrieval model on the HF Trainer"),
    "label": Command("label", "label candidates with a teacher (training jsonl with scores)"),
    "mine": Command("mine", "mine hard negatives (training jsonl ragsift train reads)"),
    "hop-pairs": Command("hop_pairs", "training rows for a second-hop reranker (multi-hop "
                         "qrels)"),
    "synth": Command("synth", "generate synthetic queries for a corpus (training jsonl)"),
    "adapt": Command("adapt", "unsupervised domain adaptation of a bi-encoder (GPL-style)"),
    "gain-label": Command("gain_label",
                          "GainRAG labels: how much each paragraph helps the generator"),
    "job": Command("job", "batch jobs (encode, label, mine) locally or on Ray"),
    "rag": Command("rag", "retrieve -> rerank -> select -> generate, with EM / F1"),
    "serve": Command("serve", "serve rerankers, embedders and an index over HTTP"),
    "demo": Command("demo", "BM25 + dense + hybrid end to end, with a metrics table"),
    "datasets": Command("datasets", "download, list and validate BEIR datasets"),
    "collection": Command("collection", "your own documents: create, add, delete, search, info"),
}


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser, listing every subcommand of :data:`COMMANDS` with its help.

    Args:
        commands: the subcommands whose modules are imported to register their full parsers
            (default: all); the others are placeholders that only show their help line.

    Example:
        >>> parser = build_parser([])
        >>> sorted(parser._subparsers._group_actions[0].choices)[:3]
        ['adapt', 'collection', 'datasets']
    """
    full = set(COMMANDS if commands is None else commands)
    parser = argparse.ArgumentParser(
        prog="ragsift",
        description="Retrieve, rerank, train, distill, evaluate and serve retrieval models.",
    )
    parser.add_argument("--version", action="version", version=f"ragsift {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        if name in full:
            importlib.import_module(f"ragsift.cli.{command.module}").register(subparsers)
        else:
            subparsers.add_parser(name, help=command.help, add_help=False)
    return parser


def command_in(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs: its first word that is not an option (the top-level options
    take no value), or None.

    Example:
        >>> command_in(["-v", "evaluate", "--run", "r.trec"])
        'evaluate'
    """
    return next((arg for arg in argv if not arg.startswith("-")), None)


def configure_logging(verbose: bool) -> None:
    """ragsift's own messages at INFO (DEBUG with -v); chatty dependencies at WARNING and no
    Hugging Face progress bars (set through huggingface_hub, which transformers reads when it
    is imported, so this imports no transformers)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        for name in ("faiss", "faiss.loader", "bm25s", "httpx", "urllib3"):
            logging.getLogger(name).setLevel(logging.WARNING)
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
        if "transformers" in sys.modules:  # imported already: it read the setting at import
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()


EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class Terminated(BaseException):
    """SIGTERM arrived (``kill``, a scheduler preempting or stopping the job), raised in the main
    thread like Ctrl-C's KeyboardInterrupt so that the same cleanup runs: temporary files and
    folders are removed and a sharded job keeps its finished shards for the rerun. A
    BaseException, so that no ``except Exception`` on the way swallows it."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextmanager
def sigterm_as_exception() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` (only when called from the main thread,
    the one Python delivers signals to; elsewhere nothing changes); the previous handler comes
    back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    0: success; 1: a data error (a bad or missing input file, model or index, or an unexpected
    failure); 2: a usage error (a bad option or value, a required setting left out, config
    settings that cannot work together; argparse's own errors too); 130: interrupted (Ctrl-C);
    143: terminated (SIGTERM), after the same cleanup as Ctrl-C. Every error is one line on
    stderr, ``ragsift COMMAND: error: ...``; only an unexpected internal exception prints its
    traceback, and only with ``-v``.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    command = command_in(argv)
    parser = build_parser([command] if command in COMMANDS else [])
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        own = getattr(args, "own_sigterm", False)  # the command handles SIGTERM itself
        with nullcontext() if own else sigterm_as_exception():
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"ragsift {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print(f"ragsift {args.command}: terminated", file=sys.stderr)
        return EXIT_TERMINATED
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
