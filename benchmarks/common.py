"""Helpers shared by the benchmark scripts: dataset choice, slicing, timing, output.

- Datasets: ``--data DIR`` (repeatable). By default every BEIR folder under
  ``../shared/datasets`` (relative to the repository root) that has ``qrels/<split>.tsv``; when
  there is none, the built-in docstring task
  (:func:`ragsift.data.docstring_task.build_docstring_task`).
- Slices: ``--limit-queries N`` keeps N queries (a seeded sample); ``--limit-docs N`` keeps every
  judged document of the kept queries plus N others (a seeded sample), so qrels stay complete.
- Timing: :func:`best_time`, the best of R calls timed with :func:`time.perf_counter`.
- Output: :func:`report` prints one JSON object (environment + results), then a markdown table
  (:func:`ragsift.report.markdown_table`), and writes the JSON to ``--out FILE`` if given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from ragsift.data.beir import BeirDataset, load_beir
from ragsift.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"


def add_dataset_arguments(parser: argparse.ArgumentParser, queries: bool = True,
                          limit_docs_help: str | None = None) -> None:
    """``--data`` (repeatable), ``--split``, ``--limit-docs``, ``--limit-queries``, ``--out``.

    ``queries=False`` leaves out ``--limit-queries`` (for benchmarks that use no queries);
    ``limit_docs_help`` replaces the help of ``--limit-docs`` (for scripts that read it their way).
    """
    parser.add_argument("--data", action="append", type=Path, metavar="DIR",
                        help="a BEIR folder (repeatable; default: every folder under "
                             "../shared/datasets with the split, else the docstring task)")
    parser.add_argument("--split", default="test", help="qrels split (default: test)")
    if queries:
        parser.add_argument("--limit-queries", type=int, default=None, metavar="N",
                            help="keep N queries (seeded sample)")
    parser.add_argument("--limit-docs", type=int, default=None, metavar="N",
                        help=limit_docs_help
                        or "keep the judged documents of the kept queries plus N others")
    parser.add_argument("--out", type=Path, metavar="FILE", help="also write the JSON here")


def default_folders(split: str) -> list[Path]:
    """The BEIR folders under ../shared/datasets that have ``qrels/<split>.tsv``."""
    if not SHARED.is_dir():
        return []
    return sorted(p for p in SHARED.iterdir() if (p / "qrels" / f"{split}.tsv").is_file())


def load_datasets(args: argparse.Namespace) -> list[tuple[str, BeirDataset]]:
    """The datasets the arguments name, whole (not sliced)."""
    folders = args.data or default_folders(args.split)
    if folders:
        return [(Path(folder).name, load_beir(folder, args.split)) for folder in folders]
    from ragsift.data.docstring_task import build_docstring_task

    return [("python-docstrings", build_docstring_task(n_queries=300, n_documents=1000, seed=13))]


def datasets(args: argparse.Namespace) -> list[tuple[str, BeirDataset]]:
    """The datasets the arguments name, sliced as ``--limit-queries`` / ``--limit-docs`` ask."""
    return [(name, slice_dataset(data, getattr(args, "limit_queries", None), args.limit_docs))
            for name, data in load_datasets(args)]


def slice_dataset(data: BeirDataset, n_queries: int | None, n_docs: int | None,
                  seed: int = 0) -> BeirDataset:
    """A reproducible slice: ``n_queries`` queries, all their judged documents and ``n_docs``
    other documents (``None``: all). Documents keep their corpus order."""
    rng = random.Random(seed)
    qids = sorted(data.queries)
    if n_queries is not None:
        qids = sorted(rng.sample(qids, min(n_queries, len(qids))))
    corpus = data.corpus
    if n_docs is not None:
        judged = {d for q in qids for d in data.qrels.get(q, {}) if d in data.corpus}
        others = [d for d in data.corpus if d not in judged]
        keep = judged | set(rng.sample(others, min(n_docs, len(others))))
        corpus = {d: doc for d, doc in data.corpus.items() if d in keep}
    return BeirDataset(corpus, {q: data.queries[q] for q in qids},
                       {q: data.qrels[q] for q in qids if q in data.qrels}, data.folder,
                       data.split)


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """The smallest wall time (s) of ``repeats`` calls of ``fn`` and the last call's result."""
    best, result = float("inf"), None
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(packages: Sequence[str] = ()) -> dict[str, Any]:
    """Where the numbers come from: machine, versions, commit and load average (a busy machine
    gives slower, noisier timings)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": cpus,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "git": _git_commit(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "versions": {p: _version(p) for p in packages},
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def report(results: list[dict], headers: Sequence[str], rows: Sequence[Sequence[object]],
           out: Path | None, **meta: Any) -> dict[str, Any]:
    """Print one JSON object (``meta``, the load average now and ``results``), then the
    markdown table; write the JSON to ``out`` if given. Returns the object."""
    obj = {**meta, "load_average_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
           "results": results}
    text = json.dumps(obj, indent=2)
    print(text)
    print()
    print(markdown_table(headers, rows))
    if out:
        Path(out).write_text(text + "\n")
    return obj
