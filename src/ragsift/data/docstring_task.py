"""A small but real retrieval task, built on the fly from the standard library's docstrings.

Every machine that runs ragsift has the standard library's sources, so this task needs no network,
no download and no cache: the ``.py`` files are *parsed* (never imported: importing ``this`` or
``antigravity`` has side effects) and each docstring written in the PEP 257 layout::

    Summary line, the query.

    Body, the relevant document: everything after the blank line.

becomes one query (the summary line) and one document (the body). The document has no title: the
function name would make the task trivial. A retriever must match a one-line description to the
longer explanation of the same object, which is hard enough to separate BM25 from dense models.

Which docstrings qualify (:func:`collect_docstrings`):

- module, class and function (including method) docstrings, cleaned with ``inspect.cleandoc``;
- the first line has at least 4 words and the second line is blank;
- the body (the lines after the blank line) has at least 25 words;
- the body does not contain the summary line verbatim;
- the first docstring wins when two share a summary line, a body (both compared with whitespace
  collapsed) or a ``path:qualname``.

Files are visited in sorted order of their path relative to the stdlib folder; ``site-packages``,
``dist-packages``, ``test``/``tests`` folders, ``idlelib``, ``lib2to3``, ``turtledemo``,
``__pycache__`` and files that fail to parse are skipped.

Example:
    >>> data = build_docstring_task(n_queries=100, n_documents=1000)  # doctest: +SKIP
    >>> len(data.queries), len(data.corpus)  # doctest: +SKIP
    (100, 1000)
    >>> write_beir(data, "docstrings")  # doctest: +SKIP
    PosixPath('docstrings')
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import logging
import os
import random
import sysconfig
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ragsift.data.beir import BeirDataset
from ragsift.data.beir_write import write_beir
from ragsift.errors import UsageError
from ragsift.types import Document

__all__ = [
    "MIN_BODY_WORDS",
    "MIN_SUMMARY_WORDS",
    "SKIPPED_DIRS",
    "DocstringEntry",
    "build_docstring_task",
    "collect_docstrings",
    "iter_source_files",
    "split_docstring",
    "stdlib_folder",
    "write_beir",
]

logger = logging.getLogger(__name__)

MIN_SUMMARY_WORDS = 4
"""The fewest words a summary line (the query) may have."""

MIN_BODY_WORDS = 25
"""The fewest words a body (the document) may have."""

SKIPPED_DIRS = frozenset(
    {
        "site-packages",
        "dist-packages",
        "test",
        "tests",
        "idlelib",
        "lib2to3",
        "turtledemo",
        "__pycache__",
    }
)
"""Folder names never entered: third-party code, test suites, demos and byte-code caches."""

MODULE_QUALNAME = "<module>"
"""The ``qualname`` given to a module docstring (the name of a module's code object)."""

_Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


@dataclass(frozen=True)
class DocstringEntry:
    """One qualifying docstring: where it is, its summary line (query) and its body (document).

    Example:
        >>> e = DocstringEntry("os.py", "walk", "function", "Walk a tree of folders.", "Body ...")
        >>> e.doc_id, e.query_id
        ('doc-4e7635eda68a', 'q-4e7635eda68a')
    """

    source: str
    qualname: str
    kind: str
    summary: str
    body: str

    @property
    def key(self) -> str:
        """The first 12 hex digits of ``sha1("source:qualname")``, shared by both ids."""
        return hashlib.sha1(f"{self.source}:{self.qualname}".encode()).hexdigest()[:12]

    @property
    def doc_id(self) -> str:
        """``doc-<key>``."""
        return f"doc-{self.key}"

    @property
    def query_id(self) -> str:
        """``q-<key>``."""
        return f"q-{self.key}"

    def document(self) -> Document:
        """The body as a :class:`Document` with an empty title and source/qualname/kind metadata."""
        metadata = {"source": self.source, "qualname": self.qualname, "kind": self.kind}
        return Document(self.doc_id, self.body, "", metadata)


def stdlib_folder() -> Path:
    """The folder of the running interpreter's standard library (``sysconfig``'s ``stdlib``)."""
    return Path(sysconfig.get_paths()["stdlib"])


def iter_source_files(stdlib_dir: str | Path) -> Iterator[tuple[str, Path]]:
    """Yield ``(relative posix path, path)`` of every ``.py`` file to read, sorted by the former.

    Folders named in :data:`SKIPPED_DIRS` are not entered, and symlinked folders are not followed.

    Example:
        >>> next(iter_source_files(stdlib_folder()))[0]  # doctest: +SKIP
        '__future__.py'
    """
    root = Path(stdlib_dir)
    found: list[tuple[str, Path]] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
        base = Path(folder)
        for name in files:
            if name.endswith(".py"):
                path = base / name
                found.append((path.relative_to(root).as_posix(), path))
    found.sort(key=lambda item: item[0])
    yield from found


def split_docstring(docstring: str) -> tuple[str, str] | None:
    """Split a cleaned docstring into ``(summary line, body)``; ``None`` unless laid out that way.

    The layout is PEP 257's: one summary line, one blank line, then the body. Only the shape is
    checked here, not the word counts.

    Example:
        >>> split_docstring("Return the sum.\\n\\nAdds a and b.")
        ('Return the sum.', 'Adds a and b.')
        >>> split_docstring("A summary that\\nspans two lines.") is None
        True
    """
    lines = docstring.strip().splitlines()
    if len(lines) < 3 or lines[1].strip():
        return None
    summary = lines[0].strip()
    body = "\n".join(lines[2:]).strip()
    if not summary or not body:
        return None
    return summary, body


def _qualifies(summary: str, body: str) -> bool:
    return (
        len(summary.split()) >= MIN_SUMMARY_WORDS
        and len(body.split()) >= MIN_BODY_WORDS
        and summary not in body
    )


def _iter_docstrings(tree: ast.Module) -> Iterator[tuple[str, str, str]]:
    """Yield ``(qualname, kind, raw docstring)`` of a module and its classes and functions.

    Qualnames follow ``__qualname__``: ``Class.method``, ``outer.<locals>.inner``. Definitions
    nested in ``if``/``try``/``with`` blocks are found too, in source order.
    """
    doc = ast.get_docstring(tree, clean=False)
    if doc:
        yield MODULE_QUALNAME, "module", doc
    # An explicit depth-first walk in source order (no recursion limit on deep nesting).
    pending: list[Iterator[ast.AST]] = [ast.iter_child_nodes(tree)]
    prefixes: list[str] = [""]
    while pending:
        node = next(pending[-1], None)
        if node is None:
            pending.pop()
            prefixes.pop()
            continue
        prefix = prefixes[-1]
        if isinstance(node, _Definition):
            qualname = prefix + node.name
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield qualname, kind, doc
            inner = qualname + ("." if kind == "class" else ".<locals>.")
            pending.append(iter(node.body))
            prefixes.append(inner)
        elif isinstance(node, (ast.stmt, ast.ExceptHandler, ast.match_case)):
            pending.append(ast.iter_child_nodes(node))
            prefixes.append(prefix)


def _parse(path: Path) -> ast.Module | None:
    try:
        source = path.read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences in old modules
            return ast.parse(source, filename=str(path))
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        logger.debug("skipping %s: %s", path, exc)
        return None


def collect_docstrings(stdlib_dir: str | Path | None = None) -> list[DocstringEntry]:
    """Every qualifying docstring under ``stdlib_dir`` (default: this Python's stdlib), in order.

    Order: files sorted by relative path, docstrings in source order within a file. See the module
    documentation for the rules; duplicates (summary, body or id) keep their first occurrence.

    Example:
        >>> entries = collect_docstrings()  # doctest: +SKIP
        >>> entries[0].source, entries[0].kind  # doctest: +SKIP
        ('__future__.py', 'module')
    """
    root = stdlib_folder() if stdlib_dir is None else Path(stdlib_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder (expected a Python standard library)")
    entries: list[DocstringEntry] = []
    seen_summaries: set[str] = set()
    seen_bodies: set[str] = set()
    seen_keys: set[str] = set()
    n_files = n_failed = 0
    for rel, path in iter_source_files(root):
        tree = _parse(path)
        if tree is None:
            n_failed += 1
            continue
        n_files += 1
        for qualname, kind, raw in _iter_docstrings(tree):
            parts = split_docstring(inspect.cleandoc(raw))
            if parts is None or not _qualifies(*parts):
                continue
            summary, body = parts
            summary_key, body_key = " ".join(summary.split()), " ".join(body.split())
            key = f"{rel}:{qualname}"
            if summary_key in seen_summaries or body_key in seen_bodies or key in seen_keys:
                continue
            seen_summaries.add(summary_key)
            seen_bodies.add(body_key)
            seen_keys.add(key)
            entries.append(DocstringEntry(rel, qualname, kind, summary, body))
    logger.info(
        "%d qualifying docstrings in %d files under %s (%d files failed to parse)",
        len(entries), n_files, root, n_failed,
    )
    return entries


def build_docstring_task(
    n_queries: int = 300,
    n_documents: int = 1000,
    seed: int = 13,
    stdlib_dir: str | Path | None = None,
) -> BeirDataset:
    """A BEIR-shaped retrieval task: summary lines as queries, docstring bodies as documents.

    Args:
        n_queries: how many queries (each with exactly one relevant document, its own body).
        n_documents: corpus size; the query documents plus sampled distractors.
        seed: seed of the ``random.Random`` that samples documents and queries.
        stdlib_dir: the folder to read; default the running interpreter's standard library.

    Returns:
        A :class:`BeirDataset` with ``n_documents`` documents (in file order), ``n_queries``
        queries, qrels ``{"q-<key>": {"doc-<key>": 1}}``, ``folder=Path(stdlib_dir)`` and
        ``split="test"``. The same arguments on the same Python give the same dataset.

    Raises:
        UsageError: negative sizes, ``n_queries > n_documents``, or fewer qualifying
            docstrings than ``n_documents`` (``ragsift datasets docstrings --queries
            --documents``).

    Example:
        >>> data = build_docstring_task(n_queries=2, n_documents=10)  # doctest: +SKIP
        >>> qid = next(iter(data.qrels))  # doctest: +SKIP
        >>> data.queries[qid], data.corpus[next(iter(data.qrels[qid]))].text[:40]  # doctest: +SKIP
    """
    if n_queries < 0 or n_documents < 1:
        raise UsageError(
            f"need n_queries >= 0 and n_documents >= 1 (--queries, --documents), got "
            f"{n_queries} and {n_documents}"
        )
    if n_queries > n_documents:
        raise UsageError(
            f"n_queries ({n_queries}) cannot exceed n_documents ({n_documents}): every query's "
            "relevant document is part of the corpus"
        )
    start = time.perf_counter()
    root = stdlib_folder() if stdlib_dir is None else Path(stdlib_dir)
    entries = collect_docstrings(root)
    if len(entries) < n_documents:
        raise UsageError(
            f"only {len(entries)} docstrings under {root} qualify (summary line >= "
            f"{MIN_SUMMARY_WORDS} words, body >= {MIN_BODY_WORDS} words), fewer than the "
            f"n_documents={n_documents} asked for; lower n_documents (--documents)"
        )
    rng = random.Random(seed)
    picked = rng.sample(range(len(entries)), n_documents)
    query_rows = sorted(picked[:n_queries])
    corpus = {entries[i].doc_id: entries[i].document() for i in sorted(picked)}
    queries = {entries[i].query_id: entries[i].summary for i in query_rows}
    qrels = {entries[i].query_id: {entries[i].doc_id: 1} for i in query_rows}
    logger.info(
        "docstring task: %d queries, %d documents (of %d qualifying) in %.2f s",
        len(queries), len(corpus), len(entries), time.perf_counter() - start,
    )
    return BeirDataset(corpus, queries, qrels, root, "test")
