"""One commit of a collection, opened for reading: its segments side by side as global chunk
rows, which rows are live, where each document is, metadata filters and BM25 statistics.

A snapshot never changes. Searches take the collection's current snapshot and use it to the
end, so a search sees one commit, never a mix of two.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ragsift.collection.lexical import BM25Params, LexicalIndex
from ragsift.collection.manifest import SEGMENTS, Manifest, read_deleted
from ragsift.collection.segment import Segment
from ragsift.retrieve.filters import Filter
from ragsift.types import Document


@dataclass(frozen=True)
class Location:
    """Where a live document is: segment index, document row, first and end chunk rows
    (global)."""

    segment: int
    row: int
    first: int
    end: int


class Snapshot:
    """The read side of one commit (see the module doc)."""

    def __init__(self, folder: Path, manifest: Manifest,
                 previous: Snapshot | None = None) -> None:
        """Open the commit ``manifest`` of the collection in ``folder``; segments that
        ``previous`` (an earlier commit of it) already holds are shared, not read again."""
        self.folder = folder
        self.manifest = manifest
        known = {s.name: s for s in previous.segments} if previous else {}
        self.segments = []
        for entry in manifest.segments:
            segment = known.get(entry.name)
            if segment is None:
                segment = Segment.open(folder / SEGMENTS / entry.name,
                                       read_deleted(folder, entry), entry.deleted)
            elif segment.deleted_file != entry.deleted:
                segment = segment.with_deleted(read_deleted(folder, entry), entry.deleted)
            self.segments.append(segment)
        sizes = [s.num_rows for s in self.segments]
        self.bases = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.num_rows = int(self.bases[-1])
        self.docs = self._locations(previous)

    def _locations(self, previous: Snapshot | None) -> dict[str, Location]:
        """Document id -> location; patched from ``previous`` when this commit only appended
        segments and deleted rows (the common add / delete), else built anew."""
        old = [s.name for s in previous.segments] if previous else []
        if not old or [s.name for s in self.segments[:len(old)]] != old:
            docs: dict[str, Location] = {}
            first_new = 0
        else:
            docs = dict(previous.docs)
            first_new = len(old)
            for before, now in zip(previous.segments, self.segments):
                if before is not now:
                    for row in np.setdiff1d(now.deleted, before.deleted).tolist():
                        docs.pop(now.ids[row], None)
        for index in range(first_new, len(self.segments)):
            segment = self.segments[index]
            offsets = segment.chunks.doc_offsets
            base = int(self.bases[index])
            for row in np.flatnonzero(segment.live_docs).tolist():
                docs[segment.ids[row]] = Location(index, row, base + int(offsets[row]),
                                                  base + int(offsets[row + 1]))
        return docs

    @property
    def generation(self) -> int:
        return self.manifest.generation

    @cached_property
    def live(self) -> np.ndarray:
        """Boolean mask over global rows: the chunk's document is live."""
        if not self.segments:
            return np.zeros(0, dtype=bool)
        return np.concatenate([s.live_rows for s in self.segments])

    @cached_property
    def chunk_ids(self) -> np.ndarray:
        """The int64 chunk id of every global row (the id in the vector store)."""
        if not self.segments:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([s.chunks.chunk_ids for s in self.segments])

    @cached_property
    def doc_keys(self) -> np.ndarray:
        """For each global row, a number shared by the rows of one document."""
        parts, offset = [], 0
        for segment in self.segments:
            parts.append(segment.chunks.doc_of_row + offset)
            offset += segment.num_docs
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    @cached_property
    def _id_order(self) -> np.ndarray:
        return np.argsort(self.chunk_ids, kind="stable")

    def rows_of(self, chunk_ids: np.ndarray) -> np.ndarray:
        """Global rows of ``chunk_ids`` (-1 for ids this commit does not hold)."""
        chunk_ids = np.asarray(chunk_ids, dtype=np.int64)
        if self.num_rows == 0:
            return np.full(chunk_ids.shape, -1, dtype=np.int64)
        sorted_ids = self.chunk_ids[self._id_order]
        pos = np.clip(np.searchsorted(sorted_ids, chunk_ids), 0, self.num_rows - 1)
        rows = self._id_order[pos]
        return np.where(sorted_ids[pos] == chunk_ids, rows, -1)

    def locate(self, row: int) -> tuple[Segment, int, int]:
        """``(segment, document row, chunk row)`` of global ``row``."""
        index = int(np.searchsorted(self.bases, row, side="right") - 1)
        segment = self.segments[index]
        local = row - int(self.bases[index])
        return segment, int(segment.chunks.doc_of_row[local]), local

    def allowed(self, filter: Filter) -> np.ndarray:
        """Boolean mask over global rows: live and passing ``filter``."""
        if not filter:
            return self.live
        masks = [filter.mask(segment.column, segment.num_rows) for segment in self.segments]
        return self.live & (np.concatenate(masks) if masks else np.zeros(0, dtype=bool))

    def lexical(self, params: BM25Params) -> LexicalIndex:
        """BM25 over this commit's live chunks."""
        if getattr(self, "_lexical", None) is None:
            self._lexical = LexicalIndex(self.segments, self.bases, params, self.num_rows)
        return self._lexical

    def document(self, doc_id: str) -> Document | None:
        """The live document ``doc_id`` (texts read from disk), or None."""
        location = self.docs.get(doc_id)
        if location is None:
            return None
        return self.segments[location.segment].document(location.row)

    def chunk_documents(self) -> dict[str, Document]:
        """Every live chunk as the document the indexes read (id ``doc#i``, the chunk's title
        and text): what an index built from scratch would index."""
        out: dict[str, Document] = {}
        for segment in self.segments:
            c = segment.chunks
            rows = np.flatnonzero(segment.live_docs).tolist()
            for row, doc in zip(rows, segment.documents(rows)):
                for i, local in enumerate(range(c.doc_offsets[row], c.doc_offsets[row + 1])):
                    text = doc.text[c.start[local]:c.end[local]]
                    out[f"{doc.id}#{i}"] = Document(f"{doc.id}#{i}", text,
                                                    doc.title[:c.title_len[local]])
        return out


__all__ = ["Location", "Snapshot"]
