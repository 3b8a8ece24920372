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
from ragsift.data.jsonl import field_list, field_str, read_jsonl
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
    if row.get(b) is not None and row.get(a) is not None and len(row[a]) != len(row[b]):
        raise DataFormatError(
            path, line, b, f"has {len(row[b])} items but {a!r} has {len(row[a])}"
        )


def read_training(path: str | Path) -> Iterator[TrainingExample]:
    """Stream the examples of a training jsonl file, validating every row.

    Raises:
        DataFormatError: bad JSON, a missing ``query``, neither ``pos`` nor ``docs``, lists of the
            wrong type, or score lists whose length differs from their texts.
    """
    number = (int, float)
    for line, row in read_jsonl(path):
        query = field_str(row, "query", path, line)
        if "docs" in row:
            docs = field_list(row, "docs", path, line, str)
            key = "scores" if "scores" in row else "labels"
            scores = field_list(row, key, path, line, number)
            if scores is None:
                raise DataFormatError(
                    path, line, "scores", "a 'docs' row needs 'scores' or 'labels'"
                )
            _same_length(row, "docs", key, path, line)
            yield TrainingExample(query, docs=docs, scores=[float(s) for s in scores])
            continue
        if "pos" not in row:
            raise DataFormatError(path, line, "pos", "missing field (or give 'docs' + 'scores')")
        example = TrainingExample(
            query,
            pos=field_list(row, "pos", path, line, str),
            neg=field_list(row, "neg", path, line, str) or [],
            pos_scores=field_list(row, "pos_scores", path, line, number),
            neg_scores=field_list(row, "neg_scores", path, line, number),
            query_id=row.get("query_id"),
            pos_ids=field_list(row, "pos_ids", path, line, str),
            neg_ids=field_list(row, "neg_ids", path, line, str),
        )
        if not example.pos:
            raise DataFormatError(path, line, "pos", "needs at least one positive")
        for texts, extra in (("pos", "pos_scores"), ("neg", "neg_scores"), ("pos", "pos_ids"),
                             ("neg", "neg_ids")):
            _same_length(row, texts, extra, path, line)
        yield example


def write_training(examples: Iterable[TrainingExample], path: str | Path) -> int:
    """Write examples as jsonl atomically; return how many rows were written."""
    count = 0
    with atomic_file(path) as handle:
        for example in examples:
            handle.write(json.dumps(example.to_json(), ensure_ascii=False) + "\n")
            count += 1
    return count
