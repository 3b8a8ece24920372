"""Retrievers: one interface (:class:`Retriever`) over BM25, dense, ColBERT and hybrid retrieval.

:func:`build_retriever` turns a CLI spec (``bm25``, ``dense:MODEL``, ``hybrid:bm25+dense:MODEL``)
into a retriever.
"""

from ragsift.retrieve.base import Retriever
from ragsift.retrieve.bm25 import BM25Retriever
from ragsift.retrieve.dense import DenseRetriever
from ragsift.retrieve.fusion import convex, rrf
from ragsift.retrieve.hybrid import HybridRetriever
from ragsift.retrieve.late_interaction import LateInteractionRetriever
from ragsift.retrieve.sparse import SparseRetriever
from ragsift.retrieve.spec import build_retriever, parse_spec

__all__ = [
    "BM25Retriever",
    "DenseRetriever",
    "HybridRetriever",
    "LateInteractionRetriever",
    "Retriever",
    "SparseRetriever",
    "build_retriever",
    "convex",
    "parse_spec",
    "rrf",
]
