"""In-process vector search with faiss: exact inner product (default) or HNSW.

Scores are inner products ``<q, d>``; with normalised vectors that is cosine similarity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import faiss
import numpy as np

IndexKind = Literal["flat", "hnsw"]


class FaissStore:
    """A faiss index over float32 vectors, searched by inner product.

    Args:
        dim: vector size.
        kind: ``flat`` (exact, brute force) or ``hnsw`` (approximate graph search).
        hnsw_m: HNSW neighbours per node. ``ef_construction`` / ``ef_search``: HNSW beam widths.

    Example:
        >>> store = FaissStore(2)
        >>> store.add(np.array([[1, 0], [0, 1]], dtype=np.float32))
        >>> store.search(np.array([[0.2, 0.9]], dtype=np.float32), k=1)[1].tolist()
        [[1]]
    """

    def __init__(self, dim: int, kind: IndexKind = "flat", hnsw_m: int = 32,
                 ef_construction: int = 200, ef_search: int = 128) -> None:
        if kind == "flat":
            self.index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            self.index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efConstruction = ef_construction
            self.index.hnsw.efSearch = ef_search
        else:
            raise ValueError(f"unknown index kind {kind!r}; choose 'flat' or 'hnsw'")
        self.kind = kind

    @property
    def size(self) -> int:
        """How many vectors are stored."""
        return int(self.index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        """Append ``vectors`` (n, dim); they get the next positions 0, 1, 2, ..."""
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, positions)``, each (n_queries, k'), best first; ``k' = min(k, size)``.

        HNSW may find fewer than ``k'`` neighbours; missing slots have position -1.
        """
        k = min(k, self.size)
        if k == 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def save(self, path: Path) -> None:
        """Write the index to the file ``path``."""
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path) -> FaissStore:
        """Read an index written by :meth:`save`."""
        store = cls.__new__(cls)
        store.index = faiss.read_index(str(path))
        store.kind = "hnsw" if isinstance(store.index, faiss.IndexHNSW) else "flat"
        return store
