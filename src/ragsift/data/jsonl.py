"""Line-by-line reading of jsonl files with errors that name the file, line and field."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ragsift.errors import DataFormatError


def open_text(path: str | Path) -> IO[str]:
    """Open a text file for reading, transparently decompressing ``.gz``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line; streams, never loads the file.

    Raises:
        DataFormatError: a line is not valid JSON or not a JSON object.
    """
    with open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(path, line_no, None, f"invalid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataFormatError(
                    path, line_no, None, f"expected a JSON object, got {type(row).__name__}"
                )
            yield line_no, row


def field_id(row: dict[str, Any], name: str, path: str | Path, line: int) -> str:
    """A required id field: a non-empty string (integers are accepted and turned into strings)."""
    if name not in row:
        raise DataFormatError(path, line, name, "missing field")
    value = row[name]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataFormatError(path, line, name, f"expected a string id, got {type(value).__name__}")
    value = str(value)
    if not value.strip():
        raise DataFormatError(path, line, name, "empty id")
    return value


def field_str(
    row: dict[str, Any], name: str, path: str | Path, line: int, default: str | None = None
) -> str:
    """A string field; required unless ``default`` is given (used when the field is absent/null)."""
    value = row.get(name)
    if value is None:
        if default is not None:
            return default
        raise DataFormatError(path, line, name, "missing field")
    if not isinstance(value, str):
        raise DataFormatError(path, line, name, f"expected a string, got {type(value).__name__}")
    return value


def field_list(
    row: dict[str, Any], name: str, path: str | Path, line: int, item: type | tuple[type, ...]
) -> list:
    """A list field whose items are all of type ``item`` (``None`` when absent)."""
    value = row.get(name)
    if value is None:
        return None  # type: ignore[return-value]
    if not isinstance(value, list):
        raise DataFormatError(path, line, name, f"expected a list, got {type(value).__name__}")
    for i, element in enumerate(value):
        if isinstance(element, bool) or not isinstance(element, item):
            raise DataFormatError(
                path, line, f"{name}[{i}]",
                f"expected {_type_name(item)}, got {type(element).__name__}",
            )
    return value


def add_unique(
    table: dict[str, dict], qid: str, doc_id: str, value: Any, path: str | Path, line: int,
    field: str,
) -> None:
    """Set ``table[qid][doc_id] = value``; a (qid, doc_id) pair seen before is an error."""
    row = table.setdefault(qid, {})
    if doc_id in row:
        raise DataFormatError(path, line, field, f"({qid!r}, {doc_id!r}) appears twice")
    row[doc_id] = value


def _type_name(item: type | tuple[type, ...]) -> str:
    if isinstance(item, tuple):
        return " or ".join(t.__name__ for t in item)
    return item.__name__
