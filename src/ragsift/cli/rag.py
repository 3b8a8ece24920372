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
    from ragsift.rag.pipeline import Pipeline, RagConfig

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key.strip().replace("-", "_")] = value
    if args.collection:
        overrides["collection"] = args.collection
    config = load_dataclass(RagConfig, args.config, overrides, what="the RAG pipeline")
    examples = load_qa(args.questions)[:args.limit]
    Pipeline(config).run(examples, args.out)
    return 0
