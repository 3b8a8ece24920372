"""Merging segments: many small adds leave many small segments; merging keeps their number
logarithmic in the collection's size, so searches stay fast while adds stay cheap.

Policy (:func:`merge_plan`, tiered as in Lucene): a segment's tier is
``floor(log_F(live documents))`` with fan-in ``F = 8``; when a tier holds ``F`` segments they
are merged into one of the next tier. Each document is thus rewritten ``O(log_F N)`` times over
the collection's life. A merge keeps every chunk id, so vector stores need no change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import sparse

from ragsift.collection.segment import ChunkTable, Segment, SegmentData

FAN_IN = 8


def merge_plan(live_docs: Sequence[int], fan_in: int = FAN_IN) -> list[int]:
    """Indexes of the segments to merge now (the lowest full tier), or ``[]``.

    Example:
        >>> merge_plan([5000, 3, 4, 2, 7, 1, 6, 5, 2])
        [1, 2, 3, 4, 5, 6, 7, 8]
        >>> merge_plan([5000, 3, 4])
        []
    """
    tiers: dict[int, list[int]] = {}
    for index, count in enumerate(live_docs):
        tier = int(math.log(max(count, 1), fan_in))
        tiers.setdefault(tier, []).append(index)
    for tier in sorted(tiers):
        if len(tiers[tier]) >= fan_in:
            return tiers[tier]
    return []


def merged_segment(segments: Sequence[Segment]) -> SegmentData:
    """One segment's data holding the live documents of ``segments`` (in order), with their
    chunks, chunk ids, term frequencies and vectors."""
    documents, hashes = [], []
    offsets, fields = [0], {name: [] for name in ("chunk_ids", "start", "end", "title_len",
                                                   "lengths")}
    vocab: dict[str, int] = {}
    tf_parts, vector_parts = [], []
    for segment in segments:
        rows = np.flatnonzero(segment.live_docs)
        documents += segment.documents(rows.tolist())
        hashes += [segment.hashes[r] for r in rows]
        c = segment.chunks
        chunk_rows = c.rows_of(rows)
        counts = (c.doc_offsets[rows + 1] - c.doc_offsets[rows]).tolist()
        for count in counts:
            offsets.append(offsets[-1] + count)
        for name, values in fields.items():
            values.append(getattr(c, name)[chunk_rows])
        columns = np.asarray([vocab.setdefault(t, len(vocab)) for t in segment.terms],
                             dtype=np.int64)
        part = segment.tf[chunk_rows].tocoo()
        tf_parts.append((part.row, columns[part.col], part.data, len(chunk_rows)))
        if (segment.folder / "vectors.npy").is_file():
            vector_parts.append(np.asarray(segment.vectors[chunk_rows]))
    base, rows_all, cols_all, data_all = 0, [], [], []
    for row, col, data, n in tf_parts:
        rows_all.append(row + base)
        cols_all.append(col)
        data_all.append(data)
        base += n
    tf = sparse.csc_matrix((np.concatenate(data_all), (np.concatenate(rows_all),
                                                       np.concatenate(cols_all))),
                           shape=(base, len(vocab)))
    table = ChunkTable(doc_offsets=np.asarray(offsets, dtype=np.int64),
                       **{name: np.concatenate(values) for name, values in fields.items()})
    vectors = np.concatenate(vector_parts) if vector_parts else None
    return SegmentData(documents, hashes, table, list(vocab), tf, vectors)


__all__ = ["FAN_IN", "merge_plan", "merged_segment"]
