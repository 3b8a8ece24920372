"""Metadata filters: equality, ``in`` lists and numeric ranges, combined with AND.

A :class:`Filter` is a conjunction of :class:`Condition` s on document metadata fields. It is
built from any of three spellings:

- command-line expressions: ``"year>=2020"``, ``"source=pubmed"``, ``"lang in [en, de]"``;
- a dict: ``{"source": "pubmed", "lang": ["en", "de"], "year": {">=": 2020, "<": 2024}}``
  (a scalar means equality, a list means ``in``, a dict holds range operators);
- a list of either, all of which must hold.

Values in expressions are read as JSON literals when they are one (``2020``, ``1.5``,
``true``, ``"2020"``) and as plain strings otherwise (``pubmed``); quote a number to compare it
as a string.

Semantics (the same in every engine: :meth:`Filter.mask` over columns in memory, the faiss ID
selector built from it, and the native filters of Milvus and Qdrant):

- ``field = v``: the stored value equals ``v`` with the same kind (strings with strings, booleans
  with booleans, numbers with numbers, ``1 == 1.0``); a stored list matches when one of its
  elements does.
- ``field in [v1, v2, ...]``: ``field = v1`` or ``field = v2`` ...
- ``field > v``, ``>=``, ``<``, ``<=`` (``v`` a number): the stored value is a number (not a
  boolean) that compares so; a stored list matches when one of its numbers does.
- A document without the field never matches a condition on it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ragsift.errors import RagsiftError

Op = Literal["eq", "in", "gt", "ge", "lt", "le"]
Scalar = str | int | float | bool
RANGE_OPS: dict[str, Op] = {">=": "ge", "<=": "le", ">": "gt", "<": "lt"}
_DICT_OPS: dict[str, Op] = {**RANGE_OPS, "=": "eq", "==": "eq", "eq": "eq", "in": "in",
                            "gt": "gt", "gte": "ge", "ge": "ge", "lt": "lt", "lte": "le",
                            "le": "le"}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
}
FIELD_PATTERN = r"[A-Za-z_][A-Za-z0-9_\-]*"
_EXPRESSION = re.compile(
    rf"^\s*(?P<field>{FIELD_PATTERN})\s*(?:(?P<op>>=|<=|==|=|>|<)\s*(?P<value>.*?)"
    rf"|\s+in\s+(?P<values>[\[(].*[\])]))\s*$", re.DOTALL)


class FilterError(RagsiftError, ValueError):
    """A filter that cannot be parsed or applied; the message names the expression."""


def _scalar_kind(value: Any) -> str | None:
    """``"bool"``, ``"number"``, ``"str"`` or None (not a filterable scalar)."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    if isinstance(value, str):
        return "str"
    return None


def scalar_equal(stored: Any, wanted: Scalar) -> bool:
    """Equality of one stored scalar and a filter value, kinds kept apart (``True != 1``)."""
    kind = _scalar_kind(stored)
    return kind is not None and kind == _scalar_kind(wanted) and stored == wanted


@dataclass(frozen=True)
class Condition:
    """One test on one metadata field: ``op`` is ``eq``, ``in``, ``gt``, ``ge``, ``lt`` or
    ``le``; ``value`` is a scalar, or a tuple of scalars for ``in``."""

    field: str
    op: Op
    value: Scalar | tuple[Scalar, ...]

    def __post_init__(self) -> None:
        if not re.fullmatch(FIELD_PATTERN, self.field):
            raise FilterError(f"filter field {self.field!r}: use letters, digits, _ and -")
        values = self.value if self.op == "in" else (self.value,)
        if self.op == "in" and (not isinstance(self.value, tuple) or not self.value):
            raise FilterError(f"filter on {self.field!r}: 'in' needs a non-empty list")
        for value in values:
            kind = _scalar_kind(value)
            if kind is None:
                raise FilterError(f"filter on {self.field!r}: {value!r} is not a string, "
                                  "number or boolean")
            if kind == "number" and not math.isfinite(value):
                raise FilterError(f"filter on {self.field!r}: {value!r} is not finite")
            if self.op in _COMPARE and kind != "number":
                raise FilterError(f"filter on {self.field!r}: {self.op} needs a number, "
                                  f"got {value!r}")

    @property
    def values(self) -> tuple[Scalar, ...]:
        """The values an ``eq`` / ``in`` condition accepts (one for ``eq``)."""
        return self.value if isinstance(self.value, tuple) else (self.value,)

    def matches(self, stored: Any) -> bool:
        """Whether one document's value of the field (``None`` when missing) passes."""
        if isinstance(stored, (list, tuple)):
            return any(self.matches(item) for item in stored)
        if self.op in _COMPARE:
            return _scalar_kind(stored) == "number" and bool(_COMPARE[self.op](stored,
                                                                                 self.value))
        return any(scalar_equal(stored, v) for v in self.values)

    def __str__(self) -> str:
        if self.op == "in":
            return f"{self.field} in [{', '.join(json.dumps(v) for v in self.values)}]"
        symbol = {"eq": "=", **{v: k for k, v in RANGE_OPS.items()}}[self.op]
        return f"{self.field}{symbol}{json.dumps(self.value)}"


class Column:
    """One metadata field over ``n`` rows, split by kind for vectorised tests.

    ``numbers`` (float64, NaN where not a number), ``strings`` (object, None where not a
    string), ``bools`` (int8: 1, 0, or -1 where not a boolean) and ``lists`` (row -> list, for
    rows whose value is a list; those rows hold no scalar).
    """

    def __init__(self, values: Sequence[Any]) -> None:
        n = len(values)
        self.numbers = np.full(n, np.nan)
        self.strings = np.full(n, None, dtype=object)
        self.bools = np.full(n, -1, dtype=np.int8)
        self.lists: dict[int, list] = {}
        for row, value in enumerate(values):
            kind = _scalar_kind(value)
            if kind == "number":
                self.numbers[row] = value
            elif kind == "str":
                self.strings[row] = value
            elif kind == "bool":
                self.bools[row] = int(value)
            elif isinstance(value, (list, tuple)):
                self.lists[row] = list(value)

    def mask(self, condition: Condition) -> np.ndarray:
        """Rows whose value passes ``condition``."""
        if condition.op in _COMPARE:
            with np.errstate(invalid="ignore"):
                out = _COMPARE[condition.op](self.numbers, float(condition.value))
        else:
            out = np.zeros(len(self.numbers), dtype=bool)
            for value in condition.values:
                kind = _scalar_kind(value)
                if kind == "number":
                    out |= self.numbers == value
                elif kind == "str":
                    out |= self.strings == value
                else:
                    out |= self.bools == int(value)
        for row, items in self.lists.items():
            out[row] = condition.matches(items)
        return out


@dataclass(frozen=True)
class Filter:
    """A conjunction of conditions; the empty filter keeps everything.

    Example:
        >>> f = Filter.parse(["year>=2020", "source in [pubmed, arxiv]"])
        >>> f.matches({"year": 2021, "source": "pubmed"}), f.matches({"year": 2019})
        (True, False)
        >>> str(Filter.parse({"lang": ["en", "de"]}))
        'lang in ["en", "de"]'
    """

    conditions: tuple[Condition, ...] = ()

    @classmethod
    def parse(cls, spec: Filter | str | Mapping[str, Any] | Iterable[Any] | None) -> Filter:
        """A filter from an expression, a dict, a list of those, a Filter or None."""
        if spec is None:
            return cls()
        if isinstance(spec, Filter):
            return spec
        if isinstance(spec, str):
            return cls((parse_expression(spec),))
        if isinstance(spec, Mapping):
            return cls(tuple(c for field, v in spec.items() for c in _from_dict(field, v)))
        if isinstance(spec, Iterable):
            return cls(tuple(c for part in spec for c in cls.parse(part).conditions))
        raise FilterError(f"cannot read a filter from {type(spec).__name__}")

    def __bool__(self) -> bool:
        return bool(self.conditions)

    @property
    def fields(self) -> list[str]:
        """The fields the conditions test, each once."""
        return list(dict.fromkeys(c.field for c in self.conditions))

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """Whether a document with ``metadata`` passes every condition."""
        return all(c.matches(metadata.get(c.field)) for c in self.conditions)

    def mask(self, column: Callable[[str], Column], n: int) -> np.ndarray:
        """The rows (of ``n``) that pass, given ``column(field)`` for each field tested."""
        out = np.ones(n, dtype=bool)
        for condition in self.conditions:
            out &= column(condition.field).mask(condition)
        return out

    def __str__(self) -> str:
        return " AND ".join(str(c) for c in self.conditions) or "(no filter)"


def _from_dict(field: str, value: Any) -> list[Condition]:
    if isinstance(value, Mapping):
        conditions = []
        for op, operand in value.items():
            if op not in _DICT_OPS:
                raise FilterError(f"filter on {field!r}: unknown operator {op!r}; use one of "
                                  f"{sorted(_DICT_OPS)}")
            conditions += _from_dict(field, operand) if _DICT_OPS[op] in ("eq", "in") else [
                Condition(field, _DICT_OPS[op], operand)]
        return conditions
    if isinstance(value, (list, tuple)):
        return [Condition(field, "in", tuple(value))]
    return [Condition(field, "eq", value)]


def _literal(text: str) -> Scalar:
    text = text.strip()
    if not text:
        raise FilterError("empty value")
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, (str, bool, int, float)):
        return value
    raise FilterError(f"{text!r} is not a string, number or boolean")


def _split_list(body: str) -> list[str]:
    """Comma-separated items of a list body, commas inside double quotes kept."""
    items, current, quoted = [], [], False
    for char in body:
        if char == '"' and (not current or current[-1] != "\\"):
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return items


def parse_expression(text: str) -> Condition:
    """One condition from ``FIELD OP VALUE`` (``=``, ``==``, ``>=``, ``<=``, ``>``, ``<``) or
    ``FIELD in [V1, V2]``.

    Example:
        >>> parse_expression("year>=2020")
        Condition(field='year', op='ge', value=2020)
        >>> parse_expression('id in [1, "x, y"]').value
        (1, 'x, y')
    """
    match = _EXPRESSION.match(text)
    if match is None:
        raise FilterError(f"cannot read filter {text!r}; write FIELD=VALUE, FIELD>=NUMBER "
                          "(also >, <, <=) or FIELD in [V1, V2]")
    field = match["field"]
    try:
        if match["values"] is not None:
            items = [_literal(v) for v in _split_list(match["values"][1:-1])]
            return Condition(field, "in", tuple(items))
        op: Op = "eq" if match["op"] in ("=", "==") else RANGE_OPS[match["op"]]
        return Condition(field, op, _literal(match["value"]))
    except FilterError as exc:
        raise FilterError(f"filter {text!r}: {exc}") from None


__all__ = ["Column", "Condition", "Filter", "FilterError", "parse_expression", "scalar_equal"]
