"""Retriever specs, the strings the CLI takes, and :data:`KINDS`, the one table of retriever kinds.

A spec is ``KIND``, ``KIND:ARGUMENT`` (``bm25:bm25l``, ``dense:minilm-l6``) or
``hybrid:SPEC+SPEC[+...]`` (``hybrid:bm25+dense:minilm-l6``). :func:`parse_spec`,
:func:`build_retriever`, the CLI's ``--retriever`` help and docs/architecture.md all read
:data:`KINDS`; adding a kind is one module with a :class:`~ragsift.retrieve.base.Retriever`
subclass plus one :class:`RetrieverKind` row below. Rows name their class as
``"module:Class"``, imported on first build, so reading the table imports no model code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ragsift.errors import UsageError
from ragsift.retrieve.base import Retriever
from ragsift.retrieve.bm25 import METHODS as BM25_METHODS

HYBRID = "hybrid"
_HYBRID_FORM = f"{HYBRID}:SPEC+SPEC (e.g. hybrid:bm25+dense:minilm-l6)"


@dataclass(frozen=True)
class RetrieverKind:
    """One retriever kind: how its spec reads and which class it builds.

    Args:
        name: the spec's kind and the class's ``kind`` (the name saved in manifests).
        target: ``"module:Class"``, the :class:`Retriever` subclass, imported on first build.
        summary: one line for ``--help`` and the docs.
        argument: what follows ``name:`` in help (``MODEL``, ``METHOD``); None: nothing does.
        keyword: the constructor keyword the argument fills; None: the first positional one.
        optional: the argument may be left out (``bm25`` as well as ``bm25:METHOD``).
        choices: the values the argument may take; empty: any.

    Example:
        >>> KINDS["dense"].forms
        ('dense:MODEL',)
        >>> KINDS["bm25"].forms
        ('bm25', 'bm25:METHOD')
    """

    name: str
    target: str
    summary: str
    argument: str | None = "MODEL"
    keyword: str | None = None
    optional: bool = False
    choices: tuple[str, ...] = ()

    @property
    def forms(self) -> tuple[str, ...]:
        """The spec forms this kind accepts, as help shows them."""
        with_argument = (f"{self.name}:{self.argument}",) if self.argument else ()
        bare = (self.name,) if self.optional or not self.argument else ()
        return bare + with_argument

    @property
    def takes_model(self) -> bool:
        """Whether the argument names a model (a folder, packaged name or hub id)."""
        return self.argument == "MODEL"

    def retriever_class(self) -> type[Retriever]:
        """Import and return the class :attr:`target` names.

        Raises:
            TypeError: the class is not a Retriever or its ``kind`` is not :attr:`name` (a
                table that disagrees with its classes is a programming error).
        """
        module, _, name = self.target.partition(":")
        cls = getattr(importlib.import_module(module), name)
        if not (isinstance(cls, type) and issubclass(cls, Retriever) and cls.kind == self.name):
            raise TypeError(f"retriever kind {self.name!r}: {self.target} is not a Retriever "
                            f"with kind = {self.name!r}")
        return cls


_ROWS = (
    RetrieverKind("bm25", "ragsift.retrieve.bm25:BM25Retriever",
                  "lexical BM25 (bm25s); METHOD: " + ", ".join(BM25_METHODS),
                  argument="METHOD", keyword="method", optional=True, choices=BM25_METHODS),
    RetrieverKind("dense", "ragsift.retrieve.dense:DenseRetriever",
                  "one vector per text (a bi-encoder), searched with faiss"),
    RetrieverKind("colbert", "ragsift.retrieve.colbert:LateInteractionRetriever",
                  "one vector per token, scored by MaxSim (ColBERT)"),
    RetrieverKind("splade", "ragsift.retrieve.splade:SparseRetriever",
                  "learned sparse term weights (SPLADE), an inverted index"),
)
#: Every retriever kind a spec may name, by name (hybrid, the fusion of kinds, is syntax).
KINDS: dict[str, RetrieverKind] = {row.name: row for row in _ROWS}


def spec_forms() -> list[str]:
    """Every accepted spec form, hybrid last (the list ``--help`` and errors show).

    Example:
        >>> spec_forms()[:3]
        ['bm25', 'bm25:METHOD', 'dense:MODEL']
    """
    return [form for kind in KINDS.values() for form in kind.forms] + [_HYBRID_FORM]


class RetrieverSpecError(UsageError):
    """A retriever spec that names no known kind or misses its argument (CLI exit status 2)."""


@dataclass(frozen=True)
class RetrieverSpec:
    """A parsed spec: the kind, its argument (BM25 method or model) and hybrid members."""

    kind: str
    argument: str | None = None
    members: tuple[RetrieverSpec, ...] = field(default_factory=tuple)

    @property
    def model(self) -> str | None:
        """The model the spec names (None for BM25 and hybrids, whose members name theirs)."""
        row = KINDS.get(self.kind)
        return self.argument if row is not None and row.takes_model else None


def parse_spec(spec: str) -> RetrieverSpec:
    """Parse a retriever spec against :data:`KINDS`.

    Raises:
        RetrieverSpecError: an unknown kind, a missing or unknown argument, a nested hybrid;
            the message shows the accepted forms.

    Example:
        >>> parse_spec("hybrid:bm25+dense:minilm-l6").members[1]
        RetrieverSpec(kind='dense', argument='minilm-l6', members=())
    """
    forms = ", ".join(spec_forms())
    name, _, argument = spec.strip().partition(":")
    if name == HYBRID:
        parts = [p for p in argument.split("+") if p]
        if len(parts) < 2:
            raise RetrieverSpecError(
                f"retriever spec {spec!r}: hybrid needs two or more parts; {forms}")
        if any(p.strip().partition(":")[0] == HYBRID for p in parts):
            raise RetrieverSpecError(f"retriever spec {spec!r}: hybrids do not nest")
        return RetrieverSpec(HYBRID, None, tuple(parse_spec(p) for p in parts))
    kind = KINDS.get(name)
    if kind is None:
        raise RetrieverSpecError(f"unknown retriever spec {spec!r}; accepted: {forms}")
    if argument and kind.argument is None:
        raise RetrieverSpecError(f"retriever spec {spec!r}: {name} takes no argument")
    if argument and kind.choices and argument not in kind.choices:
        raise RetrieverSpecError(f"retriever spec {spec!r}: {name} {kind.argument} must be one "
                                 f"of {kind.choices}")
    if not argument and kind.argument and not kind.optional:
        raise RetrieverSpecError(f"retriever spec {spec!r}: {name} needs a "
                                 f"{kind.argument.lower()}, as {name}:{kind.argument}")
    return RetrieverSpec(name, argument or None)


def build_retriever(
    spec: str | RetrieverSpec,
    *,
    fusion: str = "rrf",
    normalization: str = "minmax",
    weights: list[float] | None = None,
    depth: int = 100,
    rrf_k: float = 60.0,
    **kind_options: dict[str, Any] | None,
) -> Retriever:
    """An un-indexed retriever for ``spec``.

    Args:
        spec: a spec string or a parsed :class:`RetrieverSpec`.
        fusion, normalization, weights, depth, rrf_k: a hybrid's fusion settings
            (:class:`~ragsift.retrieve.hybrid.HybridRetriever`).
        **kind_options: ``<kind>_options``, constructor keywords for every retriever of that
            kind (``bm25_options={"k1": 1.2}``, ``dense_options={"index_kind": "hnsw"}``);
            hybrid members get theirs too.

    Raises:
        RetrieverSpecError: a bad spec (see :func:`parse_spec`).
        TypeError: an option for a kind :data:`KINDS` does not have.

    Example:
        >>> type(build_retriever("bm25:bm25l", bm25_options={"k1": 1.2})).__name__
        'BM25Retriever'
    """
    unknown = sorted(key for key in kind_options
                     if not key.endswith("_options") or key[:-len("_options")] not in KINDS)
    if unknown:
        raise TypeError(f"build_retriever: unknown keyword(s) {unknown}; per-kind options are "
                        f"{[f'{name}_options' for name in KINDS]}")
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    if parsed.kind == HYBRID:
        from ragsift.retrieve.hybrid import HybridRetriever

        members = [build_retriever(m, **kind_options) for m in parsed.members]
        return HybridRetriever(members, fusion=fusion, weights=weights,  # type: ignore[arg-type]
                               depth=depth, rrf_k=rrf_k,
                               normalization=normalization)  # type: ignore[arg-type]
    kind = KINDS[parsed.kind]
    options = dict(kind_options.get(f"{kind.name}_options") or {})
    if parsed.argument is None:
        return kind.retriever_class()(**options)
    if kind.keyword is not None:
        return kind.retriever_class()(**{**options, kind.keyword: parsed.argument})
    return kind.retriever_class()(parsed.argument, **options)
