"""Reading and writing the ecosystem's data formats, with validation that names file, line, field.

- :mod:`ragsift.data.beir`: BEIR folders (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).
- :mod:`ragsift.data.trec`: TREC run and qrels files.
- :mod:`ragsift.data.training`: training jsonl (query/pos/neg rows, or query/docs/scores rows).
- :mod:`ragsift.data.chunking`: token windows over long documents, mapped back to documents.
- :mod:`ragsift.data.download`: BEIR downloads with checksum and atomic unpacking.
"""

from ragsift.data.beir import (
    BeirDataset,
    iter_corpus,
    load_beir,
    load_corpus,
    load_qrels,
    load_queries,
)
from ragsift.data.trec import read_qrels, read_run, write_qrels, write_run

__all__ = [
    "BeirDataset",
    "iter_corpus",
    "load_beir",
    "load_corpus",
    "load_qrels",
    "load_queries",
    "read_qrels",
    "read_run",
    "write_qrels",
    "write_run",
]
