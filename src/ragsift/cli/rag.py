"""``ragsift rag``: the RAG chain over a QA file, with answers and metrics written to a folder.

CLI contract: ``ragsift rag --questions FILE.jsonl --config cfg.yaml --out DIR``
(``--collection DIR`` retrieves from a collection instead of each question's paragraphs)
"""

from __future__ import annotations

import argparse

from ragsift.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rag", help="retrieve -> rerank -> select -> generate, with EM / F1",
        description="Run the RAG chain of a config (retriever, reranker, selector, generator) "
                    "over a QA jsonl (id, question, answer, paragraphs) and write rankings, "
                    "predictions and metrics (EM, F1, supporting recall) to a folder.")
    parser.add_argument("--questions", required=True, metavar="FILE.jsonl")
    parser.add_argument("--config", default=None, metavar="YAML",
                        help="keys of ragsift.rag.pipeline.RagConfig (e.g. configs/"
                             "rag-hotpotqa.yaml: prompt, few-shot examples, stop sequences)")
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--collection", default=None, metavar="DIR",
                        help="open retrieval: search this collection (ragsift collection) "
                             "instead of ranking each question's own paragraphs")
    parser.add_argument("--limit", type=int, default=None, help="first N questions only")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set selector=gold")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragsift.config_file import load_dataclass
    from ragsift.data.qa import load_qa
    from ragsift.errors import DataFormatError
    from ragsift.models.generation.prompts import PromptError
    from ragsift.rag.pipeline import Pipeline, RagConfig

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key.strip().replace("-", "_")] = value
    if args.collection:
        overrides["collection"] = args.collection
    try:
        config = load_dataclass(RagConfig, args.config, overrides, what="the RAG pipeline")
    except PromptError as exc:  # checked after loading: name the file and the key
        message = str(exc).removeprefix(f"{exc.key}: ")
        if args.config is None or exc.key.split("[", 1)[0] in overrides:
            raise DataFormatError("<command line>", None, exc.key, message) from None
        raise DataFormatError(args.config, _key_line(args.config, exc.key), exc.key,
                              message) from None
    examples = load_qa(args.questions)[:args.limit]
    Pipeline(config).run(examples, args.out)
    return 0


def _key_line(path: str, key: str) -> int | None:
    """The 1-based line of top-level ``key`` (``few_shot`` for ``few_shot[1]``) in the YAML file
    ``path``, or None when it is not there (the key came from ``--set``)."""
    import re

    pattern = re.compile(rf"{re.escape(key.split('[', 1)[0])}\s*:")
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if pattern.match(line):
                return number
    return None
