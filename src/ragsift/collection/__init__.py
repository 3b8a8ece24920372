"""Collections: the user's own documents, fed, updated, deleted from and filtered in place.

``Collection.create(path, retriever="hybrid", embedder="minilm-l6")`` makes one;
``add`` / ``delete`` / ``search`` / ``retrieve_and_rerank`` use it; ``ragsift collection`` is the
command line and ``ragsift serve --collection DIR`` serves it (see docs/collections.md).
"""

from ragsift.collection.collection import AddResult, Collection, Hit
from ragsift.collection.config import CollectionConfig
from ragsift.collection.ingest import load_sources, read_documents
from ragsift.retrieve.filters import Filter

__all__ = ["AddResult", "Collection", "CollectionConfig", "Filter", "Hit", "load_sources",
           "read_documents"]
