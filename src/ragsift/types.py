"""The five shapes that move between ragsift's stages, and small helpers over them.

| shape     | type                          | meaning                                   |
|-----------|-------------------------------|-------------------------------------------|
| Corpus    | Mapping[str, Document]        | doc id -> Document                        |
| Queries   | Mapping[str, str]             | query id -> query text                    |
| Qrels     | dict[str, dict[str, int]]     | query id -> doc id -> graded relevance    |
| Run       | dict[str, dict[str, float]]   | query id -> doc id -> score (a ranking)   |

They are the shapes BEIR and pytrec_eval use, so any stage can be saved, swapped and evaluated.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias


@dataclass(frozen=True)
class Document:
    """One retrievable unit: an id, its text, an optional title and free metadata.

    Example:
        >>> Document("d1", "body", title="Title").full_text()
        'Title body'
    """

    id: str
    text: str
    title: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def full_text(self, separator: str = " ") -> str:
        """Title and text joined by ``separator`` (the text alone when there is no title).

        This is how BEIR feeds documents to BM25 and to bi-encoders.
        """
        return f"{self.title}{separator}{self.text}" if self.title else self.text


Corpus: TypeAlias = Mapping[str, Document]
Queries: TypeAlias = Mapping[str, str]
Qrels: TypeAlias = dict[str, dict[str, int]]
Run: TypeAlias = dict[str, dict[str, float]]


def ranked(scores: Mapping[str, float], k: int | None = None) -> list[tuple[str, float]]:
    """The (doc id, score) pairs of one query, best first, at most ``k`` of them.

    Ties are broken by doc id, ascending, so rankings are deterministic.

    Example:
        >>> ranked({"a": 1.0, "b": 3.0, "c": 3.0})
        [('b', 3.0), ('c', 3.0), ('a', 1.0)]
    """
    key = lambda item: (-item[1], item[0])  # noqa: E731
    if k is None or k >= len(scores):
        return sorted(scores.items(), key=key)
    return heapq.nsmallest(k, scores.items(), key=key)


def top_k(run: Run, k: int) -> Run:
    """A copy of ``run`` that keeps the ``k`` best documents of each query.

    Example:
        >>> top_k({"q": {"a": 1.0, "b": 2.0}}, 1)
        {'q': {'b': 2.0}}
    """
    return {qid: dict(ranked(scores, k)) for qid, scores in run.items()}


def restrict(run: Run, query_ids: Iterable[str]) -> Run:
    """The part of ``run`` whose query ids are in ``query_ids``."""
    wanted = set(query_ids)
    return {qid: scores for qid, scores in run.items() if qid in wanted}
