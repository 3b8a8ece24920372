"""Hybrid retrieval: any retrievers searched to a depth, their runs fused (RRF or convex)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ragsift.errors import UsageError
from ragsift.retrieve.base import Retriever
from ragsift.retrieve.fusion import Normalization, convex, rrf
from ragsift.types import Corpus, Queries, Run, top_k

Fusion = Literal["rrf", "convex"]


class HybridRetriever(Retriever):
    """Fuse the runs of several retrievers.

    Args:
        retrievers: the retrievers to combine (each indexes the same corpus).
        fusion: ``rrf`` (reciprocal rank fusion, default) or ``convex`` (weighted normalised sum).
        weights: one weight per retriever (default: all 1).
        depth: how many documents each retriever returns before fusion (at least ``k``).
        rrf_k: the RRF constant. normalization: ``minmax`` or ``zscore`` for convex fusion.

    Example:
        >>> from ragsift.retrieve.bm25 import BM25Retriever
        >>> hybrid = HybridRetriever([BM25Retriever(), BM25Retriever(method="bm25+")])
    """

    kind = "hybrid"

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        fusion: Fusion = "rrf",
        weights: Sequence[float] | None = None,
        depth: int = 100,
        rrf_k: float = 60.0,
        normalization: Normalization = "minmax",
    ) -> None:
        if len(retrievers) < 2:
            raise UsageError("a hybrid retriever needs at least two retrievers")
        if fusion not in ("rrf", "convex"):
            raise UsageError(f"unknown fusion {fusion!r}; choose 'rrf' or 'convex'")
        if weights is not None and len(weights) != len(retrievers):
            raise UsageError(f"{len(weights)} fusion weights for {len(retrievers)} retrievers: "
                             "give one weight per hybrid member")
        self.retrievers = list(retrievers)
        self.fusion = fusion
        self.weights = list(weights) if weights is not None else None
        self.depth = depth
        self.rrf_k = rrf_k
        self.normalization = normalization

    def config(self) -> dict[str, Any]:
        return {"fusion": self.fusion, "weights": self.weights, "depth": self.depth,
                "rrf_k": self.rrf_k, "normalization": self.normalization}

    @property
    def model_name(self) -> str | None:
        names = [r.model_name for r in self.retrievers if r.model_name]
        return "+".join(names) or None

    @property
    def num_documents(self) -> int:
        return self.retrievers[0].num_documents

    def index(self, corpus: Corpus) -> None:
        for retriever in self.retrievers:
            retriever.index(corpus)

    def fuse(self, runs: Sequence[Run]) -> Run:
        """Fuse runs produced by this retriever's members (in the same order)."""
        if self.fusion == "rrf":
            return rrf(runs, k=self.rrf_k, weights=self.weights)
        return convex(runs, weights=self.weights, normalization=self.normalization)

    def search(self, queries: Queries, k: int = 100) -> Run:
        depth = max(k, self.depth)
        return top_k(self.fuse([r.search(queries, depth) for r in self.retrievers]), k)

    def _save_files(self, folder: Path) -> None:
        for i, retriever in enumerate(self.retrievers):
            retriever._save_files(_member(folder, i, mkdir=True))
            manifest = {"retriever": retriever.kind, "model": retriever.model_name,
                        "config": retriever.config()}
            (_member(folder, i) / "member.json").write_text(json.dumps(manifest, indent=2))

    @classmethod
    def _load_files(cls, folder: Path, manifest: dict[str, Any], **options: Any) -> HybridRetriever:
        from ragsift.retrieve.base import _REGISTRY

        members = []
        i = 0
        while (_member(folder, i) / "member.json").is_file():
            member = json.loads((_member(folder, i) / "member.json").read_text())
            members.append(_REGISTRY[member["retriever"]]._load_files(_member(folder, i), member))
            i += 1
        return cls(members, **manifest["config"], **options)


def _member(folder: Path, i: int, mkdir: bool = False) -> Path:
    path = folder / f"member-{i}"
    if mkdir:
        path.mkdir()
    return path
