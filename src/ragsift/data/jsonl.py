"""Line-by-line reading of jsonl files with errors that name the file, line and field.

Each line is decoded strictly (:mod:`ragsift.data.lines`) and parsed as standard JSON: ``NaN``,
``Infinity``, numbers beyond the float range, integers longer than Python converts (4,300
digits) and values nested deeper than :data:`MAX_DEPTH` are errors naming the field, never
values that travel on silently or tracebacks without a file.
"""

from __future__ import annotations

import gzip
import json
import math
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ragsift.data.checks import check_finite, check_id, is_number
from ragsift.data.lines import check_input_file, iter_lines
from ragsift.errors import DataFormatError

MAX_DEPTH = 64
_MAX_INT_DIGITS = min(sys.get_int_max_str_digits() or 4300, 4300)


def open_text(path: str | Path) -> IO[str]:
    """Open a text file for reading, transparently decompressing ``.gz``.

    Prefer :func:`ragsift.data.lines.iter_lines`, whose decoding errors name the line.
    """
    path = check_input_file(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


class _Refused:
    """A JSON value that the parser hooks refused, with the reason; located after parsing."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


_refusals = threading.local()


def _refuse(reason: str) -> _Refused:
    """Record (for the line being parsed in this thread) and return a refused value."""
    refused = _Refused(reason)
    _refusals.found.append(refused)
    return refused


def _parse_int(digits: str) -> int | _Refused:
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        return _refuse(f"an integer with {len(digits.lstrip('-'))} digits is out of range")
    return int(digits)


def _parse_float(number: str) -> float | _Refused:
    value = float(number)
    return value if math.isfinite(value) else _refuse(f"{number} is out of the float range")


def _parse_constant(name: str) -> _Refused:
    return _refuse(f"{name} is not valid JSON; write a finite number or null")


_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_float=_parse_float,
                            parse_constant=_parse_constant)


def parse_json_line(text: str, path: str | Path, line: int) -> Any:
    """The JSON value of one line of ``path``.

    Raises:
        DataFormatError: invalid JSON, NaN/Infinity, an out-of-range number or too deep nesting;
            the field is named when the value sits inside an object.
    """
    _refusals.found = []
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, line, None,
                              f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise DataFormatError(path, line, _deep_key(text), f"JSON nested more than "
                              f"{MAX_DEPTH} levels deep") from None
    if _refusals.found:
        first = _refusals.found[0]
        raise DataFormatError(path, line, _locate(value, first), first.reason)
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise DataFormatError(path, line, _deep_key(text),
                              f"JSON nested more than {MAX_DEPTH} levels deep")
    return value


def _children(value: Any, where: str) -> list[tuple[str, Any]]:
    """The (field path, child) pairs of a JSON container (none for a scalar)."""
    if isinstance(value, dict):
        return [(f"{where}.{key}" if where else str(key), child) for key, child in value.items()]
    if isinstance(value, list):
        return [(f"{where}[{i}]", child) for i, child in enumerate(value)]
    return []


def _locate(value: Any, target: object) -> str | None:
    """The field path (``scores[2]``, ``metadata.year``) of ``target`` inside ``value``."""
    stack = [("", value)]
    while stack:
        where, node = stack.pop()
        if node is target:
            return where or None
        stack.extend(_children(node, where))
    return None


def _depth(value: Any) -> int:
    """How deeply JSON containers nest in ``value`` (a scalar: 0); iterative."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in
                         (node.values() if isinstance(node, dict) else node))
    return deepest


def _deep_key(text: str) -> str | None:
    """The top-level key of a JSON object text under which nesting passes :data:`MAX_DEPTH`."""
    depth, key, in_string, escaped, start = 0, None, False, False, 0
    for i, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
                if depth == 1:
                    key = text[start + 1:i]
        elif char == '"':
            in_string, start = True, i
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return key if text.lstrip().startswith("{") else None
        elif char in "]}":
            depth -= 1
    return None


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line; streams, never loads the file.

    Raises:
        DataFormatError: a line is not valid UTF-8, not valid JSON or not a JSON object.
    """
    for line_no, text in iter_lines(path):
        if not text.strip():
            continue
        row = parse_json_line(text, path, line_no)
        if not isinstance(row, dict):
            raise DataFormatError(
                path, line_no, None, f"expected a JSON object, got {_json_type(row)}"
            )
        yield line_no, row


def field_id(row: dict[str, Any], name: str, path: str | Path, line: int) -> str:
    """A required id field: a string without whitespace or control characters (integers are
    accepted and turned into strings)."""
    if name not in row:
        raise DataFormatError(path, line, name, "missing field")
    return _as_id(row[name], path, line, name)


def optional_id(row: dict[str, Any], name: str, path: str | Path, line: int) -> str | None:
    """An optional id field (absent or null: ``None``), checked as :func:`field_id`."""
    value = row.get(name)
    return None if value is None else _as_id(value, path, line, name)


def _as_id(value: Any, path: str | Path, line: int, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataFormatError(path, line, name, f"expected a string id, got {_json_type(value)}")
    return check_id(str(value), path, line, name)


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
        raise DataFormatError(path, line, name, f"expected a string, got {_json_type(value)}")
    return value


def field_list(
    row: dict[str, Any], name: str, path: str | Path, line: int, item: type | tuple[type, ...]
) -> list:
    """A list field whose items are all of type ``item`` (``None`` when absent or null).

    Numbers (``item`` int or float) must be finite; ``bool`` is never a number.
    """
    value = row.get(name)
    if value is None:
        return None  # type: ignore[return-value]
    if not isinstance(value, list):
        raise DataFormatError(path, line, name, f"expected a list, got {_json_type(value)}")
    for i, element in enumerate(value):
        if isinstance(element, bool) or not isinstance(element, item):
            raise DataFormatError(
                path, line, f"{name}[{i}]",
                f"expected {_type_name(item)}, got {_json_type(element)}",
            )
        if is_number(element):
            _finite(element, path, line, f"{name}[{i}]")
    return value


def field_numbers(row: dict[str, Any], name: str, path: str | Path,
                  line: int) -> list[float] | None:
    """A list of finite numbers, as floats (``None`` when absent or null)."""
    values = field_list(row, name, path, line, (int, float))
    return None if values is None else [float(v) for v in values]


def field_id_list(row: dict[str, Any], name: str, path: str | Path,
                  line: int) -> list[str] | None:
    """A list of ids, each checked as :func:`field_id` (``None`` when absent or null)."""
    values = field_list(row, name, path, line, str)
    if values is None:
        return None
    return [check_id(v, path, line, f"{name}[{i}]") for i, v in enumerate(values)]


def _finite(value: int | float, path: str | Path, line: int, field: str) -> float:
    try:
        number = float(value)
    except OverflowError:
        raise DataFormatError(path, line, field, "number out of the float range") from None
    return check_finite(number, path, line, field)


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
    names = {"str": "a string", "int": "an integer", "float": "a number", "dict": "an object",
             "list": "a list"}
    items = item if isinstance(item, tuple) else (item,)
    if set(items) == {int, float}:
        return "a number"
    return " or ".join(names.get(t.__name__, t.__name__) for t in items)


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    names = {str: "a string", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)
