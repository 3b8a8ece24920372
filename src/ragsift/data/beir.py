"""BEIR folders: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

Layout (https://github.com/beir-cellar/beir):

- ``corpus.jsonl``: one ``{"_id", "text", "title"?, ...}`` object a line; other fields become
  :attr:`Document.metadata`.
- ``queries.jsonl``: one ``{"_id", "text", ...}`` object a line.
- ``qrels/<split>.tsv``: ``query-id  corpus-id  score`` separated by tabs, with or without a header.

Every reader validates as it streams and raises :class:`~ragsift.errors.DataFormatError` naming
the file, line and field: malformed JSON, a missing field, a duplicate id, a non-integer score,
a qrels id absent from the corpus or the queries.

Example:
    >>> data = load_beir("path/to/scifact", split="test")   # doctest: +SKIP
    >>> len(data.corpus), len(data.queries), len(data.qrels)  # doctest: +SKIP
    (5183, 300, 300)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ragsift.data.jsonl import add_unique, field_id, field_str, open_text, read_jsonl
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


def load_qrels(path: str | Path) -> Qrels:
    """Relevance judgements from a BEIR qrels tsv (``query-id corpus-id score``, header optional).

    Returns ``{query id: {doc id: relevance}}``. A repeated (query, doc) pair is an error.
    """
    path = Path(path)
    qrels: Qrels = {}
    with open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").rstrip("\r").split("\t")
            if len(parts) == 1:
                parts = line.split()
            if len(parts) != 3:
                raise DataFormatError(
                    path, line_no, None, f"expected 3 tab-separated columns, got {len(parts)}"
                )
            qid, doc_id, score = (p.strip() for p in parts)
            try:
                relevance = int(score)
            except ValueError:
                try:
                    as_float = float(score)
                except ValueError:
                    if line_no == 1:  # a header such as "query-id corpus-id score"
                        continue
                    raise DataFormatError(
                        path, line_no, "score", f"expected an integer, got {score!r}"
                    ) from None
                if not as_float.is_integer():
                    raise DataFormatError(
                        path, line_no, "score", f"expected an integer, got {score!r}"
                    ) from None
                relevance = int(as_float)
            if not qid or not doc_id:
                field = "query-id" if not qid else "corpus-id"
                raise DataFormatError(path, line_no, field, "empty id")
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
    with open_text(qrels_file) as handle:
        for line_no, line in enumerate(handle, start=1):
            parts = line.split()
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
