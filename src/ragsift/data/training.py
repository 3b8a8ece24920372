"""Training jsonl: the rows that ``ragsift train`` reads and ``ragsift mine``/``label`` write.

Two row layouts are accepted:

- groups: ``{"query", "pos": [...], "neg": [...], "pos_scores"?, "neg_scores"?,
  "query_id"?, "pos_ids"?, "neg_ids"?}``
- scored lists: ``{"query", "docs": [...], "labels" | "scores": [...]}``

Both become :class:`TrainingExample`; a scored list keeps its documents in ``docs``/``scores``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragsift.atomic import atomic_file
from ragsift.data.jsonl import (
    field_id_list,
    field_list,
    field_numbers,
    field_str,
    optional_id,
    read_jsonl,
)
from ragsift.errors import DataFormatError


@dataclass
class TrainingExample:
    """One query with its positives/negatives (and optional teacher scores), or a scored list.

    Example:
        >>> TrainingExample("q", pos=["good"], neg=["bad"]).to_json()
        {'query': 'q', 'pos': ['good'], 'neg': ['bad']}
    """

    query: str
    pos: list[str] = field(default_factory=list)
    neg: list[str] = field(default_factory=list)
    pos_scores: list[float] | None = None
    neg_scores: list[float] | None = None
    docs: list[str] | None = None
    scores: list[float] | None = None
    query_id: str | None = None
    pos_ids: list[str] | None = None
    neg_ids: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        """The jsonl row, without the fields that are unset."""
        row: dict[str, Any] = {"query": self.query}
        if self.docs is not None:
            row["docs"] = self.docs
            row["scores"] = self.scores
        else:
            row["pos"] = self.pos
            row["neg"] = self.neg
        for name in ("pos_scores", "neg_scores", "query_id", "pos_ids", "neg_ids"):
            value = getattr(self, name)
            if value is not None:
                row[name] = value
        return row


def _same_length(row: dict, a: str, b: str, path: str | Path, line: int) -> None:
    """Raise when list ``b`` (scores or ids of the texts in ``a``) is given and its length
    differs from that of ``a`` (an absent ``a`` counts as empty)."""
    if row.get(b) is None:
        return
    texts = row.get(a) or []
    if len(texts) != len(row[b]):
        raise DataFormatError(path, line, b, f"has {len(row[b])} items but {a!r} has "
                                             f"{len(texts)}")


def _query(row: dict[str, Any], path: str | Path, line: int) -> str:
    """The row's ``query``: a string with some non-blank text."""
    query = field_str(row, "query", path, line)
    if not query.strip():
        raise DataFormatError(path, line, "query", "empty query")
    return query


def _scored_list(row: dict[str, Any], query: str, path: str | Path,
                 line: int) -> TrainingExample:
    """A ``docs`` + ``scores``/``labels`` row (at least one document, finite scores)."""
    docs = field_list(row, "docs", path, line, str)
    if not docs:
        raise DataFormatError(path, line, "docs", "needs at least one document")
    key = "scores" if "scores" in row else "labels"
    scores = field_numbers(row, key, path, line)
    if scores is None:
        raise DataFormatError(path, line, "scores", "a 'docs' row needs 'scores' or 'labels'")
    field_id_list(row, "doc_ids", path, line)
    for extra in (key, "doc_ids"):
        _same_length(row, "docs", extra, path, line)
    return TrainingExample(query, docs=docs, scores=scores,
                           query_id=optional_id(row, "query_id", path, line))


def _group(row: dict[str, Any], query: str, path: str | Path, line: int) -> TrainingExample:
    """A ``pos``/``neg`` row (at least one positive; finite teacher scores; valid ids)."""
    if "pos" not in row:
        raise DataFormatError(path, line, "pos", "missing field (or give 'docs' + 'scores')")
    example = TrainingExample(
        query,
        pos=field_list(row, "pos", path, line, str),
        neg=field_list(row, "neg", path, line, str) or [],
        pos_scores=field_numbers(row, "pos_scores", path, line),
        neg_scores=field_numbers(row, "neg_scores", path, line),
        query_id=optional_id(row, "query_id", path, line),
        pos_ids=field_id_list(row, "pos_ids", path, line),
        neg_ids=field_id_list(row, "neg_ids", path, line),
    )
    if not example.pos:
        raise DataFormatError(path, line, "pos", "needs at least one positive")
    for texts, extra in (("pos", "pos_scores"), ("neg", "neg_scores"), ("pos", "pos_ids"),
                         ("neg", "neg_ids")):
        _same_length(row, texts, extra, path, line)
    return example


def read_training(path: str | Path) -> Iterator[TrainingExample]:
    """Stream the examples of a training jsonl file, validating every row.

    Raises:
        DataFormatError: bad UTF-8 or JSON, a missing or empty ``query``, neither ``pos`` nor
            ``docs``, an empty ``pos`` or ``docs``, lists of the wrong type, NaN/infinite
            scores, ids that are not strings of one word, or score/id lists whose length
            differs from their texts.
    """
    for line, row in read_jsonl(path):
        query = _query(row, path, line)
        if "docs" in row:
            yield _scored_list(row, query, path, line)
        else:
            yield _group(row, query, path, line)


def write_training(examples: Iterable[TrainingExample], path: str | Path) -> int:
    """Write examples as jsonl atomically; return how many rows were written."""
    count = 0
    with atomic_file(path) as handle:
        for example in examples:
            handle.write(json.dumps(example.to_json(), ensure_ascii=False) + "\n")
            count += 1
    return count
