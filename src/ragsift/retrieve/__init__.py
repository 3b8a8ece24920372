"""Retrievers: one interface (:class:`Retriever`) over BM25, dense, ColBERT, SPLADE and hybrid
retrieval.

:func:`build_retriever` turns a CLI spec (``bm25``, ``dense:MODEL``, ``hybrid:bm25+dense:MODEL``)
into a retriever; :data:`KINDS` is the table of kinds it reads.
"""

from ragsift.retrieve.base import Retriever
from ragsift.retrieve.bm25 import BM25Retriever
from ragsift.retrieve.colbert import LateInteractionRetriever
from ragsift.retrieve.dense import DenseRetriever
from ragsift.retrieve.fusion import convex, rrf
from ragsift.retrieve.hybrid import HybridRetriever
from ragsift.retrieve.spec import KINDS, RetrieverKind, build_retriever, parse_spec
from ragsift.retrieve.splade import SparseRetriever

__all__ = [
    "KINDS",
    "BM25Retriever",
    "DenseRetriever",
    "HybridRetriever",
    "LateInteractionRetriever",
    "Retriever",
    "RetrieverKind",
    "SparseRetriever",
    "build_retriever",
    "convex",
    "parse_spec",
    "rrf",
]
