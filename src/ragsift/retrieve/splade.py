"""Learned sparse retrieval (SPLADE): a :class:`~ragsift.models.splade.SpladeEncoder` plus a
scipy sparse inverted index.

Every document ``d`` becomes a vector of vocabulary term weights ``w(d)`` (mostly zeros), every
query ``q`` too, and ``d`` is scored by the dot product

    s(q, d) = sum_j w_j(q) * w_j(d)

The index is the document-term matrix ``D`` (``n_docs x vocab``, CSR); its transpose in CSR
form (the CSC layout of ``D``: one row of postings per vocabulary term) is the inverted index,
so ``Q @ D^T`` only touches the postings of the terms a query activates. Documents that share
no term with the query (score 0) are not returned, as with BM25.

Saved indexes hold ``documents.npz`` (``D``, written with ``scipy.sparse.save_npz``),
``doc_ids.json`` and the shared ``manifest.json`` naming the model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ragsift.errors import IndexMismatchError
from ragsift.models.splade import SpladeEncoder
from ragsift.retrieve.neural import NeuralRetriever
from ragsift.types import Corpus, Queries, Run


class SparseRetriever(NeuralRetriever):
    """SPLADE retrieval over an exact sparse inverted index; loading the model, the document ids
    and the block loop come from :class:`NeuralRetriever`.

    Args:
        encoder: a :class:`SpladeEncoder`, or a model name/path to load one from.
        block_size: documents encoded together while indexing.
        query_block_size: queries scored together (bounds the ``queries x docs`` score matrix).
        encoder_options: arguments for :meth:`SpladeEncoder.from_pretrained` when ``encoder``
            is a name (``max_length``, ``batch_size``, ``top_k``, ``device``, ...).

    Example:
        >>> splade = SparseRetriever("splade-tiny")  # doctest: +SKIP
        >>> splade.index(corpus); run = splade.search(queries, k=10)  # doctest: +SKIP
    """

    kind = "splade"
    model_class = SpladeEncoder

    def __init__(
        self,
        encoder: SpladeEncoder | str | os.PathLike[str],
        block_size: int = 4096,
        query_block_size: int = 256,
        encoder_options: dict[str, Any] | None = None,
        show_progress: bool = False,
    ) -> None:
        super().__init__(encoder, encoder_options, show_progress)
        self.block_size = block_size
        self.query_block_size = query_block_size
        self.documents: sp.csr_matrix | None = None
        self.postings: sp.csr_matrix | None = None

    def config(self) -> dict[str, Any]:
        return {"max_length": self.encoder.max_length, "top_k": self.encoder.top_k,
                "mask_special_tokens": self.encoder.mask_special_tokens,
                "vocab_size": self.encoder.vocab_size}

    def index(self, corpus: Corpus) -> None:
        """Encode every document (streamed in blocks) into the document-term matrix."""
        blocks = [self.encoder.encode_documents(block)
                  for block in self._blocks(corpus, self.block_size)]
        if blocks:
            matrix = sp.vstack(blocks, format="csr", dtype=np.float32)
        else:
            matrix = sp.csr_matrix((0, self.encoder.vocab_size), dtype=np.float32)
        self._set_documents(matrix)

    def _set_documents(self, matrix: sp.csr_matrix) -> None:
        self.documents = matrix
        self.postings = matrix.T.tocsr()  # vocab x docs: one postings list per term

    def search(self, queries: Queries, k: int = 100) -> Run:
        """The ``k`` highest-scoring documents of each query (score ``w(q) . w(d)`` > 0);
        ties are broken by index order."""
        if self.postings is None:
            raise RuntimeError("SparseRetriever.search before index() or load()")
        qids = list(queries)
        run: Run = {}
        ids = np.asarray(self.doc_ids, dtype=object)
        for start in range(0, len(qids), self.query_block_size):
            chunk = qids[start : start + self.query_block_size]
            weights = self.encoder.encode_queries([queries[q] for q in chunk])
            scores = (weights @ self.postings).tocsr()  # queries x docs, only shared terms
            scores.sort_indices()
            for row, qid in enumerate(chunk):
                span = slice(scores.indptr[row], scores.indptr[row + 1])
                cols, values = _top_k(scores.indices[span], scores.data[span], k)
                run[qid] = dict(zip(ids[cols].tolist(), values.tolist()))
        return run

    def _save_files(self, folder: Path) -> None:
        if self.documents is None:
            raise RuntimeError("nothing to save: index() first")
        sp.save_npz(folder / "documents.npz", self.documents)
        self._write_doc_ids(folder)

    @classmethod
    def _load_files(cls, folder: Path, manifest: dict[str, Any],
                    encoder: SpladeEncoder | None = None, **options: Any) -> SparseRetriever:
        config = manifest["config"]
        encoder = cls._index_model(folder, manifest, encoder, max_length=config["max_length"],
                                   top_k=config["top_k"],
                                   mask_special_tokens=config["mask_special_tokens"])
        retriever = cls(encoder, **options)
        retriever._read_doc_ids(folder)
        matrix = sp.load_npz(folder / "documents.npz").tocsr().astype(np.float32, copy=False)
        if matrix.shape != (retriever.num_documents, encoder.vocab_size):
            raise IndexMismatchError(
                f"{folder}: documents.npz is {matrix.shape[0]} x {matrix.shape[1]}, expected "
                f"{retriever.num_documents} documents x {encoder.vocab_size} terms (a corrupt "
                f"index, or one built with another vocabulary: re-index)"
            )
        retriever._set_documents(matrix)
        return retriever


def _top_k(cols: np.ndarray, values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest positive ``values`` with their ``cols``, by value then column.

    Example:
        >>> _top_k(np.array([4, 1, 7]), np.array([0.5, 2.0, 0.5]), 2)
        (array([1, 4]), array([2. , 0.5]))
    """
    keep = values > 0
    cols, values = cols[keep], values[keep]
    if 0 < k < len(values):  # partition first; keep every tie of the k-th value, sort those
        threshold = np.partition(values, len(values) - k)[len(values) - k]
        keep = values >= threshold
        cols, values = cols[keep], values[keep]
    best = np.lexsort((cols, -values))[: max(k, 0)]
    return cols[best], values[best]
