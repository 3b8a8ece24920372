"""Value checks shared by every reader: ids, relevance grades, scores and other numbers.

One place decides what a valid id, relevance or score is, so BEIR and TREC files, runs and
training rows accept and refuse the same things:

- an **id** is a non-empty string without whitespace or control/format characters (TREC files
  are split on whitespace, so such an id would corrupt every run written with it);
- a **relevance** grade is an integer in ``[-2**31, 2**31 - 1]``, written in ASCII digits; an
  integral decimal such as ``1.0`` is accepted, ``1.5``, ``1_0`` or ``١`` are not;
- a **score** is a finite number written in ASCII (no ``nan``, ``inf``, ``1_0``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from pathlib import Path
from typing import Any

from ragsift.errors import DataFormatError

RELEVANCE_MIN = -(2**31)
RELEVANCE_MAX = 2**31 - 1
_INTEGRAL = re.compile(r"[+-]?[0-9]+(?:\.0*)?")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_NUMBER_TEXT = 400  # characters; a longer "number" is garbage, not a score
_BAD_ID_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Zs", "Zl", "Zp"}


def id_problem(value: str) -> str | None:
    """Why ``value`` is not a usable id, or ``None`` when it is.

    Example:
        >>> id_problem("doc 1")
        "contains whitespace (' ' at position 4); ids must be one word"
    """
    if not value:
        return "empty id"
    if value.isascii() and value.isprintable() and " " not in value:
        return None  # the common case, decided without a loop
    for position, char in enumerate(value, start=1):
        if char.isspace() or unicodedata.category(char) in _BAD_ID_CATEGORIES:
            kind = "whitespace" if char.isspace() else "a control or invisible character"
            return (f"contains {kind} ({char!r} at position {position}); ids must be one "
                    f"word")
    return None


def check_id(value: str, path: str | Path, line: int | None, field: str) -> str:
    """``value`` when it is a valid id (see :func:`id_problem`), else a located error."""
    problem = id_problem(value)
    if problem is not None:
        raise DataFormatError(path, line, field, f"{problem}: {_short(value)}")
    return value


def parse_relevance(text: str, path: str | Path, line: int | None, field: str) -> int:
    """A relevance grade written as text (qrels files).

    Example:
        >>> parse_relevance("2.0", "qrels.tsv", 1, "score")
        2
    """
    if not _INTEGRAL.fullmatch(text):
        raise DataFormatError(path, line, field,
                              f"expected an integer relevance, got {_short(text)}")
    digits = text.split(".")[0]
    if len(digits.lstrip("+-").lstrip("0")) > 12:
        raise DataFormatError(path, line, field,
                              f"relevance {_short(text)} is out of range "
                              f"[{RELEVANCE_MIN}, {RELEVANCE_MAX}]")
    return check_relevance(int(digits), path, line, field)


def check_relevance(value: int, path: str | Path, line: int | None, field: str) -> int:
    """``value`` when it is within the relevance range pytrec_eval can hold."""
    if not RELEVANCE_MIN <= value <= RELEVANCE_MAX:
        raise DataFormatError(path, line, field,
                              f"relevance {_short(str(value))} is out of range "
                              f"[{RELEVANCE_MIN}, {RELEVANCE_MAX}]")
    return value


def parse_score(text: str, path: str | Path, line: int | None, field: str) -> float:
    """A finite score written as a decimal number in ASCII (runs).

    Example:
        >>> parse_score("1.5e-3", "run.trec", 1, "score")
        0.0015
    """
    if len(text) > _MAX_NUMBER_TEXT or not _DECIMAL.fullmatch(text):
        raise DataFormatError(path, line, field, f"not a number: {_short(text)}")
    return check_finite(float(text), path, line, field)


def parse_count(text: str, path: str | Path, line: int | None, field: str) -> int:
    """A non-negative integer written in ASCII digits (ranks)."""
    if len(text) > 18 or not text.isascii() or not text.isdigit():
        raise DataFormatError(path, line, field,
                              f"expected a non-negative integer, got {_short(text)}")
    return int(text)


def check_finite(value: float, path: str | Path, line: int | None, field: str) -> float:
    """``value`` when it is a finite number (not NaN or infinite)."""
    if not math.isfinite(value):
        raise DataFormatError(path, line, field, f"expected a finite number, got {value}")
    return value


def is_number(value: Any) -> bool:
    """Whether a decoded JSON/YAML value is a number (``bool`` is not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(text: str, limit: int = 40) -> str:
    """``repr`` of ``text``, cut to ``limit`` characters for error messages."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"
