"""ragsift: the retrieval half of RAG.

Retrieve (BM25, dense, hybrid), evaluate (pytrec_eval metrics, significance tests) and, in later
modules, rerank, train, distill and serve. Everything moves between stages as one of five plain
shapes defined in :mod:`ragsift.types`.

Example:
    >>> from ragsift import Document
    >>> Document("d1", "Paris is the capital of France.", title="Paris").full_text()
    'Paris Paris is the capital of France.'
"""

from ragsift.errors import DataFormatError, ModelNotFoundError, RagsiftError
from ragsift.types import Corpus, Document, Qrels, Queries, Run

__version__ = "0.1.0"

__all__ = [
    "Corpus",
    "DataFormatError",
    "Document",
    "ModelNotFoundError",
    "Qrels",
    "Queries",
    "RagsiftError",
    "Run",
    "__version__",
]
