"""BEIR folders: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

Layout (https://github.com/beir-cellar/beir):

- ``corpus.jsonl``: one ``{"_id", "text", "title"?, ...}`` object a line; other fields become
  :attr:`Document.metadata`.
- ``queries.jsonl``: one ``{"_id", "text", ...}`` object a line.
- ``qrels/<split>.tsv``: ``query-id  corpus-id  score`` separated by tabs, with or without a header.

Every reader validates as it streams and raises :class:`~ragsift.errors.DataFormatError` naming
the file, line and field: invalid UTF-8 or gzip data, malformed JSON, a missing field, a
duplicate id, an id with whitespace or control characters, a relevance that is not an integer
in range, a qrels id absent from the corpus or the queries (rules in :mod:`ragsift.data.checks`).

Example:
    >>> data = load_beir("path/to/scifact", split="test")   # doctest: +SKIP
    >>> len(data.corpus), len(data.queries), len(data.qrels)  # doctest: +SKIP
    (5183, 300, 300)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ragsift.data.checks import check_id, parse_relevance
from ragsift.data.jsonl import add_unique, field_id, field_str, read_jsonl
from ragsift.data.lines import iter_lines
from ragsift.errors import DataFormatError
from ragsift.types import Corpus, Document, Qrels, Queries

_RESERVED = {"_id", "text", "title"}


def _find(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.jsonl", f"{stem}.jsonl.gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder}: no {stem}.jsonl in this BEIR folder")


def iter_corpus(path: str | Path) -> Iterator[Document]:
    """Stream the documents of a BEIR ``corpus.jsonl`` (or a folder holding one).

    Duplicate ids are detected with a set of ids only, so memory stays small.
    """
    path = Path(path)
    if path.is_dir():
        path = _find(path, "corpus")
    seen: dict[str, int] = {}
    for line, row in read_jsonl(path):
        doc_id = field_id(row, "_id", path, line)
        if doc_id in seen:
            raise DataFormatError(
                path, line, "_id",
                f"duplicate document id {doc_id!r} (first on line {seen[doc_id]})",
            )
        seen[doc_id] = line
        text = field_str(row, "text", path, line)
        title = field_str(row, "title", path, line, default="")
        metadata = {k: v for k, v in row.items() if k not in _RESERVED}
        yield Document(doc_id, text, title, metadata)


def load_corpus(path: str | Path) -> dict[str, Document]:
    """All documents of a BEIR corpus, by id, in file order."""
    return {doc.id: doc for doc in iter_corpus(path)}


def load_queries(path: str | Path) -> dict[str, str]:
    """The queries of a BEIR ``queries.jsonl`` (or a folder holding one), by id."""
    path = Path(path)
    if path.is_dir():
        path = _find(path, "queries")
    queries: dict[str, str] = {}
    lines: dict[str, int] = {}
    for line, row in read_jsonl(path):
        qid = field_id(row, "_id", path, line)
        if qid in queries:
            raise DataFormatError(
                path, line, "_id", f"duplicate query id {qid!r} (first on line {lines[qid]})"
            )
        queries[qid] = field_str(row, "text", path, line)
        lines[qid] = line
    return queries


_HEADER_NAMES = (
    {"query-id", "query_id", "queryid", "qid", "query"},
    {"corpus-id", "corpus_id", "corpusid", "doc-id", "doc_id", "docid", "did", "document",
     "corpus"},
    {"score", "relevance", "rel", "label", "grade"},
)


def is_qrels_header(columns: list[str]) -> bool:
    """Whether ``columns`` are a qrels header such as ``query-id corpus-id score``.

    Example:
        >>> is_qrels_header(["query-id", "corpus-id", "score"])
        True
        >>> is_qrels_header(["q1", "d1", "high"])
        False
    """
    return len(columns) == 3 and all(
        column.strip().lower() in names for column, names in zip(columns, _HEADER_NAMES)
    )


def qrels_columns(text: str) -> list[str]:
    """The columns of a BEIR qrels line: split on tabs, or on any whitespace without a tab."""
    parts = text.split("\t") if "\t" in text else text.split()
    return [p.strip() for p in parts]


def load_qrels(path: str | Path) -> Qrels:
    """Relevance judgements from a BEIR qrels tsv (``query-id corpus-id score``, header optional).

    Returns ``{query id: {doc id: relevance}}``. A repeated (query, doc) pair is an error; so is
    a relevance that is not an integer (``1.0`` is one) in the range pytrec_eval holds, and an id
    with whitespace or control characters. Only a first line naming the columns (``query-id
    corpus-id score``) is skipped as a header.
    """
    path = Path(path)
    qrels: Qrels = {}
    for line_no, text in iter_lines(path):
        if not text.strip():
            continue
        parts = qrels_columns(text)
        if len(parts) != 3:
            raise DataFormatError(
                path, line_no, None, f"expected 3 tab-separated columns, got {len(parts)}"
            )
        if line_no == 1 and is_qrels_header(parts):
            continue
        qid = check_id(parts[0], path, line_no, "query-id")
        doc_id = check_id(parts[1], path, line_no, "corpus-id")
        relevance = parse_relevance(parts[2], path, line_no, "score")
        add_unique(qrels, qid, doc_id, relevance, path, line_no, "corpus-id")
    return qrels


def qrels_path(folder: str | Path, split: str) -> Path:
    """``folder/qrels/<split>.tsv``, with an error listing the splits that exist."""
    folder = Path(folder)
    path = folder / "qrels" / f"{split}.tsv"
    if not path.is_file():
        splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise FileNotFoundError(
            f"{path}: no such qrels file; splits in {folder}: {', '.join(splits) or 'none'}"
        )
    return path


def check_qrels(
    qrels: Qrels, qrels_file: str | Path, queries: Queries, doc_ids: set[str] | Corpus
) -> None:
    """Raise :class:`DataFormatError` when a qrels query or doc id is absent from the data.

    The error names the qrels file and the first offending line.
    """
    missing_q = [qid for qid in qrels if qid not in queries]
    missing_d = [(qid, d) for qid, docs in qrels.items() for d in docs if d not in doc_ids]
    if not missing_q and not missing_d:
        return
    bad_q, bad_d = set(missing_q), set(missing_d)
    for line_no, text in iter_lines(qrels_file):
        parts = qrels_columns(text)
        if len(parts) < 2:
            continue
        if parts[0] in bad_q:
            raise DataFormatError(
                qrels_file, line_no, "query-id",
                f"query {parts[0]!r} is not in queries.jsonl "
                f"({len(missing_q)} qrels queries missing in all)",
            )
        if (parts[0], parts[1]) in bad_d:
            raise DataFormatError(
                qrels_file, line_no, "corpus-id",
                f"document {parts[1]!r} is not in corpus.jsonl "
                f"({len(missing_d)} judged documents missing in all)",
            )
    raise DataFormatError(qrels_file, None, None, "qrels ids absent from the corpus or queries")


@dataclass
class BeirDataset:
    """A loaded BEIR split: the whole corpus, the queries judged in the split, and their qrels."""

    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: Qrels
    folder: Path
    split: str


def load_beir(folder: str | Path, split: str = "test") -> BeirDataset:
    """Load and cross-check a BEIR folder; keep only the queries judged in ``split``.

    Raises:
        FileNotFoundError: the folder, a file or the split is missing (the error lists splits).
        DataFormatError: any malformed or inconsistent line, by file, line and field.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder (expected a BEIR dataset folder)")
    qrels_file = qrels_path(folder, split)
    corpus = load_corpus(folder)
    queries = load_queries(folder)
    qrels = load_qrels(qrels_file)
    check_qrels(qrels, qrels_file, queries, corpus)
    judged = {qid: queries[qid] for qid in queries if qid in qrels}
    return BeirDataset(corpus, judged, qrels, folder, split)
