"""Retriever specs, the strings the CLI takes: ``bm25``, ``bm25:METHOD``, ``dense:MODEL``,
``splade:MODEL`` and ``hybrid:SPEC+SPEC[+...]`` (e.g. ``hybrid:bm25+dense:minilm-l6``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ragsift.retrieve.base import Retriever
from ragsift.retrieve.bm25 import METHODS

KINDS = ("bm25", "dense", "colbert", "splade", "hybrid")


@dataclass(frozen=True)
class RetrieverSpec:
    """A parsed spec: the kind, its argument (BM25 method or model) and hybrid members."""

    kind: str
    argument: str | None = None
    members: tuple[RetrieverSpec, ...] = field(default_factory=tuple)


def parse_spec(spec: str) -> RetrieverSpec:
    """Parse a retriever spec.

    Raises:
        ValueError: an unknown kind, a missing model, a nested hybrid; the message shows the
            accepted forms.

    Example:
        >>> parse_spec("hybrid:bm25+dense:minilm-l6").members[1]
        RetrieverSpec(kind='dense', argument='minilm-l6', members=())
    """
    forms = ("bm25, bm25:METHOD, dense:MODEL, colbert:MODEL, splade:MODEL, hybrid:SPEC+SPEC "
             "(e.g. hybrid:bm25+dense:minilm-l6)")
    kind, _, argument = spec.strip().partition(":")
    if kind == "hybrid":
        parts = [p for p in argument.split("+") if p]
        if len(parts) < 2:
            raise ValueError(f"retriever spec {spec!r}: hybrid needs two or more parts; {forms}")
        members = tuple(parse_spec(p) for p in parts)
        if any(m.kind == "hybrid" for m in members):
            raise ValueError(f"retriever spec {spec!r}: hybrids do not nest")
        return RetrieverSpec("hybrid", None, members)
    if kind == "bm25":
        if argument and argument not in METHODS:
            raise ValueError(f"retriever spec {spec!r}: BM25 method must be one of {METHODS}")
        return RetrieverSpec("bm25", argument or None)
    if kind in ("dense", "colbert", "splade"):
        if not argument:
            raise ValueError(f"retriever spec {spec!r}: {kind} needs a model, as {kind}:MODEL")
        return RetrieverSpec(kind, argument)
    raise ValueError(f"unknown retriever spec {spec!r}; accepted: {forms}")


def build_retriever(
    spec: str | RetrieverSpec,
    *,
    fusion: str = "rrf",
    normalization: str = "minmax",
    weights: list[float] | None = None,
    depth: int = 100,
    rrf_k: float = 60.0,
    bm25_options: dict[str, Any] | None = None,
    dense_options: dict[str, Any] | None = None,
    colbert_options: dict[str, Any] | None = None,
    splade_options: dict[str, Any] | None = None,
) -> Retriever:
    """An un-indexed retriever for ``spec``; options go to the BM25 / dense constructors.

    Example:
        >>> type(build_retriever("bm25")).__name__
        'BM25Retriever'
    """
    from ragsift.retrieve.bm25 import BM25Retriever
    from ragsift.retrieve.dense import DenseRetriever
    from ragsift.retrieve.hybrid import HybridRetriever

    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    if parsed.kind == "bm25":
        options = dict(bm25_options or {})
        if parsed.argument:
            options["method"] = parsed.argument
        return BM25Retriever(**options)
    if parsed.kind == "dense":
        return DenseRetriever(parsed.argument, **(dense_options or {}))
    if parsed.kind == "colbert":
        from ragsift.retrieve.late_interaction import LateInteractionRetriever

        return LateInteractionRetriever(parsed.argument, **(colbert_options or {}))
    if parsed.kind == "splade":
        from ragsift.retrieve.sparse import SparseRetriever

        return SparseRetriever(parsed.argument, **(splade_options or {}))
    members = [
        build_retriever(m, bm25_options=bm25_options, dense_options=dense_options,
                        colbert_options=colbert_options, splade_options=splade_options)
        for m in parsed.members
    ]
    return HybridRetriever(members, fusion=fusion, weights=weights, depth=depth,  # type: ignore[arg-type]
                           rrf_k=rrf_k, normalization=normalization)  # type: ignore[arg-type]
