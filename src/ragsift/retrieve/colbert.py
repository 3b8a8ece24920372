"""ColBERT first-stage retrieval: token vectors, optional token pooling, candidate generation
by nearest document tokens, exact MaxSim re-scoring.

Index: every document's token vectors (unit vectors of ``embedding_size`` from a
:class:`~ragsift.models.colbert.LateInteractionModel`) stored as float16 in one
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

That is the ``flat`` engine. The ``plaid`` engine (:mod:`ragsift.retrieve.plaid`) stores each
token as a centroid id plus a compressed residual and searches in stages (centroid candidates,
centroid interaction, exact MaxSim on the survivors); ``auto`` (the default) picks ``plaid``
for corpora of at least :data:`PLAID_MIN_DOCUMENTS` documents, where exhaustive MaxSim costs
more than a second per query on a laptop CPU, and ``flat`` below (k-means needs data, and
small corpora are searched exactly in milliseconds).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from ragsift.errors import RagsiftError, UsageError
from ragsift.models.colbert import LateInteractionModel
from ragsift.retrieve.neural import NeuralRetriever
from ragsift.retrieve.plaid import PlaidIndex, token_ranges
from ragsift.retrieve.vector_store import FaissStore, IndexKind
from ragsift.types import Corpus, Queries, Run

logger = logging.getLogger(__name__)

Engine = Literal["auto", "flat", "plaid"]
#: ``engine="auto"`` uses PLAID from this many documents on (SciFact's 5,183 documents: flat
#: exhaustive MaxSim ~1 s per query on 2 cores, PLAID tens of milliseconds).
PLAID_MIN_DOCUMENTS = 1000


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


class LateInteractionRetriever(NeuralRetriever):
    """ColBERT retrieval (see the module docstring); loading the model and the document ids
    come from :class:`NeuralRetriever`, whose ``encoder`` is the model (also :attr:`model`).

    Args:
        model: a :class:`LateInteractionModel`, or a folder / packaged name / hub id.
        pool_factor: token pooling factor at indexing time (1: none).
        token_k: document tokens retrieved per query token for candidates (None: exhaustive).
        index_kind: faiss index over tokens, ``flat`` (exact) or ``hnsw``.
        engine: ``flat`` (token matrix + ``token_k`` candidates), ``plaid`` (centroids,
            compressed residuals, staged search) or ``auto`` (``plaid`` from
            :data:`PLAID_MIN_DOCUMENTS` documents on).
        nprobe: plaid: centroids probed per query token.
        ncandidates: plaid: documents kept after candidate generation (a quarter of them, at
            least ``k``, reach exact MaxSim).
        residual_bits: plaid: bits per dimension of the stored residuals (4 or 8), or None
            to keep exact float16 vectors.
        num_centroids: plaid: k-means centroids (default: ``default_centroids`` of the
            token count).
        batch_size: texts per encoder batch.
        model_options: settings for :meth:`LateInteractionModel.from_pretrained` when ``model``
            is a name (e.g. ``document_length``).
    """

    kind = "colbert"
    model_class = LateInteractionModel

    def __init__(self, model: LateInteractionModel | str | os.PathLike[str], pool_factor: int = 1,
                 token_k: int | None = 64, index_kind: IndexKind = "flat", engine: Engine = "auto",
                 nprobe: int = 4, ncandidates: int = 1024, residual_bits: int | None = 8,
                 num_centroids: int | None = None, batch_size: int = 32,
                 model_options: dict[str, Any] | None = None, show_progress: bool = False
                 ) -> None:
        if pool_factor < 1:
            raise UsageError(f"pool_factor must be >= 1, got {pool_factor}")
        if engine not in ("auto", "flat", "plaid"):
            raise UsageError(f"unknown ColBERT engine {engine!r}; choose auto, flat or plaid")
        if nprobe < 1 or ncandidates < 1:
            raise UsageError(f"nprobe and ncandidates must be >= 1, got {nprobe} and "
                             f"{ncandidates}")
        super().__init__(model, model_options, show_progress)
        self.pool_factor = pool_factor
        self.token_k = token_k
        self.index_kind = index_kind
        self.engine = engine
        self.nprobe = nprobe
        self.ncandidates = ncandidates
        self.residual_bits = residual_bits
        self.num_centroids = num_centroids
        self.batch_size = batch_size
        self.tokens = np.zeros((0, self.encoder.embedding_size), dtype=np.float16)
        self.offsets = np.zeros(1, dtype=np.int64)
        self.store: FaissStore | None = None
        self.plaid: PlaidIndex | None = None

    @property
    def model(self) -> LateInteractionModel:
        """The ColBERT model (the same object as ``encoder``)."""
        return self.encoder

    @property
    def num_tokens(self) -> int:
        """Token vectors stored (after pooling)."""
        return self.plaid.num_tokens if self.plaid is not None else len(self.tokens)

    @property
    def index_bytes(self) -> int:
        """Bytes of the index: flat, the token vectors and offsets (the faiss token index comes
        on top); plaid, everything it holds."""
        if self.plaid is not None:
            return self.plaid.nbytes
        return int(self.tokens.nbytes + self.offsets.nbytes)

    def config(self) -> dict[str, Any]:
        return {"pool_factor": self.pool_factor, "token_k": self.token_k,
                "index_kind": self.index_kind, "engine": self.engine, "nprobe": self.nprobe,
                "ncandidates": self.ncandidates, "residual_bits": self.residual_bits,
                "num_centroids": self.num_centroids,
                "document_length": self.encoder.config.document_length,
                "query_length": self.encoder.config.query_length}

    def index(self, corpus: Corpus) -> None:
        """Encode, pool and store every document's token vectors; build the token index."""
        self.index_vectors(list(corpus), self._encode_documents(corpus))

    def add(self, corpus: Corpus) -> None:
        """Encode and append documents to the index (see :meth:`add_vectors`)."""
        self.add_vectors(list(corpus), self._encode_documents(corpus))

    def _encode_documents(self, corpus: Corpus) -> list[np.ndarray]:
        texts = [doc.full_text() for doc in corpus.values()]
        budget = self.encoder.document_token_budget()
        truncated = sum(len(ids) > budget for ids in self.encoder.tokenizer(
            texts, add_special_tokens=False, verbose=False)["input_ids"])
        if truncated:
            logger.warning("%d of %d documents are longer than the model's %d-token document "
                           "length; their tail is not indexed", truncated, len(texts),
                           self.encoder.config.document_length)
        return self.encoder.encode(texts, is_query=False, batch_size=self.batch_size,
                                   show_progress=self.show_progress)

    def _pool(self, vectors: list[np.ndarray]) -> list[np.ndarray]:
        return [pool_tokens(v, self.pool_factor) for v in tqdm(
            vectors, desc="pool tokens", unit="doc",
            disable=not self.show_progress or self.pool_factor == 1)]

    def index_vectors(self, doc_ids: list[str], vectors: list[np.ndarray]) -> None:
        """Index already encoded documents: ``vectors[i]`` is the ``(n_i, D)`` token matrix of
        ``doc_ids[i]`` (as :meth:`LateInteractionModel.encode` returns), pooled here.
        ``engine="auto"`` is resolved here from the number of documents."""
        _check_unique(doc_ids, [])
        pooled = self._pool(vectors)
        if self.engine == "auto":
            self.engine = "plaid" if len(doc_ids) >= PLAID_MIN_DOCUMENTS else "flat"
        self.doc_ids = []
        self.tokens = np.zeros((0, self.encoder.embedding_size), dtype=np.float16)
        self.offsets = np.zeros(1, dtype=np.int64)
        self.plaid = None
        if self.engine == "plaid":
            self.plaid = PlaidIndex.train(pooled, self.residual_bits, self.num_centroids)
        self._append(doc_ids, pooled)

    def add_vectors(self, doc_ids: list[str], vectors: list[np.ndarray]) -> None:
        """Append already encoded documents to a built index. ``plaid`` assigns their tokens
        to the existing centroids (it logs a warning when a rebuild is advised, see
        :attr:`PlaidIndex.rebuild_advised`); ``flat`` appends the vectors and rebuilds its
        token index. The result equals indexing everything at once with the same centroids.

        Raises:
            RagsiftError: an id that is already indexed or repeated.
        """
        if not self.doc_ids:
            raise RuntimeError("LateInteractionRetriever.add before index() or load()")
        _check_unique(doc_ids, self.doc_ids)
        self._append(doc_ids, self._pool(vectors))

    def _append(self, doc_ids: list[str], pooled: list[np.ndarray]) -> None:
        self.doc_ids.extend(doc_ids)
        if self.plaid is not None:
            self.plaid.add(pooled)
            return
        lengths = np.array([len(v) for v in pooled], dtype=np.int64)
        self.offsets = np.concatenate([self.offsets, self.offsets[-1] + np.cumsum(lengths)])
        self.tokens = np.concatenate([self.tokens, *pooled]).astype(np.float16)
        self._build_store()

    def _build_store(self) -> None:
        self.store = None
        if self.token_k is not None:
            self.store = FaissStore(self.encoder.embedding_size, self.index_kind)
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
        vectors = self.encoder.encode([queries[q] for q in qids], is_query=True,
                                    batch_size=self.batch_size)
        run: Run = {}
        # exhaustive flat search converts the float16 matrix once per call, not per query
        tokens = self.tokens.astype(np.float32) if self.plaid is None and self.store is None \
            else self.tokens
        for qid, query in zip(qids, tqdm(vectors, desc="search", unit="query",
                                         disable=not self.show_progress)):
            if self.plaid is not None:
                docs, scores = self.plaid.search(query, k, self.nprobe, self.ncandidates)
                run[qid] = {self.doc_ids[d]: float(s) for d, s in zip(docs, scores)}
                continue
            docs = self._candidates(query)
            scores = maxsim_scores(query, *self._token_rows(docs, tokens))
            top = np.argsort(-scores, kind="stable")[:k]
            run[qid] = {self.doc_ids[docs[i]]: float(scores[i]) for i in top}
        return run

    def _token_rows(self, docs: np.ndarray, tokens: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        """The rows of ``tokens`` (the stored matrix, maybe converted) of ``docs`` (sorted
        positions) and their offsets; every document is the matrix itself, not a copy."""
        if len(docs) == self.num_documents:
            return tokens, self.offsets
        rows, local = token_ranges(self.offsets, docs)
        return tokens[rows], local

    def _save_files(self, folder: Path) -> None:
        if not self.doc_ids:
            raise RuntimeError("nothing to save: index() first")
        self._write_doc_ids(folder)
        if self.plaid is not None:
            self.plaid.save(folder)
            return
        np.save(folder / "tokens.npy", self.tokens)
        np.save(folder / "offsets.npy", self.offsets)
        if self.store is not None:
            self.store.save(folder / "tokens.faiss")

    @classmethod
    def _load_files(cls, folder: Path, manifest: dict[str, Any],
                    encoder: LateInteractionModel | None = None, **options: Any
                    ) -> LateInteractionRetriever:
        """``encoder``: an already loaded model to query with (it must be the index's)."""
        config = manifest["config"]
        encoder = cls._index_model(folder, manifest, encoder,
                                   document_length=config["document_length"],
                                   query_length=config["query_length"])
        settings = {key: config[key] for key in ("pool_factor", "token_k", "index_kind", "engine",
                                                 "nprobe", "ncandidates", "residual_bits",
                                                 "num_centroids") if key in config}
        retriever = cls(encoder, **{**settings, **options})
        retriever._read_doc_ids(folder)
        if retriever.engine == "plaid":
            retriever.plaid = PlaidIndex.load(folder, config["residual_bits"])
            return retriever
        retriever.tokens = np.load(folder / "tokens.npy")
        retriever.offsets = np.load(folder / "offsets.npy")
        if (folder / "tokens.faiss").is_file():
            retriever.store = FaissStore.load(folder / "tokens.faiss")
        else:
            retriever._build_store()
        return retriever


def _check_unique(doc_ids: list[str], indexed: list[str]) -> None:
    """Raise :class:`RagsiftError` for a repeated id or one already in ``indexed``."""
    seen = set(indexed)
    for doc_id in doc_ids:
        if doc_id in seen:
            raise RagsiftError(f"document id {doc_id!r} is already indexed or repeated; ids "
                               f"must be unique")
        seen.add(doc_id)
