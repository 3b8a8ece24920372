"""What a collection is fed: documents from jsonl files, BEIR folders and folders of text files,
checked before anything is written.

- a ``.jsonl`` (or ``.jsonl.gz``) file: one ``{"id", "text", "title"?, "metadata"?}`` per line;
- a BEIR folder (it has ``corpus.jsonl``): its corpus, ``_id`` / ``title`` / ``text`` /
  ``metadata``;
- any other folder: every ``.txt`` and ``.md`` file below it, id = the path relative to the
  folder (``/`` separated), text = the file's content, metadata ``{"path", "mtime"}``.

Rules every document must pass (:func:`check_document`): the id is a non-empty string without
whitespace or control characters (it becomes a TREC run column and a URL path segment); text
and title are strings; metadata maps string keys to strings, finite numbers, booleans or lists
of those.
"""

from __future__ import annotations

import math
import os
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ragsift.errors import DataFormatError
from ragsift.types import Document

TEXT_SUFFIXES = (".txt", ".md")
Where = tuple[str, int | None]


def id_problem(doc_id: Any) -> str | None:
    """Why ``doc_id`` cannot be a document id, or None when it can."""
    if not isinstance(doc_id, str):
        return f"expected a string id, got {type(doc_id).__name__}"
    if not doc_id:
        return "empty id"
    for char in doc_id:
        if char.isspace() or unicodedata.category(char)[0] == "C":
            return f"id {doc_id!r} contains whitespace or a control character ({char!r})"
    return None


def _has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone UTF-16 surrogate (JSON allows ``"\\ud800"``; UTF-8 cannot
    store it)."""
    return any("\ud800" <= char <= "\udfff" for char in text)


def _scalar_ok(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return not _has_surrogate(value)
    return isinstance(value, (int, bool))


def metadata_problem(metadata: Any) -> tuple[str | None, str] | None:
    """``(key, reason)`` when ``metadata`` is not a valid metadata dict, else None."""
    if not isinstance(metadata, Mapping):
        return None, f"expected an object, got {type(metadata).__name__}"
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or _has_surrogate(key):
            return repr(key), "metadata keys must be non-empty strings of valid Unicode"
        if isinstance(value, list):
            if not all(_scalar_ok(v) for v in value):
                return key, "a list may hold only strings, finite numbers and booleans"
        elif not _scalar_ok(value):
            return key, (f"{value!r} is not a string, finite number, boolean or list of "
                         "those (strings of valid Unicode)")
    return None


def check_document(doc: Document, where: Where = ("<documents>", None)) -> Document:
    """``doc`` if it passes the module's rules, else :class:`DataFormatError` at ``where``
    (a file and line)."""
    path, line = where
    problem = id_problem(doc.id)
    if problem:
        raise DataFormatError(path, line, "id", problem)
    for name in ("text", "title"):
        value = getattr(doc, name)
        if not isinstance(value, str):
            raise DataFormatError(path, line, name, f"expected a string, got "
                                                    f"{type(value).__name__}")
        if _has_surrogate(value):
            raise DataFormatError(path, line, name, "holds a lone surrogate (not valid "
                                                    "Unicode text)")
    found = metadata_problem(doc.metadata)
    if found:
        key, reason = found
        raise DataFormatError(path, line, f"metadata.{key}" if key else "metadata", reason)
    return doc


def document_from_row(row: Mapping[str, Any], where: Where) -> Document:
    """A document from a ``{"id", "text", "title"?, "metadata"?}`` mapping (``_id`` is
    accepted for ``id``, as in BEIR); unknown keys are refused."""
    path, line = where
    known = {"id", "_id", "text", "title", "metadata"}
    unknown = sorted(set(row) - known)
    if unknown:
        raise DataFormatError(path, line, unknown[0], f"unknown field; known: {sorted(known)}")
    key = "id" if "id" in row else "_id"
    if key not in row:
        raise DataFormatError(path, line, "id", "missing field")
    if "text" not in row:
        raise DataFormatError(path, line, "text", "missing field")
    metadata = row.get("metadata")
    doc = Document(row[key], row["text"], row.get("title") or "",
                   {} if metadata is None else metadata)
    if not isinstance(doc.metadata, Mapping):
        raise DataFormatError(path, line, "metadata",
                              f"expected an object, got {type(doc.metadata).__name__}")
    return check_document(doc, where)


def _jsonl_documents(path: Path) -> Iterator[tuple[Document, Where]]:
    from ragsift.data.jsonl import read_jsonl

    for line, row in read_jsonl(path):
        where = (str(path), line)
        yield document_from_row(row, where), where


def _beir_documents(folder: Path) -> Iterator[tuple[Document, Where]]:
    from ragsift.data.beir import iter_corpus

    for number, doc in enumerate(iter_corpus(folder), start=1):
        where = (str(folder / "corpus.jsonl"), number)
        yield check_document(doc, where), where


def _text_documents(folder: Path) -> Iterator[tuple[Document, Where]]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in TEXT_SUFFIXES
                   and p.is_file() and not any(part.startswith(".") for part in
                                               p.relative_to(folder).parts))
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DataFormatError(file, None, None,
                                  f"not UTF-8 text (byte {exc.start})") from None
        rel = file.relative_to(folder).as_posix()
        meta = {"path": rel, "mtime": os.stat(file).st_mtime}
        where = (str(file), None)
        yield check_document(Document(rel, text, "", meta), where), where


def read_documents(source: str | os.PathLike[str]) -> Iterator[tuple[Document, Where]]:
    """``(document, (file, line))`` for every document of ``source`` (see the module doc)."""
    path = Path(source)
    if path.is_dir():
        if any((path / name).is_file() for name in ("corpus.jsonl", "corpus.jsonl.gz")):
            return _beir_documents(path)
        return _text_documents(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        return _jsonl_documents(path)
    raise DataFormatError(path, None, None, "expected a .jsonl file, a BEIR folder or a folder "
                                            "of .txt/.md files")


def coerce_documents(docs: Iterable[Document | Mapping[str, Any]]) -> list[Document]:
    """Python-side input (Documents or row dicts) as checked documents; a duplicate id in one
    batch is refused, naming both positions."""
    out: list[Document] = []
    seen: dict[str, int] = {}
    for number, doc in enumerate(docs, start=1):
        where: Where = ("<documents>", number)
        doc = (check_document(doc, where) if isinstance(doc, Document)
               else document_from_row(doc, where))
        if doc.id in seen:
            raise DataFormatError(where[0], number, "id", f"duplicate id {doc.id!r} (also "
                                                          f"document {seen[doc.id]})")
        seen[doc.id] = number
        out.append(doc)
    return out


def load_sources(sources: Iterable[str | os.PathLike[str]]) -> list[Document]:
    """Every document of ``sources``, all checked before any is returned; a duplicate id is
    refused naming both places."""
    out: list[Document] = []
    seen: dict[str, Where] = {}
    for source in sources:
        for doc, where in read_documents(source):
            if doc.id in seen:
                first_path, first_line = seen[doc.id]
                also = first_path + (f", line {first_line}" if first_line else "")
                raise DataFormatError(where[0], where[1], "id",
                                      f"duplicate id {doc.id!r} (also in {also})")
            seen[doc.id] = where
            out.append(doc)
    return out


__all__ = ["check_document", "coerce_documents", "document_from_row", "id_problem",
           "load_sources", "metadata_problem", "read_documents"]
