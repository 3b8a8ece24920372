"""Question-answering rows for the RAG chain: a question, its gold answer and candidate
paragraphs (the layout of ``../shared/datasets/hotpotqa/*.jsonl``)::

    {"id", "question", "answer", "paragraphs": [{"title", "text", "is_supporting"}], ...}

Other fields (``type``, ``level``) are kept in :attr:`QAExample.extra`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragsift.data.jsonl import field_id, field_str, read_jsonl
from ragsift.errors import DataFormatError


@dataclass(frozen=True)
class Paragraph:
    """A candidate passage; ``is_supporting`` marks the gold evidence."""

    title: str
    text: str
    is_supporting: bool = False

    def full_text(self) -> str:
        """``title + ": " + text`` (the title matters for multi-hop questions)."""
        return f"{self.title}: {self.text}" if self.title else self.text


@dataclass
class QAExample:
    """One question with its gold answer and candidate paragraphs."""

    id: str
    question: str
    answer: str
    paragraphs: list[Paragraph]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def supporting(self) -> set[int]:
        """Indices of the supporting paragraphs."""
        return {i for i, p in enumerate(self.paragraphs) if p.is_supporting}


def load_qa(path: str | Path) -> list[QAExample]:
    """Read a QA jsonl file, validating every row.

    Raises:
        DataFormatError: bad JSON, a missing or mistyped field, a duplicate id, by file, line
            and field (``paragraphs[3].text``).
    """
    examples: list[QAExample] = []
    seen: set[str] = set()
    for line, row in read_jsonl(path):
        qid = field_id(row, "id", path, line)
        if qid in seen:
            raise DataFormatError(path, line, "id", f"duplicate id {qid!r}")
        seen.add(qid)
        raw = row.get("paragraphs")
        if not isinstance(raw, list) or not raw:
            raise DataFormatError(path, line, "paragraphs", "expected a non-empty list")
        paragraphs = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise DataFormatError(path, line, f"paragraphs[{i}]", "expected an object")
            supporting = item.get("is_supporting", False)
            if not isinstance(supporting, bool):
                raise DataFormatError(path, line, f"paragraphs[{i}].is_supporting",
                                      "expected true or false")
            paragraphs.append(Paragraph(
                field_str(item, "title", path, line, default=""),
                _nested_str(item, "text", f"paragraphs[{i}].text", path, line), supporting))
        extra = {k: v for k, v in row.items()
                 if k not in ("id", "question", "answer", "paragraphs")}
        examples.append(QAExample(qid, field_str(row, "question", path, line),
                                  field_str(row, "answer", path, line), paragraphs, extra))
    return examples


def _nested_str(item: dict, key: str, name: str, path: str | Path, line: int) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise DataFormatError(path, line, name, "expected a string")
    return value
