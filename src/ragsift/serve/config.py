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
      max_body_bytes: 4194304       # bytes per request body (4 MiB)
    api_key: secret                 # else $RAGSIFT_API_KEY; none: no authentication
    collection: collections/papers  # serve a collection's /search instead of an index
    pipeline: configs/p.yaml        # with a collection: rerank + fuse its hits (ragsift.pipeline)

Names are what clients put in ``model``. Reranker ``options`` go to :meth:`Reranker.load`
(``family``, ``long_doc``, ``max_length``, ``batch_size``, ``backend``, ...), except
``allow_untrained_head: true``, which lets the server load a cross-encoder whose scoring head
the checkpoint lacks. An unknown key, a limit out of its range (or not finite, or a boolean) and
a non-finite number among the options are errors naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragsift.errors import DataFormatError

API_KEY_ENV = "RAGSIFT_API_KEY"
ALLOW_UNTRAINED_HEAD = "allow_untrained_head"  # a reranker option the server reads itself


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


def _bounded(default: int | float, low: int | float, high: int | float) -> Any:
    """A :class:`Limits` field: ``default``, valid from ``low`` to ``high`` (an int field takes
    ints only, a float field ints or floats; never booleans or non-finite numbers)."""
    return field(default=default, metadata={"range": (low, high)})


@dataclass(frozen=True)
class Limits:
    """Per-request and per-batch bounds (see the module docstring), each checked against its
    range: ``Limits(max_wait_ms=float("inf"))`` raises :class:`DataFormatError`."""

    max_documents: int = _bounded(1000, 1, 1_000_000)
    max_tokens: int = _bounded(65536, 1, 100_000_000)
    max_batch_tokens: int = _bounded(16384, 1, 10_000_000)
    max_wait_ms: float = _bounded(5.0, 0, 10_000)
    max_body_bytes: int = _bounded(4 * 1024 * 1024, 1024, 1024**3)

    def __post_init__(self) -> None:
        for limit in dataclasses.fields(self):
            _check_limit(limit, getattr(self, limit.name))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | os.PathLike[str]) -> Limits:
        """The ``limits`` section of a config; errors name ``source`` and the key."""
        _known_keys(data, [f.name for f in dataclasses.fields(cls)], "limits", source)
        try:
            return cls(**data)
        except DataFormatError as exc:
            raise DataFormatError(source, None, exc.field, exc.message) from None


def _check_limit(limit: dataclasses.Field, value: Any) -> None:
    """Raise :class:`DataFormatError` unless ``value`` is a number of the field's kind within
    its range."""
    low, high = limit.metadata["range"]
    integer = isinstance(limit.default, int)
    kinds = int if integer else (int, float)
    if (isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value)
            or not low <= value <= high):
        kind = "an integer" if integer else "a number"
        raise DataFormatError("Limits", None, f"limits.{limit.name}",
                              f"expected {kind} from {low} to {high}, got {value!r}")


@dataclass
class ServeConfig:
    """Everything ``ragsift serve`` loads at start. ``api_key`` defaults to $RAGSIFT_API_KEY."""

    rerankers: dict[str, ModelConfig] = field(default_factory=dict)
    embedders: dict[str, ModelConfig] = field(default_factory=dict)
    index: IndexConfig | None = None
    collection: str | None = None
    pipeline: str | None = None
    limits: Limits = field(default_factory=Limits)
    api_key: str | None = None

    def __post_init__(self) -> None:
        if self.api_key is None:
            self.api_key = os.environ.get(API_KEY_ENV) or None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> ServeConfig:
        """Read a YAML config file.

        Raises:
            DataFormatError: invalid YAML (anchors, aliases and duplicate keys included), an
                unknown key, a value of the wrong type, or an ``index.embedder`` that names no
                embedder; the error names file, line and key. The file is read by the loader
                of every ragsift config (:func:`ragsift.config_file.read_yaml_located`).
        """
        from ragsift.config_file import locate, read_yaml_located

        path = Path(path)
        data, lines = read_yaml_located(path)
        try:
            return cls.from_dict(data or {}, path)
        except DataFormatError as exc:
            raise locate(exc, path, lines) from None

    @classmethod
    def from_dict(cls, data: Any, source: str | os.PathLike[str] = "<config>") -> ServeConfig:
        """Build a config from parsed YAML (``source`` names it in errors)."""
        data = _mapping(data, None, source)
        _known_keys(data, [f.name for f in dataclasses.fields(cls)], None, source)
        index, api_key = data.get("index"), data.get("api_key")
        collection, pipeline = data.get("collection"), data.get("pipeline")
        config = cls(
            rerankers=_models(data.get("rerankers") or {}, "rerankers", source),
            embedders=_models(data.get("embedders") or {}, "embedders", source),
            index=None if index is None else _index(index, source),
            collection=None if collection is None else _text(collection, "collection", source),
            pipeline=None if pipeline is None else _text(pipeline, "pipeline", source),
            limits=Limits.from_dict(_mapping(data.get("limits") or {}, "limits", source),
                                    source),
            api_key=None if api_key is None else _text(api_key, "api_key", source),
        )
        config.check(source)
        return config

    def with_flags(self, reranker: str | None = None, embedder: str | None = None,
                   index: str | None = None,
                   reranker_options: Mapping[str, Any] | None = None,
                   collection: str | None = None,
                   pipeline: str | None = None) -> ServeConfig:
        """A copy with the command line's models added (named by :func:`model_name`, replacing
        a model of that name; the reranker with ``reranker_options``) and its index path
        replacing the config's (so do its collection and pipeline)."""
        rerankers, embedders = dict(self.rerankers), dict(self.embedders)
        if reranker:
            rerankers[model_name(reranker)] = ModelConfig(reranker, dict(reranker_options or {}))
        if embedder:
            embedders[model_name(embedder)] = ModelConfig(embedder)
        new_index = self.index
        if index:
            new_index = IndexConfig(index) if self.index is None else dataclasses.replace(
                self.index, path=index)
        config = dataclasses.replace(self, rerankers=rerankers, embedders=embedders,
                                     index=new_index, collection=collection or self.collection,
                                     pipeline=pipeline or self.pipeline)
        config.check("<command line>")
        return config

    def check(self, source: str | os.PathLike[str]) -> None:
        """Raise :class:`DataFormatError` if ``index.embedder`` names no embedder, both an
        index and a collection would answer ``/search``, or a pipeline has no collection."""
        if self.index and self.collection:
            raise DataFormatError(source, None, "collection",
                                  "serve an index or a collection, not both (each answers "
                                  "/search)")
        if self.pipeline and not self.collection:
            raise DataFormatError(source, None, "pipeline",
                                  "a pipeline reranks a collection's /search; serve a "
                                  "collection too")
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
            _options(entry.get("options", {}), f"{key}.options", source),
        )
    return models


def _options(data: Any, key: str, source: Any) -> dict[str, Any]:
    """A model's ``options``; a non-finite number, or an ``allow_untrained_head`` that is not
    a boolean, is an error naming the option."""
    options = dict(_mapping(data, key, source))
    for name, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise DataFormatError(source, None, f"{key}.{name}",
                                  f"expected a finite number, got {value!r}")
    if not isinstance(options.get(ALLOW_UNTRAINED_HEAD, False), bool):
        raise DataFormatError(source, None, f"{key}.{ALLOW_UNTRAINED_HEAD}",
                              f"expected true or false, got {options[ALLOW_UNTRAINED_HEAD]!r}")
    return options


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
