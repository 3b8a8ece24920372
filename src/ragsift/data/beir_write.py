"""Writing a :class:`~ragsift.data.beir.BeirDataset` back to a BEIR folder, atomically.

The folder holds ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` (with the BEIR
header ``query-id  corpus-id  score``), so any BEIR tool can read it, and
:func:`ragsift.data.beir.load_beir` loads it back equal to what was written.

Example:
    >>> from ragsift.data.beir import load_beir
    >>> folder = write_beir(dataset, "out/my-task")  # doctest: +SKIP
    >>> load_beir(folder, dataset.split).corpus == dataset.corpus  # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from ragsift.atomic import atomic_dir
from ragsift.data.beir import BeirDataset

__all__ = ["write_beir"]

logger = logging.getLogger(__name__)

_RESERVED = ("_id", "text", "title")
_BAD_ID_CHARS = ("\t", "\n", "\r")


def _check_id(kind: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{kind} id {value!r} is not a non-empty string")
    if any(c in value for c in _BAD_ID_CHARS):
        raise ValueError(f"{kind} id {value!r} contains a tab or line break (breaks qrels tsv)")


def _check(dataset: BeirDataset) -> None:
    """Raise ValueError for anything that would not load back identically."""
    split = dataset.split
    if not split or split != Path(split).name or split in (".", ".."):
        raise ValueError(f"split {split!r} is not a plain file name")
    for doc_id, doc in dataset.corpus.items():
        _check_id("document", doc_id)
        if doc.id != doc_id:
            raise ValueError(f"corpus key {doc_id!r} holds a Document with id {doc.id!r}")
        clash = [k for k in doc.metadata if k in _RESERVED]
        if clash:
            raise ValueError(
                f"document {doc_id!r}: metadata keys {clash} clash with BEIR's reserved fields"
            )
    for qid in dataset.queries:
        _check_id("query", qid)
    for qid, judged in dataset.qrels.items():
        if qid not in dataset.queries:
            raise ValueError(f"qrels query {qid!r} is not among the dataset's queries")
        for doc_id, rel in judged.items():
            if doc_id not in dataset.corpus:
                raise ValueError(f"qrels document {doc_id!r} (query {qid!r}) is not in the corpus")
            if isinstance(rel, bool) or not isinstance(rel, int):
                raise ValueError(f"relevance of ({qid!r}, {doc_id!r}) is not an int: {rel!r}")


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(line)
        _sync(handle)


def _sync(handle: IO[str]) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _json(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def write_beir(dataset: BeirDataset, folder: str | Path) -> Path:
    """Write ``dataset`` as a BEIR folder at ``folder``, replacing it atomically; return the folder.

    Writes ``corpus.jsonl`` (``_id``, ``title``, ``text`` and the metadata as extra fields),
    ``queries.jsonl`` (every query of the dataset, judged or not) and ``qrels/<split>.tsv``. An
    existing folder is replaced whole, only once the new one is complete.

    Raises:
        ValueError: an id with a tab or line break, metadata named ``_id``/``text``/``title``, a
            qrels id absent from the queries or corpus, a non-integer relevance, an odd split.
        TypeError: metadata that JSON cannot encode.

    Example:
        >>> write_beir(build_docstring_task(), "docstrings")  # doctest: +SKIP
        PosixPath('docstrings')
    """
    _check(dataset)
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        _write_lines(
            tmp / "corpus.jsonl",
            (
                _json({"_id": doc_id, "title": doc.title, "text": doc.text, **doc.metadata})
                for doc_id, doc in dataset.corpus.items()
            ),
        )
        _write_lines(
            tmp / "queries.jsonl",
            (_json({"_id": qid, "text": text}) for qid, text in dataset.queries.items()),
        )
        (tmp / "qrels").mkdir()
        rows = (
            f"{qid}\t{doc_id}\t{rel}\n"
            for qid, judged in dataset.qrels.items()
            for doc_id, rel in judged.items()
        )
        _write_lines(tmp / "qrels" / f"{dataset.split}.tsv", _header_then(rows))
    logger.info(
        "wrote BEIR folder %s: %d documents, %d queries, split %s",
        folder, len(dataset.corpus), len(dataset.queries), dataset.split,
    )
    return folder


def _header_then(rows: Iterable[str]) -> Iterable[str]:
    yield "query-id\tcorpus-id\tscore\n"
    yield from rows
