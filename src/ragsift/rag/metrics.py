"""Answer metrics of the RAG chain, with the usual (SQuAD / HotpotQA) normalisation.

``normalize(s)``: lower-case, drop punctuation, drop the articles a/an/the, collapse
whitespace. Then:

- exact match: ``EM = [normalize(prediction) == normalize(gold)]``;
- token F1: with ``P`` and ``G`` the multisets of normalised tokens,
  ``precision = |P & G| / |P|``, ``recall = |P & G| / |G|``, ``F1 = 2 p r / (p + r)``
  (0 when nothing is shared);
- supporting-passage recall@k: the share of a question's supporting passages among the first
  ``k`` of a ranking.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """Lower-case, no punctuation, no articles, single spaces.

    Example:
        >>> normalize("The  Eiffel Tower!")
        'eiffel tower'
    """
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0."""
    return float(normalize(prediction) == normalize(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Token-level F1 of the normalised strings (see the module docstring)."""
    predicted, expected = normalize(prediction).split(), normalize(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    shared = sum((Counter(predicted) & Counter(expected)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(expected)
    return 2 * precision * recall / (precision + recall)


def supporting_recall(ranking: Sequence[int], supporting: set[int], k: int,
                      total: int | None = None) -> float:
    """``|ranking[:k] & supporting| / total``: the share of the supporting passages found in the
    first ``k`` of ``ranking``. ``total`` defaults to ``len(supporting)``; open retrieval passes
    the question's number of gold passages, some of which may not have been retrieved at all.
    1.0 when there is none to find.

    Example:
        >>> supporting_recall([3, 0, 1], {0, 7}, k=2), supporting_recall([3, 0], {0}, 2, total=2)
        (0.5, 0.5)
    """
    total = len(supporting) if total is None else total
    if not total:
        return 1.0
    return len(set(ranking[:k]) & supporting) / total
