"""YAML config files parsed into dataclasses, with located errors.

A config file holds the fields of a dataclass as top-level keys. An unknown key, or a value of
the wrong type, is an error naming the file, the line and the key; strings from the command line
are converted (``"3e-5"`` -> float, ``"a,b"`` -> list, ``"true"`` -> bool).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal, TypeVar, get_type_hints

from ragsift.errors import DataFormatError

T = TypeVar("T")


def load_dataclass(cls: type[T], path: str | Path | None = None,
                   overrides: dict[str, Any] | None = None, what: str = "config") -> T:
    """An instance of ``cls`` from a YAML file (optional) with ``overrides`` applied (``None``
    values are ignored)."""
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
        kwargs[key] = _coerce(value, hints[key], where, line, key)
    return cls(**kwargs)


def _read_yaml(path: Path) -> dict[str, tuple[Any, int | None]]:
    """Top-level keys of a YAML mapping with their 1-based line numbers."""
    import yaml

    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataFormatError(path, mark.line + 1 if mark else None, None,
                              f"invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise DataFormatError(path, node.start_mark.line + 1, None, "expected a mapping of keys")
    loader = yaml.SafeLoader("")
    out = {}
    for key_node, value_node in node.value:
        out[str(key_node.value)] = (loader.construct_object(value_node, deep=True),
                                    key_node.start_mark.line + 1)
    return out


def _coerce(value: Any, hint: Any, where: Any, line: int | None, key: str) -> Any:
    """Check (and, from strings, convert) ``value`` to the field's type."""
    origin = getattr(hint, "__origin__", None)
    try:
        if origin is Literal:
            if value not in hint.__args__:
                raise ValueError(f"must be one of {list(hint.__args__)}")
            return value
        if origin is list:
            if isinstance(value, str):
                value = [v for v in value.split(",") if v]
            item = hint.__args__[0]
            return [item(v) for v in value]
        if hint is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError("must be true or false")
                return value.lower() in ("true", "1", "yes")
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
            return value
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise ValueError("must be an integer")
        return hint(value)
    except (TypeError, ValueError) as exc:
        raise DataFormatError(where, line, key, f"bad value {value!r}: {exc}") from None
