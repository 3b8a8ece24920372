"""A teacher: any ragsift reranker or bi-encoder scoring (query, passage) pairs.

``Teacher.load(name)`` uses the reranker family detected from the model's config
(cross-encoder, LLM, ColBERT) and falls back to a bi-encoder (a sentence-transformers or
transformers encoder) when the folder is none of those; ``kind`` forces one.

Scores depend only on the pairs of one :meth:`Teacher.score` call (nothing is carried over
from earlier calls), so a sharded job scores each shard identically whether it runs straight
through or resumes after a kill.

Two scales:

- ``raw``: the model's own score (a logit / log-odds for cross-encoders and LLMs, MaxSim for
  ColBERT, the similarity for bi-encoders) -- what distillation losses want;
- ``probability``: a score on a positive scale for the relative filters of mining: the
  calibrated or sigmoid probability for cross-encoders and LLMs, the raw score for ColBERT
  (positive sums of cosines) and bi-encoders (cosine).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ragsift.errors import UsageError

Scale = Literal["raw", "probability"]


class Teacher:
    """Scores pairs with a reranker or a bi-encoder (see the module docstring)."""

    def __init__(self, model: Any, kind: Literal["reranker", "bi-encoder"]) -> None:
        self.model = model
        self.kind = kind

    @classmethod
    def load(cls, name: str | os.PathLike[str], kind: str = "auto",
             **options: Any) -> Teacher:
        """Load ``name`` as a reranker (``kind="reranker"``), a bi-encoder, or whichever its
        config says (``auto``)."""
        from ragsift.models.bi_encoder import BiEncoder
        from ragsift.models.hub import resolve_model
        from ragsift.rerank import Reranker
        from ragsift.rerank.base import detect_family

        if kind not in ("auto", "reranker", "bi-encoder"):
            raise UsageError(f"unknown teacher kind {kind!r}; use auto, reranker or bi-encoder")
        if kind == "auto":
            try:
                detect_family(resolve_model(name))
                kind = "reranker"
            except ValueError:
                kind = "bi-encoder"
        if kind == "reranker":
            return cls(Reranker.load(name, **options), "reranker")
        return cls(BiEncoder.from_pretrained(name, **options), "bi-encoder")

    @property
    def name(self) -> str:
        return getattr(self.model, "name", "") or type(self.model).__name__

    def score(self, pairs: Sequence[tuple[str, str]], scale: Scale = "raw") -> np.ndarray:
        """Scores of ``pairs`` on ``scale``; float32 of shape ``(len(pairs),)``."""
        raw = self._raw(pairs)
        return self.probability(raw) if scale == "probability" else raw

    def probability(self, raw: np.ndarray) -> np.ndarray:
        """Raw scores on the ``probability`` scale (see the module docstring)."""
        model = self.model
        if self.kind != "reranker" or getattr(model, "family", "") == "colbert":
            return raw
        return model.probability(raw)

    def _raw(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        if not len(pairs):
            return np.zeros(0, dtype=np.float32)
        if self.kind == "reranker":
            return self.model.score(pairs)
        queries = list(dict.fromkeys(q for q, _ in pairs))
        passages = list(dict.fromkeys(p for _, p in pairs))
        q_index = {q: i for i, q in enumerate(queries)}
        p_index = {p: i for i, p in enumerate(passages)}
        q_vectors = self.model.encode_queries(queries)
        p_vectors = self._passage_vectors(passages)
        rows = np.array([q_index[q] for q, _ in pairs])
        cols = np.array([p_index[p] for _, p in pairs])
        if self.model.similarity == "cosine" and not self.model.layout.normalize:
            q_vectors = q_vectors / np.linalg.norm(q_vectors, axis=1, keepdims=True).clip(1e-12)
            p_vectors = p_vectors / np.linalg.norm(p_vectors, axis=1, keepdims=True).clip(1e-12)
        return np.einsum("ij,ij->i", q_vectors[rows], p_vectors[cols]).astype(np.float32)

    def _passage_vectors(self, passages: list[str]) -> np.ndarray:
        """Bi-encoder vectors of the distinct ``passages`` of one call, encoded together.

        There is deliberately no cache across calls: a vector depends slightly (1e-8..1e-7) on
        the batch it was encoded in (padding length and kernel shapes), so reusing one from an
        earlier call would make a call's scores depend on which calls came before it, and a
        resumed labelling job would differ from an uninterrupted one. Within a call each
        passage is encoded once, and the same pairs always give the same scores."""
        return self.model.encode_documents(passages)
