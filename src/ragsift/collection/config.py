"""The settings a collection is created with and keeps for life (stored in its manifest)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from ragsift.collection.lexical import BM25Params
from ragsift.errors import RagsiftError

RetrieverKind = Literal["bm25", "dense", "hybrid"]
RETRIEVERS = ("bm25", "dense", "hybrid")
DEFAULT_EMBEDDER = "minilm-l6"


@dataclass(frozen=True)
class CollectionConfig:
    """How a collection chunks, indexes and fuses.

    Args:
        retriever: ``bm25``, ``dense`` or ``hybrid`` (both, fused).
        embedder: the bi-encoder of dense and hybrid collections (folder, packaged name or hub
            id); its tokenizer also counts chunk tokens. BM25 collections count with the
            packaged MiniLM tokenizer unless one is named.
        store: ``faiss`` (in process), ``milvus:URI`` or ``qdrant:URI``; a relative path in a
            URI is taken inside the collection folder.
        chunk_tokens: most tokens per chunk, title included (default: the embedder's maximum
            length less its special tokens, 256 for BM25).
        chunk_overlap: tokens consecutive chunks share (sentence-aware: whole sentences).
        sentence_aware: chunks end at sentence ends where possible.
        bm25: BM25 settings. fusion: ``rrf`` or ``convex`` for hybrid collections.
        fusion_depth: candidates each retriever gives the fusion (at least ``k``).
    """

    retriever: RetrieverKind = "hybrid"
    embedder: str | None = DEFAULT_EMBEDDER
    store: str = "faiss"
    chunk_tokens: int | None = None
    chunk_overlap: int = 32
    sentence_aware: bool = True
    bm25: BM25Params = field(default_factory=BM25Params)
    fusion: Literal["rrf", "convex"] = "rrf"
    fusion_depth: int = 100
    model: str | None = None
    dim: int | None = None
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.retriever not in RETRIEVERS:
            raise RagsiftError(f"retriever {self.retriever!r}: choose one of {RETRIEVERS}")
        if self.dense and not self.embedder:
            raise RagsiftError(f"a {self.retriever} collection needs an embedder")
        if self.fusion not in ("rrf", "convex"):
            raise RagsiftError(f"fusion {self.fusion!r}: choose rrf or convex")
        for name in ("chunk_tokens", "fusion_depth"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < 1):
                raise RagsiftError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.chunk_overlap, int) or self.chunk_overlap < 0 or (
                self.chunk_tokens is not None and self.chunk_overlap >= self.chunk_tokens):
            raise RagsiftError(f"chunk_overlap must be >= 0 and < chunk_tokens, got "
                               f"{self.chunk_overlap!r}")
        if not (self.store == "faiss" or self.store.startswith(("milvus:", "qdrant:"))):
            raise RagsiftError(f"store {self.store!r}: use faiss, milvus:URI or qdrant:URI")

    @property
    def dense(self) -> bool:
        return self.retriever in ("dense", "hybrid")

    @property
    def lexical(self) -> bool:
        return self.retriever in ("bm25", "hybrid")

    def to_dict(self) -> dict[str, Any]:
        body = dataclasses.asdict(self)
        body["bm25"] = dataclasses.asdict(self.bm25)
        return body

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> CollectionConfig:
        body = dict(body)
        body["bm25"] = BM25Params(**body.get("bm25", {}))
        return cls(**body)


__all__ = ["CollectionConfig", "DEFAULT_EMBEDDER", "RETRIEVERS", "RetrieverKind"]
