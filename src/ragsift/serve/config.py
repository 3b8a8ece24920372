"""The server's configuration: which models and index to load, request limits, the API key.

A YAML file (every section optional)::

    rerankers:                      # name -> model (folder, packaged name or hub id)
      minilm-ce: models/minilm-ce
      big: {model: models/big-ce, options: {long_doc: max, max_length: 512}}
    embedders:                      # name -> model; options go to BiEncoder.from_pretrained
      minilm: minilm-l6
    index:
      path: indexes/scifact         # a folder written by `ragsift index`
      embedder: minilm              # a dense index encodes queries with this embedder
      corpus: data/scifact          # texts and metadata of the indexed documents (optional)
    limits:
      max_documents: 1000           # documents (or embedding inputs) per request
      max_tokens: 65536             # tokens per request
      max_batch_tokens: 16384       # tokens per micro-batch
      max_wait_ms: 5                # how long a request waits for others to batch with
    api_key: secret                 # else $RAGSIFT_API_KEY; none: no authentication

Names are what clients put in ``model``. Reranker ``options`` go to :meth:`Reranker.load`
(``family``, ``long_doc``, ``max_length``, ``batch_size``, ``backend``, ...). An unknown key
anywhere is an error naming the key.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragsift.errors import DataFormatError

API_KEY_ENV = "RAGSIFT_API_KEY"


@dataclass(frozen=True)
class ModelConfig:
    """A model to load: a folder, packaged name or hub id, and its loader's options."""

    model: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IndexConfig:
    """A saved index; for a dense index, the embedder (by name) whose model encodes queries
    (default: the index loads the model its manifest names); the corpus whose texts and metadata
    ``/search`` returns and filters on (default: ids and scores only, no filters)."""

    path: str
    embedder: str | None = None
    corpus: str | None = None


@dataclass(frozen=True)
class Limits:
    """Per-request and per-batch bounds (see the module docstring)."""

    max_documents: int = 1000
    max_tokens: int = 65536
    max_batch_tokens: int = 16384
    max_wait_ms: float = 5.0


@dataclass
class ServeConfig:
    """Everything ``ragsift serve`` loads at start. ``api_key`` defaults to $RAGSIFT_API_KEY."""

    rerankers: dict[str, ModelConfig] = field(default_factory=dict)
    embedders: dict[str, ModelConfig] = field(default_factory=dict)
    index: IndexConfig | None = None
    limits: Limits = field(default_factory=Limits)
    api_key: str | None = None

    def __post_init__(self) -> None:
        if self.api_key is None:
            self.api_key = os.environ.get(API_KEY_ENV) or None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> ServeConfig:
        """Read a YAML config file.

        Raises:
            DataFormatError: invalid YAML, an unknown key, a value of the wrong type, or an
                ``index.embedder`` that names no embedder; the error names file and key.
        """
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise DataFormatError(path, None, None, f"invalid YAML ({exc})") from None
        return cls.from_dict(data or {}, path)

    @classmethod
    def from_dict(cls, data: Any, source: str | os.PathLike[str] = "<config>") -> ServeConfig:
        """Build a config from parsed YAML (``source`` names it in errors)."""
        data = _mapping(data, None, source)
        _known_keys(data, [f.name for f in dataclasses.fields(cls)], None, source)
        index, api_key = data.get("index"), data.get("api_key")
        limits = _mapping(data.get("limits") or {}, "limits", source)
        _known_keys(limits, [f.name for f in dataclasses.fields(Limits)], "limits", source)
        config = cls(
            rerankers=_models(data.get("rerankers") or {}, "rerankers", source),
            embedders=_models(data.get("embedders") or {}, "embedders", source),
            index=None if index is None else _index(index, source),
            limits=Limits(**{key: _positive(value, f"limits.{key}", source,
                                            integer=isinstance(getattr(Limits, key), int))
                             for key, value in limits.items()}),
            api_key=None if api_key is None else _text(api_key, "api_key", source),
        )
        config.check(source)
        return config

    def with_flags(self, reranker: str | None = None, embedder: str | None = None,
                   index: str | None = None) -> ServeConfig:
        """A copy with the command line's models added (named by :func:`model_name`, replacing
        a model of that name) and its index path replacing the config's."""
        rerankers, embedders = dict(self.rerankers), dict(self.embedders)
        if reranker:
            rerankers[model_name(reranker)] = ModelConfig(reranker)
        if embedder:
            embedders[model_name(embedder)] = ModelConfig(embedder)
        new_index = self.index
        if index:
            new_index = IndexConfig(index) if self.index is None else dataclasses.replace(
                self.index, path=index)
        config = dataclasses.replace(self, rerankers=rerankers, embedders=embedders,
                                     index=new_index)
        config.check("<command line>")
        return config

    def check(self, source: str | os.PathLike[str]) -> None:
        """Raise :class:`DataFormatError` if ``index.embedder`` names no embedder."""
        if self.index and self.index.embedder and self.index.embedder not in self.embedders:
            raise DataFormatError(source, None, "index.embedder",
                                  f"no embedder named {self.index.embedder!r}; "
                                  f"embedders: {sorted(self.embedders)}")


def model_name(model: str) -> str:
    """The name a model given on the command line is served under: a local folder's name, else
    the string itself (a packaged name or hub id).

    Example:
        >>> model_name("minilm-l6")
        'minilm-l6'
    """
    path = Path(model).expanduser()
    return path.resolve().name if path.is_dir() else model


def _mapping(value: Any, key: str | None, source: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataFormatError(source, None, key,
                              f"expected a mapping of keys, got {type(value).__name__}")
    return value


def _known_keys(data: Mapping[str, Any], known: list[str], prefix: str | None,
                source: Any) -> None:
    for key in data:
        if key not in known:
            where = f"{prefix}.{key}" if prefix else str(key)
            raise DataFormatError(source, None, where, f"unknown key; known: {sorted(known)}")


def _text(value: Any, key: str, source: Any) -> str:
    if not isinstance(value, str) or not value:
        raise DataFormatError(source, None, key, f"expected a non-empty string, got {value!r}")
    return value


def _positive(value: Any, key: str, source: Any, integer: bool) -> float:
    kinds = int if integer else int | float
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        expected = "a positive integer" if integer else "a positive number"
        raise DataFormatError(source, None, key, f"expected {expected}, got {value!r}")
    return value


def _models(data: Any, section: str, source: Any) -> dict[str, ModelConfig]:
    """``name: MODEL`` or ``name: {model: MODEL, options: {...}}`` entries of a section."""
    models = {}
    for name, entry in _mapping(data, section, source).items():
        key = f"{section}.{name}"
        if isinstance(entry, str):
            models[str(name)] = ModelConfig(_text(entry, key, source))
            continue
        entry = _mapping(entry, key, source)
        _known_keys(entry, ["model", "options"], key, source)
        if "model" not in entry:
            raise DataFormatError(source, None, f"{key}.model", "missing key")
        models[str(name)] = ModelConfig(
            _text(entry["model"], f"{key}.model", source),
            dict(_mapping(entry.get("options", {}), f"{key}.options", source)),
        )
    return models


def _index(data: Any, source: Any) -> IndexConfig:
    """``index: DIR`` or ``index: {path: DIR, embedder: NAME, corpus: PATH}``."""
    if isinstance(data, str):
        return IndexConfig(_text(data, "index", source))
    data = _mapping(data, "index", source)
    _known_keys(data, [f.name for f in dataclasses.fields(IndexConfig)], "index", source)
    if "path" not in data:
        raise DataFormatError(source, None, "index.path", "missing key")
    return IndexConfig(**{key: _text(value, f"index.{key}", source)
                          for key, value in data.items()})
