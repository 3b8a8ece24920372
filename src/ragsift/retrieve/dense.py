"""Dense retrieval: a :class:`~ragsift.models.BiEncoder` plus a faiss vector store.

A document ``d`` is scored for query ``q`` by ``<E_q(q), E_d(d)>``, the inner product of their
embeddings (cosine similarity when the model's similarity is ``cosine``: vectors are normalised).
Document embeddings are cached on disk by model fingerprint and block content
(:mod:`ragsift.retrieve.embedding_cache`), so re-indexing is free and an interrupted run resumes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ragsift.models.bi_encoder import BiEncoder
from ragsift.retrieve.embedding_cache import EmbeddingCache, default_cache_dir
from ragsift.retrieve.neural import NeuralRetriever
from ragsift.retrieve.vector_store import FaissStore, IndexKind, VectorStore, store_class
from ragsift.types import Corpus, Queries, Run

logger = logging.getLogger(__name__)


class DenseRetriever(NeuralRetriever):
    """Bi-encoder retrieval over a faiss index (or another vector store); loading the model,
    the document ids and the block loop come from :class:`NeuralRetriever`.

    Args:
        encoder: a :class:`BiEncoder`, or a model name/path to load one from.
        index_kind: ``flat`` (exact inner product, default) or ``hnsw``.
        hnsw_m, ef_search: HNSW settings.
        cache_dir: where document embeddings are cached; ``None`` for the default
            (``$RAGSIFT_CACHE_DIR`` or ``~/.cache/ragsift``), ``False`` to disable.
        block_size: documents encoded (and cached) together.
        encoder_options: arguments for :meth:`BiEncoder.from_pretrained` when ``encoder`` is a
            name (``truncate_dim``, ``max_length``, ``batch_size``, ``device``, ...).
        store: an empty :class:`~ragsift.retrieve.vector_store.VectorStore` to index into
            (Milvus, Qdrant, ...; vector ids are corpus positions); default a new faiss store
            of ``index_kind``. Saving writes the store's own pointer (``store.save``) for
            stores other than faiss.

    Example:
        >>> dense = DenseRetriever("minilm-l6")  # doctest: +SKIP
        >>> dense.index(corpus); run = dense.search(queries, k=10)  # doctest: +SKIP
    """

    kind = "dense"
    model_class = BiEncoder

    def __init__(
        self,
        encoder: BiEncoder | str | os.PathLike[str],
        index_kind: IndexKind = "flat",
        hnsw_m: int = 32,
        ef_search: int = 128,
        cache_dir: str | os.PathLike[str] | bool | None = None,
        block_size: int = 4096,
        encoder_options: dict[str, Any] | None = None,
        show_progress: bool = False,
        store: VectorStore | None = None,
    ) -> None:
        super().__init__(encoder, encoder_options, show_progress)
        self.index_kind = index_kind
        self.hnsw_m, self.ef_search = hnsw_m, ef_search
        if cache_dir is None or cache_dir is True:
            cache_dir = default_cache_dir()
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.block_size = block_size
        self._given_store = store
        self.store: VectorStore | None = None

    @property
    def _normalize(self) -> bool:
        return self.encoder.layout.normalize or self.encoder.similarity == "cosine"

    def config(self) -> dict[str, Any]:
        store = self.store or self._given_store
        return {"index_kind": self.index_kind, "hnsw_m": self.hnsw_m, "ef_search": self.ef_search,
                "truncate_dim": self.encoder.truncate_dim, "max_length": self.encoder.max_length,
                "normalize": self._normalize, "store": store.kind if store else "faiss"}

    def _encode_block(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode_documents(texts, normalize=self._normalize)

    def index(self, corpus: Corpus) -> None:
        """Encode every document (streamed in blocks, cached) and add it to a new faiss index."""
        self.store = self._given_store or FaissStore(self.encoder.dim, self.index_kind,
                                                     self.hnsw_m, ef_search=self.ef_search)
        cache = None
        if self.cache_dir:
            cache = EmbeddingCache(self.cache_dir, self.encoder.fingerprint())
        for block in self._blocks(corpus, self.block_size):
            texts = [doc.full_text() for doc in block]
            if cache is None:
                vectors = self._encode_block(texts)
            else:
                vectors = cache.get_or_compute(texts, self._encode_block)
            if isinstance(self.store, FaissStore):
                self.store.add(vectors)
            else:
                start = len(self.doc_ids)
                self.store.upsert(np.arange(start, start + len(vectors)), vectors)
        if cache is not None:
            logger.info("embedding cache %s: %d blocks reused, %d encoded",
                        cache.folder, cache.hits, cache.misses)

    def search(self, queries: Queries, k: int = 100) -> Run:
        if self.store is None:
            raise RuntimeError("DenseRetriever.search before index() or load()")
        qids = list(queries)
        if not qids:
            return {}
        vectors = self.encoder.encode_queries([queries[q] for q in qids],
                                              normalize=self._normalize)
        scores, positions = self.store.search(vectors, k)
        ids = self.doc_ids
        return {
            qid: {ids[p]: float(s) for p, s in zip(row_pos, row_scores) if p >= 0}
            for qid, row_pos, row_scores in zip(qids, positions.tolist(), scores.tolist())
        }

    def _save_files(self, folder: Path) -> None:
        if self.store is None:
            raise RuntimeError("nothing to save: index() first")
        if isinstance(self.store, FaissStore):
            self.store.save(folder / "index.faiss")
        else:
            self.store.save(folder / "store")
        self._write_doc_ids(folder)

    @classmethod
    def _load_files(cls, folder: Path, manifest: dict[str, Any],
                    encoder: BiEncoder | None = None, **options: Any) -> DenseRetriever:
        config = manifest["config"]
        encoder = cls._index_model(folder, manifest, encoder, max_length=config["max_length"],
                                   truncate_dim=config["truncate_dim"])
        retriever = cls(encoder, index_kind=config["index_kind"], hnsw_m=config["hnsw_m"],
                        ef_search=config["ef_search"], **options)
        kind = config.get("store", "faiss")
        if kind == "faiss":
            retriever.store = FaissStore.load(folder / "index.faiss")
            if retriever.store.index_kind == "hnsw":
                retriever.store.index.hnsw.efSearch = config["ef_search"]
        else:
            retriever.store = store_class(kind).load(folder / "store")
        retriever._read_doc_ids(folder)
        return retriever

