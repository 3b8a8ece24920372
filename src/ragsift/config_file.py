"""YAML config files parsed into dataclasses, with located errors.

A config file holds the fields of a dataclass as top-level keys. Values are checked, never
coerced: a field typed ``int`` takes a YAML integer (not ``true``, ``2.5`` or ``null``), a
``float`` takes a finite number, a ``str`` a string, a ``list[int]`` a list of integers, a
``Literal`` one of its choices. Numbers must also lie in the field's :class:`Range` (when the
caller gives one; integers within 32 bits unless their range says otherwise). The YAML itself
is read strictly: UTF-8 only, no duplicate keys, and no anchors or aliases (``&a`` / ``*a``),
which would let a few hundred bytes expand into gigabytes. Every error names the file, the line
and the key.

``Optional[X]`` (``X | None``) fields mean "not set" by ``None``: a YAML ``null``, or the key
left out when ``None`` is the default; on the command line ``null``, ``none`` (any case) or
nothing (``--set distill=``) sets them to ``None``. Each field may carry its help text in its
metadata (:func:`setting`), which :func:`fields_help` lists for ``--help`` and the docs.

Strings from the command line (``--set key=value``) are parsed into the field's type
(``"3e-5"`` -> float, ``"a,b"`` -> list, ``"true"`` -> bool) and checked the same way.
"""

from __future__ import annotations

import dataclasses
import math
import re
import textwrap
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from ragsift.data.lines import read_text
from ragsift.errors import DataFormatError, LocatedSettingError, SettingError

T = TypeVar("T")
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
_INT_TEXT = re.compile(r"[+-]?[0-9]{1,18}")
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_BOOL_TEXT = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_NONE_TEXT = {"", "none", "null"}
HELP = "help"  # the metadata key of a field's help text


def setting(default: Any = dataclasses.MISSING, help: str = "", *,
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with its ``help`` text in the metadata (read by :func:`fields_help`).

    Example:
        >>> @dataclass
        ... class Demo:
        ...     steps: int | None = setting(None, "optimizer steps (None: one epoch)")
        >>> fields_help(Demo)
        [('steps', 'int | None', 'null', 'optimizer steps (None: one epoch)')]
    """
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={HELP: help})


def fields_help(cls: type) -> list[tuple[str, str, str, str]]:
    """``(key, type, default, help)`` of every field of the dataclass ``cls``; a field that a
    subclass redeclares (a new default) keeps the help of the class that documented it."""
    hints = get_type_hints(cls)
    rows = []
    for item in dataclasses.fields(cls):
        text = next((f.metadata[HELP] for base in cls.__mro__
                     if dataclasses.is_dataclass(base)
                     for f in dataclasses.fields(base)
                     if f.name == item.name and f.metadata.get(HELP)), "")
        if item.default is not dataclasses.MISSING:
            default = _yaml_text(item.default)
        elif item.default_factory is not dataclasses.MISSING:
            default = _yaml_text(item.default_factory())
        else:
            default = "required"
        rows.append((item.name, _type_name(hints[item.name]), default, text))
    return rows


def help_lines(rows: list[tuple[str, str, str, str]], width: int = 96) -> list[str]:
    """:func:`fields_help` rows as ``--help`` lines: ``  key (type; default D): help``,
    wrapped to ``width`` columns with continuation lines indented."""
    lines = []
    for key, kind, default, text in rows:
        lines += textwrap.wrap(f"{key} ({kind}; default {default}): {text}", width,
                               break_on_hyphens=False, initial_indent="  ",
                               subsequent_indent="      ")
    return lines


def _yaml_text(value: Any) -> str:
    """``value`` as YAML writes it on one line (``null``, ``true``, ``'text'``, ``[1, 2]``)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix(
        "\n...").strip()


def _type_name(hint: Any) -> str:
    """``int``, ``float | None``, ``list[int]``, ``'kl' | 'margin-mse' | None`` ..."""
    origin = get_origin(hint)
    if origin is Literal:
        return " | ".join(repr(choice) for choice in get_args(hint))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(member) for member in get_args(hint))
    if origin is list:
        return f"list[{_type_name(get_args(hint)[0])}]"
    return "None" if hint is type(None) else getattr(hint, "__name__", str(hint))


@dataclass(frozen=True)
class Range:
    """Allowed values of a numeric field: ``low <= x <= high`` (``low < x`` when
    ``low_open``); ``None`` leaves that side open. Applies to each item of a list field."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def problem(self, value: float) -> str | None:
        """Why ``value`` is out of range, or ``None``."""
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return f"must be {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None and value > self.high:
            return f"must be <= {self.high:g}"
        return None


class StrictLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader without anchors, aliases or duplicate mapping keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Refuse ``*alias`` and ``&anchor`` before composing a node."""
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, f"YAML aliases (*{event.anchor}) are not allowed in ragsift "
                "configs; write the value out", event.start_mark)
        if getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None, None, f"YAML anchors (&{event.anchor}) are not allowed in ragsift "
                "configs; write the value out", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        """Refuse a key that appears twice in one mapping."""
        if isinstance(node, yaml.MappingNode):
            duplicate = _duplicate_key(node)
            if duplicate is not None:
                key_node, first = duplicate
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key_node.value!r} (first on line {first})",
                    key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _duplicate_key(node: yaml.MappingNode) -> tuple[yaml.Node, int] | None:
    """The second occurrence of a repeated scalar key of ``node`` and the line of the first."""
    seen: dict[tuple[str, str], int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        key = (key_node.tag, key_node.value)
        if key in seen:
            return key_node, seen[key]
        seen[key] = key_node.start_mark.line + 1
    return None


def load_dataclass(cls: type[T], path: str | Path | None = None,
                   overrides: dict[str, Any] | None = None, what: str = "config",
                   limits: Mapping[str, Range] | None = None) -> T:
    """An instance of ``cls`` from a YAML file (optional) with ``overrides`` applied (``None``
    values are ignored); ``limits`` gives the allowed range of numeric fields by name.

    Raises:
        DataFormatError: unreadable YAML, an unknown key, a value of the wrong type or out
            of range, or (as its subclass :class:`~ragsift.errors.LocatedSettingError`, a
            usage error) a :class:`~ragsift.errors.SettingError` of ``cls``'s own checks; the
            error names the file (or ``<command line>`` for a value set there, or with no
            file), line and key (the line of ``few_shot`` for ``few_shot[1]``).
    """
    values: dict[str, tuple[Any, int | None]] = {}
    if path is not None:
        values = _read_yaml(Path(path))
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = (value, None)
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, (value, line) in values.items():
        where = Path(path) if path is not None and line is not None else "<command line>"
        if key not in names:
            raise DataFormatError(where, line, key,
                                  f"unknown key for {what}; known: {sorted(names)}")
        checker = _Checker(where, line, (limits or {}).get(key), from_text=line is None)
        kwargs[key] = checker.check(value, hints[key], key)
    try:
        return cls(**kwargs)
    except SettingError as exc:
        base = exc.key.split("[", 1)[0]
        _, line = values.get(base, (None, None))
        from_file = path is not None and (line is not None or base not in values)
        raise LocatedSettingError(Path(path) if from_file else "<command line>", line,
                                  exc.key, exc.message) from None


def _read_yaml(path: Path) -> dict[str, tuple[Any, int | None]]:
    """Top-level keys of a YAML mapping with their values and 1-based line numbers."""
    node = _compose(path)
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise DataFormatError(path, node.start_mark.line + 1, None,
                              "expected a mapping of keys (key: value lines)")
    duplicate = _duplicate_key(node)
    if duplicate is not None:
        key_node, first = duplicate
        raise DataFormatError(path, key_node.start_mark.line + 1, str(key_node.value),
                              f"duplicate key (first on line {first}); keep one")
    out = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
            raise DataFormatError(path, line, None, "keys must be plain names")
        out[key_node.value] = (_construct(value_node, path, line, key_node.value), line)
    return out


def read_yaml(path: str | Path) -> Any:
    """The YAML document at ``path`` read with :class:`StrictLoader` (no anchors, aliases or
    duplicate keys), or None for an empty file; :class:`DataFormatError` names file and line."""
    path = Path(path)
    node = _compose(path)
    if node is None:
        return None
    return _construct(node, path, node.start_mark.line + 1, None)


def read_yaml_located(path: str | Path) -> tuple[Any, dict[str, int]]:
    """:func:`read_yaml`'s value and the 1-based line of every mapping key in it, by dotted
    path (``{"limits": 3, "limits.max_wait_ms": 4}``), so a validator of nested sections can
    name the line of the key it refuses (:func:`locate`)."""
    path = Path(path)
    node = _compose(path)
    if node is None:
        return None, {}
    lines: dict[str, int] = {}
    _key_lines(node, "", lines)
    return _construct(node, path, node.start_mark.line + 1, None), lines


def _key_lines(node: yaml.Node, prefix: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                name = prefix + str(key_node.value)
                lines[name] = key_node.start_mark.line + 1
                _key_lines(value_node, name + ".", lines)


def locate(error: DataFormatError, path: str | Path, lines: Mapping[str, int]
           ) -> DataFormatError:
    """``error`` with ``path`` and the line of its field (or of the nearest enclosing key that
    has one) from :func:`read_yaml_located`'s ``lines``.

    Example:
        >>> str(locate(DataFormatError("<config>", None, "limits.x", "bad"), "s.yaml",
        ...            {"limits": 3}))
        's.yaml, line 3, field "limits.x": bad'
    """
    field = error.field or ""
    parts = field.split(".")
    line = next((lines[key] for key in (".".join(parts[:n]) for n in range(len(parts), 0, -1))
                 if key in lines), error.line)
    return DataFormatError(path, line, error.field, error.message)


def _compose(path: Path) -> yaml.Node | None:
    """The node tree of the YAML file at ``path``, read with :class:`StrictLoader`."""
    text = read_text(path)
    try:
        return yaml.compose(text, Loader=StrictLoader)
    except yaml.YAMLError as exc:
        raise DataFormatError(path, _yaml_line(exc), None, f"invalid YAML ({_yaml_problem(exc)})"
                              ) from None
    except RecursionError:
        raise DataFormatError(path, None, None, "invalid YAML (nested too deeply)") from None


def _construct(node: yaml.Node, path: Path, line: int, key: str | None) -> Any:
    """The Python value of one top-level value node, with construction errors located."""
    try:
        return StrictLoader("").construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise DataFormatError(path, _yaml_line(exc) or line, key,
                              f"invalid YAML ({_yaml_problem(exc)})") from None
    except (ValueError, OverflowError, RecursionError) as exc:
        problem = "integer too long" if "digits" in str(exc) else str(exc) or type(exc).__name__
        raise DataFormatError(path, line, key, f"unreadable value ({problem})") from None


def _yaml_line(exc: yaml.YAMLError) -> int | None:
    mark = getattr(exc, "problem_mark", None)
    return mark.line + 1 if mark is not None else None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    return str(getattr(exc, "problem", None) or exc)


@dataclass
class _Checker:
    """Checks one key's value against its type hint and range (see the module docstring)."""

    where: Path | str
    line: int | None
    limit: Range | None
    from_text: bool

    def check(self, value: Any, hint: Any, key: str) -> Any:
        """``value`` when it fits ``hint`` (parsed first when it is command-line text)."""
        try:
            return self._check(value, hint, key)
        except _Bad as bad:
            raise DataFormatError(self.where, self.line, bad.key,
                                  f"{bad.message} (got {_show(bad.value)})") from None

    def _check(self, value: Any, hint: Any, key: str) -> Any:
        origin = get_origin(hint)
        if origin is Literal:
            return self._literal(value, get_args(hint), key)
        if origin in (Union, types.UnionType):
            return self._union(value, get_args(hint), key)
        if origin is list:
            return self._list(value, get_args(hint)[0], key)
        if hint is bool:
            return self._bool(value, key)
        if hint is int:
            return self._int(value, key)
        if hint is float:
            return self._float(value, key)
        if hint is str:
            if not isinstance(value, str):
                hint = "remove the key to keep the default" if value is None else "quote it"
                raise _Bad(key, value, f"expected a string ({hint})")
            return value
        raise TypeError(f"config field {key!r}: unsupported type {hint!r}")

    def _literal(self, value: Any, choices: tuple, key: str) -> Any:
        for choice in choices:
            if type(value) is type(choice) and value == choice:
                return value
        raise _Bad(key, value, f"must be one of {list(choices)}")

    def _union(self, value: Any, members: tuple, key: str) -> Any:
        if type(None) in members and (value is None or (
                self.from_text and isinstance(value, str) and value.strip().lower() in _NONE_TEXT)):
            return None
        problems = []
        for member in members:
            if member is type(None):
                continue
            try:
                return self._check(value, member, key)
            except _Bad as bad:
                problems.append(bad.message)
        raise _Bad(key, value, " or ".join(problems))

    def _list(self, value: Any, item: Any, key: str) -> list:
        if self.from_text and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise _Bad(key, value, "expected a list, e.g. [1, 2]")
        return [self._check(v, item, f"{key}[{i}]") for i, v in enumerate(value)]

    def _bool(self, value: Any, key: str) -> bool:
        if self.from_text and isinstance(value, str) and value.lower() in _BOOL_TEXT:
            return _BOOL_TEXT[value.lower()]
        if not isinstance(value, bool):
            raise _Bad(key, value, "must be true or false")
        return value

    def _int(self, value: Any, key: str) -> int:
        if self.from_text and isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(key, value, "expected an integer")
        if self.limit is None or self.limit.high is None:  # no upper bound of its own
            self._in_range(value, Range(INT_MIN, INT_MAX), key)
        return self._in_range(value, self.limit, key)

    def _float(self, value: Any, key: str) -> float:
        if self.from_text and isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Bad(key, value, "expected a number")
        try:
            number = float(value)
        except OverflowError:
            raise _Bad(key, value, "number out of range") from None
        if not math.isfinite(number):
            raise _Bad(key, value, "expected a finite number")
        return self._in_range(number, self.limit, key)

    def _in_range(self, value: T, limit: Range | None, key: str) -> T:
        problem = limit.problem(value) if limit is not None else None  # type: ignore[arg-type]
        if problem is not None:
            raise _Bad(key, value, problem)
        return value


class _Bad(Exception):
    """A value that does not fit its field (turned into a located DataFormatError)."""

    def __init__(self, key: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.key, self.value, self.message = key, value, message


def _show(value: Any, limit: int = 60) -> str:
    """A short description of a config value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, int) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({type(value).__name__})"
