"""Helpers shared by the benchmark scripts: dataset choice, slicing, timing, output."""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ragsift.data.beir import BeirDataset, load_beir
from ragsift.report import markdown_table

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data`` (repeatable), ``--split``, ``--limit-docs``, ``--limit-queries``, ``--out``."""
    parser.add_argument("--data", action="append", type=Path,
                        help="BEIR folder (repeatable; default: ../shared/datasets/*, else the "
                             "docstring task)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit-queries", type=int, default=None, help="keep N queries")
    parser.add_argument("--limit-docs", type=int, default=None,
                        help="keep the judged documents of the kept queries plus N others")
    parser.add_argument("--out", type=Path, help="also write the JSON here")


def datasets(args: argparse.Namespace) -> list[tuple[str, BeirDataset]]:
    """The datasets the arguments name, sliced as asked."""
    folders = args.data or sorted(p for p in SHARED.glob("*")
                                  if (p / "qrels" / f"{args.split}.tsv").is_file())
    if folders:
        loaded = [(folder.name, load_beir(folder, args.split)) for folder in folders]
    else:
        from ragsift.data.docstring_task import build_docstring_task

        loaded = [("python-docstrings", build_docstring_task())]
    return [(name, slice_dataset(data, args.limit_queries, args.limit_docs))
            for name, data in loaded]


def slice_dataset(data: BeirDataset, n_queries: int | None, n_docs: int | None) -> BeirDataset:
    """A reproducible slice: ``n_queries`` queries, their judged documents and ``n_docs`` others."""
    rng = random.Random(0)
    qids = sorted(data.queries)
    if n_queries is not None:
        qids = sorted(rng.sample(qids, min(n_queries, len(qids))))
    corpus = data.corpus
    if n_docs is not None:
        judged = {d for q in qids for d in data.qrels[q]}
        others = [d for d in data.corpus if d not in judged]
        keep = judged | set(rng.sample(others, min(n_docs, len(others))))
        corpus = {d: doc for d, doc in data.corpus.items() if d in keep}
    return BeirDataset(corpus, {q: data.queries[q] for q in qids},
                       {q: data.qrels[q] for q in qids}, data.folder, data.split)


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """The smallest wall time of ``repeats`` calls of ``fn`` and the last call's result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def report(results: list[dict], headers: list[str], rows: list[list], out: Path | None) -> None:
    """Print the JSON results, then the markdown table; write the JSON to ``out`` if given."""
    text = json.dumps(results, indent=2)
    print(text)
    print()
    print(markdown_table(headers, rows))
    if out:
        out.write_text(text)
