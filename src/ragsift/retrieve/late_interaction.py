"""ColBERT first-stage retrieval: token vectors, optional token pooling, candidate generation
by nearest document tokens, exact MaxSim re-scoring.

Index: every document's token vectors (unit vectors of ``embedding_size`` from a
:class:`~ragsift.models.late_interaction.LateInteractionModel`) stored as float16 in one
``(T, D)`` matrix with per-document offsets, plus a faiss index over the tokens.

Token pooling (``pool_factor`` p > 1), done at indexing time: a document's ``n`` token vectors
are clustered by Ward hierarchical clustering into ``max(1, n // p)`` clusters; each cluster is
replaced by the mean of its vectors, re-normalised. The index shrinks by ~p; MaxSim then
matches query tokens against cluster centres.

Search for a query with token vectors ``q_1..q_m``:

1. candidates: for each ``q_i`` the ``token_k`` nearest document tokens (inner product, faiss);
   the documents owning them form the candidate set (``token_k=None``: every document,
   i.e. exhaustive search, the quality ceiling);
2. exact MaxSim on the stored vectors: ``s(q, d) = sum_i max_{j in d} q_i . d_j``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ragsift.models.late_interaction import LateInteractionModel
from ragsift.retrieve.base import Retriever, refuse_other_model
from ragsift.retrieve.vector_store import FaissStore, IndexKind
from ragsift.types import Corpus, Queries, Run

logger = logging.getLogger(__name__)


def pool_tokens(vectors: np.ndarray, pool_factor: int) -> np.ndarray:
    """``vectors`` ``(n, D)`` pooled into ``max(1, n // pool_factor)`` re-normalised cluster
    means (Ward hierarchical clustering); returned unchanged when ``pool_factor <= 1`` or
    ``n <= 2``. Clusters come out in order of their first token."""
    n = len(vectors)
    if pool_factor <= 1 or n <= 2:
        return vectors
    from scipy.cluster.hierarchy import fcluster, linkage

    clusters = max(1, n // pool_factor)
    labels = fcluster(linkage(vectors.astype(np.float64), method="ward"), t=clusters,
                      criterion="maxclust")
    order = list(dict.fromkeys(labels.tolist()))
    pooled = np.stack([vectors[labels == label].mean(axis=0) for label in order])
    norms = np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-12)
    return (pooled / norms).astype(vectors.dtype)


def maxsim_scores(query: np.ndarray, tokens: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """MaxSim of one query ``(m, D)`` against consecutive documents whose token rows in
    ``tokens`` start at ``offsets[:-1]`` and end at ``offsets[1:]``; ``(len(offsets) - 1,)``.
    A document with no token scores 0."""
    sims = query.astype(np.float32) @ tokens.astype(np.float32).T  # (m, T)
    starts, ends = offsets[:-1], offsets[1:]
    scores = np.zeros(len(starts), dtype=np.float32)
    filled = ends > starts
    if sims.shape[1] and filled.any():
        best = np.maximum.reduceat(sims, starts[filled], axis=1)  # (m, documents with tokens)
        scores[filled] = best.sum(axis=0)
    return scores


class LateInteractionRetriever(Retriever):
    """ColBERT retrieval (see the module docstring).

    Args:
        model: a :class:`LateInteractionModel`, or a folder / packaged name / hub id.
        pool_factor: token pooling factor at indexing time (1: none).
        token_k: document tokens retrieved per query token for candidates (None: exhaustive).
        index_kind: faiss index over tokens, ``flat`` (exact) or ``hnsw``.
        batch_size: texts per encoder batch.
        model_options: settings for :meth:`LateInteractionModel.from_pretrained` when ``model``
            is a name (e.g. ``document_length``).
    """

    kind = "colbert"

    def __init__(self, model: LateInteractionModel | str | os.PathLike[str], pool_factor: int = 1,
                 token_k: int | None = 64, index_kind: IndexKind = "flat", batch_size: int = 32,
                 model_options: dict[str, Any] | None = None, show_progress: bool = False
                 ) -> None:
        if not isinstance(model, LateInteractionModel):
            model = LateInteractionModel.from_pretrained(model, **(model_options or {}))
        if pool_factor < 1:
            raise ValueError(f"pool_factor must be >= 1, got {pool_factor}")
        self.model = model
        self.pool_factor = pool_factor
        self.token_k = token_k
        self.index_kind = index_kind
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.doc_ids: list[str] = []
        self.tokens = np.zeros((0, model.embedding_size), dtype=np.float16)
        self.offsets = np.zeros(1, dtype=np.int64)
        self.store: FaissStore | None = None

    @property
    def model_name(self) -> str:
        return self.model.name

    @property
    def num_documents(self) -> int:
        return len(self.doc_ids)

    @property
    def index_bytes(self) -> int:
        """Bytes of the stored token vectors and offsets (the faiss index comes on top)."""
        return int(self.tokens.nbytes + self.offsets.nbytes)

    def config(self) -> dict[str, Any]:
        return {"pool_factor": self.pool_factor, "token_k": self.token_k,
                "index_kind": self.index_kind, "document_length":
                self.model.config.document_length, "query_length": self.model.config.query_length}

    def index(self, corpus: Corpus) -> None:
        """Encode, pool and store every document's token vectors; build the token index."""
        texts = [doc.full_text() for doc in corpus.values()]
        budget = self.model.document_token_budget()
        truncated = sum(len(ids) > budget for ids in self.model.tokenizer(
            texts, add_special_tokens=False, verbose=False)["input_ids"])
        if truncated:
            logger.warning("%d of %d documents are longer than the model's %d-token document "
                           "length; their tail is not indexed", truncated, len(texts),
                           self.model.config.document_length)
        vectors = self.model.encode(texts, is_query=False, batch_size=self.batch_size,
                                    show_progress=self.show_progress)
        self.index_vectors(list(corpus), vectors)

    def index_vectors(self, doc_ids: list[str], vectors: list[np.ndarray]) -> None:
        """Index already encoded documents: ``vectors[i]`` is the ``(n_i, D)`` token matrix of
        ``doc_ids[i]`` (as :meth:`LateInteractionModel.encode` returns), pooled here."""
        pooled = [pool_tokens(v, self.pool_factor) for v in tqdm(
            vectors, desc="pool tokens", unit="doc",
            disable=not self.show_progress or self.pool_factor == 1)]
        lengths = np.array([len(v) for v in pooled], dtype=np.int64)
        self.doc_ids = list(doc_ids)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        dim = self.model.embedding_size
        self.tokens = (np.concatenate(pooled) if pooled else np.zeros((0, dim))).astype(np.float16)
        self._build_store()

    def _build_store(self) -> None:
        self.store = None
        if self.token_k is not None:
            self.store = FaissStore(self.model.embedding_size, self.index_kind)
            self.store.add(self.tokens.astype(np.float32))

    def _candidates(self, query: np.ndarray) -> np.ndarray:
        """Sorted document positions owning the nearest tokens of the query's tokens."""
        if self.store is None:
            return np.arange(self.num_documents)
        _, positions = self.store.search(query, self.token_k)
        positions = positions[positions >= 0]
        return np.unique(np.searchsorted(self.offsets, positions, side="right") - 1)

    def search(self, queries: Queries, k: int = 100) -> Run:
        if not self.doc_ids:
            raise RuntimeError("LateInteractionRetriever.search before index() or load()")
        qids = list(queries)
        vectors = self.model.encode([queries[q] for q in qids], is_query=True,
                                    batch_size=self.batch_size)
        run: Run = {}
        for qid, query in zip(qids, tqdm(vectors, desc="search", unit="query",
                                         disable=not self.show_progress)):
            docs = self._candidates(query)
            scores = maxsim_scores(query, *self._token_rows(docs))
            top = np.argsort(-scores, kind="stable")[:k]
            run[qid] = {self.doc_ids[docs[i]]: float(scores[i]) for i in top}
        return run

    def _token_rows(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The token vectors of ``docs`` (sorted positions) and their offsets; every document
        (exhaustive search) is the stored matrix itself, not a copy."""
        if len(docs) == self.num_documents:
            return self.tokens, self.offsets
        rows = np.concatenate([np.arange(self.offsets[d], self.offsets[d + 1]) for d in docs])
        lengths = self.offsets[docs + 1] - self.offsets[docs]
        return self.tokens[rows], np.concatenate([[0], np.cumsum(lengths)])

    def _save_files(self, folder: Path) -> None:
        if not self.doc_ids:
            raise RuntimeError("nothing to save: index() first")
        np.save(folder / "tokens.npy", self.tokens)
        np.save(folder / "offsets.npy", self.offsets)
        (folder / "doc_ids.json").write_text(json.dumps(self.doc_ids))
        if self.store is not None:
            self.store.save(folder / "tokens.faiss")

    @classmethod
    def _load_files(cls, folder: Path, manifest: dict[str, Any],
                    encoder: LateInteractionModel | None = None, **options: Any
                    ) -> LateInteractionRetriever:
        """``encoder``: an already loaded model to query with (it must be the index's)."""
        config = manifest["config"]
        refuse_other_model(folder, manifest, encoder)
        lengths = {"document_length": config["document_length"],
                   "query_length": config["query_length"]}
        retriever = cls(encoder or manifest["model"], pool_factor=config["pool_factor"],
                        token_k=config["token_k"], index_kind=config["index_kind"],
                        model_options=lengths, **options)
        retriever.tokens = np.load(folder / "tokens.npy")
        retriever.offsets = np.load(folder / "offsets.npy")
        retriever.doc_ids = json.loads((folder / "doc_ids.json").read_text())
        if (folder / "tokens.faiss").is_file():
            retriever.store = FaissStore.load(folder / "tokens.faiss")
        else:
            retriever._build_store()
        return retriever
