"""Segments: the immutable building blocks of a collection, written once and never changed.

A segment is a folder holding a batch of documents, their chunks and everything the indexes
need for them::

    seg-000004/
      index.json      {"ids": [...], "hashes": [...], "metadata": [...]}   one entry per document
      docs.jsonl      {"title", "text"} per document; offsets.npy: byte offset of each line (+ end)
      chunks.npz      doc_offsets (docs + 1), chunk_ids (int64), start, end (character spans in
                      the text), title_len (characters of the title each chunk carries),
                      lengths (BM25 tokens per chunk)
      terms.json      the segment's vocabulary (BM25 terms, stemmed);  tf.npz: a CSC matrix
                      chunks x terms of term frequencies
      vectors.npy     float32 (chunks, dim) embeddings (dense and hybrid collections)

Document ``r``'s chunks are rows ``doc_offsets[r] : doc_offsets[r + 1]``. Deleting a document
never touches the segment: the collection's manifest names a deletion file (a sorted array of
document rows) per segment, so that a commit writes only what it changes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from ragsift.atomic import atomic_dir
from ragsift.retrieve.filters import Column
from ragsift.types import Document


def content_hash(doc: Document) -> str:
    """A digest of everything a document holds; equal digests mean an upsert changes nothing."""
    payload = json.dumps([doc.title, doc.text, dict(doc.metadata)], sort_keys=True,
                         ensure_ascii=False)
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=16).hexdigest()


@dataclass
class ChunkTable:
    """Chunks of a batch of documents, in document order (see the module doc)."""

    doc_offsets: np.ndarray
    chunk_ids: np.ndarray
    start: np.ndarray
    end: np.ndarray
    title_len: np.ndarray
    lengths: np.ndarray

    def rows_of(self, doc_rows: np.ndarray) -> np.ndarray:
        """The chunk rows of the given document rows, concatenated."""
        if len(doc_rows) == 0:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.arange(self.doc_offsets[r], self.doc_offsets[r + 1])
                               for r in doc_rows])

    @cached_property
    def doc_of_row(self) -> np.ndarray:
        """For each chunk row, its document row."""
        return np.repeat(np.arange(len(self.doc_offsets) - 1), np.diff(self.doc_offsets))


@dataclass
class SegmentData:
    """Everything a new segment holds, built in memory by the collection before it is written."""

    documents: list[Document]
    hashes: list[str]
    chunks: ChunkTable
    terms: list[str]
    tf: sparse.csc_matrix
    vectors: np.ndarray | None = None

    def write(self, folder: Path) -> None:
        """Write the segment to ``folder`` atomically (a temp folder renamed into place)."""
        with atomic_dir(folder) as tmp:
            index = {"ids": [d.id for d in self.documents], "hashes": self.hashes,
                     "metadata": [dict(d.metadata) for d in self.documents]}
            (tmp / "index.json").write_text(json.dumps(index, ensure_ascii=False),
                                            encoding="utf-8")
            offsets = [0]
            with open(tmp / "docs.jsonl", "wb") as out:
                for doc in self.documents:
                    line = json.dumps({"title": doc.title, "text": doc.text},
                                      ensure_ascii=False).encode("utf-8") + b"\n"
                    out.write(line)
                    offsets.append(offsets[-1] + len(line))
            np.save(tmp / "offsets.npy", np.asarray(offsets, dtype=np.int64))
            c = self.chunks
            np.savez(tmp / "chunks.npz", doc_offsets=c.doc_offsets, chunk_ids=c.chunk_ids,
                     start=c.start, end=c.end, title_len=c.title_len, lengths=c.lengths)
            (tmp / "terms.json").write_text(json.dumps(self.terms, ensure_ascii=False),
                                            encoding="utf-8")
            sparse.save_npz(tmp / "tf.npz", self.tf, compressed=False)
            if self.vectors is not None:
                np.save(tmp / "vectors.npy", self.vectors)
            _sync(tmp)


def _sync(folder: Path) -> None:
    """Flush every file of ``folder`` and the folder itself to disk, so that a commit that
    names it survives a power loss, not only a killed process."""
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass
class Segment:
    """A segment read back from disk (documents' texts stay on disk until asked for).

    ``deleted`` holds the deleted document rows of the commit this segment was opened in,
    read from the file ``deleted_file``.
    """

    folder: Path
    ids: list[str]
    hashes: list[str]
    metadata: list[dict[str, Any]]
    chunks: ChunkTable
    deleted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    deleted_file: str | None = None
    _columns: dict[str, Column] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, folder: Path, deleted: np.ndarray | None = None,
             deleted_file: str | None = None) -> Segment:
        """Read the segment in ``folder`` with the given deleted document rows."""
        index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        with np.load(folder / "chunks.npz") as arrays:
            chunks = ChunkTable(**{name: arrays[name] for name in arrays.files})
        segment = cls(folder, index["ids"], index["hashes"], index["metadata"], chunks)
        return segment.with_deleted(deleted, deleted_file)

    def with_deleted(self, deleted: np.ndarray | None, deleted_file: str | None) -> Segment:
        """This segment as of another commit: other deleted rows, everything else shared
        (loaded term frequencies, vectors and metadata columns included)."""
        other = copy.copy(self)
        other.__dict__.pop("live_docs", None)
        other.__dict__.pop("live_rows", None)
        other.deleted = (np.zeros(0, dtype=np.int64) if deleted is None
                         else np.asarray(deleted, dtype=np.int64))
        other.deleted_file = deleted_file
        return other

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def num_docs(self) -> int:
        return len(self.ids)

    @property
    def num_rows(self) -> int:
        return len(self.chunks.chunk_ids)

    @cached_property
    def live_docs(self) -> np.ndarray:
        """Boolean mask over document rows: not deleted."""
        live = np.ones(self.num_docs, dtype=bool)
        live[self.deleted] = False
        return live

    @cached_property
    def live_rows(self) -> np.ndarray:
        """Boolean mask over chunk rows: their document is not deleted."""
        return self.live_docs[self.chunks.doc_of_row] if self.num_rows else np.zeros(0, bool)

    @cached_property
    def terms(self) -> dict[str, int]:
        """Term -> column of :attr:`tf`."""
        terms = json.loads((self.folder / "terms.json").read_text(encoding="utf-8"))
        return {term: i for i, term in enumerate(terms)}

    @cached_property
    def tf(self) -> sparse.csc_matrix:
        """Term frequencies, chunks x terms (CSC: a term's postings are one column)."""
        return sparse.load_npz(self.folder / "tf.npz").tocsc()

    @cached_property
    def vectors(self) -> np.ndarray:
        """The chunk embeddings (memory-mapped)."""
        return np.load(self.folder / "vectors.npy", mmap_mode="r")

    def column(self, name: str) -> Column:
        """The metadata field ``name`` over chunk rows (a chunk has its document's metadata)."""
        if name not in self._columns:
            per_doc = [meta.get(name) for meta in self.metadata]
            values = [per_doc[r] for r in self.chunks.doc_of_row]
            self._columns[name] = Column(values)
        return self._columns[name]

    @cached_property
    def offsets(self) -> np.ndarray:
        """Byte offset of each document's line in ``docs.jsonl`` (and of the end)."""
        return np.load(self.folder / "offsets.npy")

    def document(self, row: int) -> Document:
        """Document ``row`` with its text, read from disk."""
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        with open(self.folder / "docs.jsonl", "rb") as handle:
            handle.seek(start)
            body = json.loads(handle.read(end - start))
        return Document(self.ids[row], body["text"], body["title"], self.metadata[row])

    def documents(self, rows: Sequence[int] | None = None) -> list[Document]:
        """Documents ``rows`` (default: every live one), texts included, in row order."""
        if rows is None:
            rows = np.flatnonzero(self.live_docs).tolist()
        wanted = set(rows)
        out = []
        with open(self.folder / "docs.jsonl", encoding="utf-8") as handle:
            for row, line in enumerate(handle):
                if row in wanted:
                    body = json.loads(line)
                    out.append(Document(self.ids[row], body["text"], body["title"],
                                        self.metadata[row]))
        return out


__all__ = ["ChunkTable", "Segment", "SegmentData", "content_hash"]
