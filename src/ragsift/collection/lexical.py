"""BM25 over a collection's segments, with corpus statistics taken over the live chunks at
query time, so that scores after any adds and deletes equal those of an index built from
scratch on the surviving chunks.

With ``N`` live chunks, ``df(t)`` the live chunks containing term ``t``, ``tf`` its count in a
chunk of ``|d|`` terms and ``avgdl`` the mean ``|d|`` over live chunks,
``K = k1 * (1 - b + b * |d| / avgdl)`` and the score of chunk ``d`` for query terms ``q``
(a term repeated in the query counts each time) is ``sum_{t in q} idf(t) * tf_part``:

- ``lucene`` (default): ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``, ``tf_part = tf / (tf + K)``
- ``robertson``: ``idf = ln(max(1, (N - df + 0.5) / (df + 0.5)))``, ``tf_part = tf / (tf + K)``
- ``atire``: ``idf = ln(N / df)``, ``tf_part = tf (k1 + 1) / (tf + K)``

These are bm25s's formulas (the tests compare with bm25s on the same chunks). BM25L and BM25+
give every chunk a score for terms it lacks, which has no meaning for a filtered top k, so
collections do not offer them. Terms are produced by the same tokenizer as
:class:`~ragsift.retrieve.bm25.BM25Retriever` (lower case, ``\\w\\w+``, stopwords, Snowball).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from ragsift.collection.segment import Segment
from ragsift.retrieve.bm25 import make_tokenizer

LEXICAL_METHODS = ("lucene", "robertson", "atire")


@dataclass(frozen=True)
class BM25Params:
    """BM25 settings of a collection (see the module doc)."""

    method: str = "lucene"
    k1: float = 1.5
    b: float = 0.75
    stopwords: str | None = "en"
    stemmer: str | None = "english"

    def __post_init__(self) -> None:
        if self.method not in LEXICAL_METHODS:
            raise ValueError(f"collections support BM25 methods {LEXICAL_METHODS}, "
                             f"not {self.method!r}")

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        """The BM25 terms of each text."""
        tokenizer = make_tokenizer(self.stopwords, self.stemmer)
        return tokenizer.tokenize(list(texts), update_vocab=True, return_as="string",
                                  show_progress=False)

    def idf(self, df: np.ndarray, n: int) -> np.ndarray:
        df = np.asarray(df, dtype=np.float64)
        if self.method == "atire":
            return np.log(n / df)
        inner = (n - df + 0.5) / (df + 0.5)
        if self.method == "robertson":
            return np.log(np.maximum(inner, 1.0))
        return np.log1p(inner)

    def tf_part(self, tf: np.ndarray, norm: np.ndarray) -> np.ndarray:
        """``tf_part`` given ``tf`` and ``K`` (``norm``)."""
        if self.method == "atire":
            return tf * (self.k1 + 1) / (tf + norm)
        return tf / (tf + norm)


def term_matrix(token_lists: Sequence[Sequence[str]]) -> tuple[list[str], sparse.csc_matrix,
                                                               np.ndarray]:
    """``(vocabulary, tf, lengths)`` of tokenized chunks: tf is chunks x vocabulary (CSC)."""
    vocab: dict[str, int] = {}
    rows, cols, counts = [], [], []
    for row, tokens in enumerate(token_lists):
        for term, count in Counter(tokens).items():
            rows.append(row)
            cols.append(vocab.setdefault(term, len(vocab)))
            counts.append(count)
    tf = sparse.csc_matrix((np.asarray(counts, dtype=np.float32), (rows, cols)),
                           shape=(len(token_lists), len(vocab)))
    lengths = np.asarray([len(t) for t in token_lists], dtype=np.int32)
    return list(vocab), tf, lengths


class LexicalIndex:
    """BM25 scores over the live chunks of a list of segments (one commit's view).

    Scores come back over the commit's global rows: segment ``s``'s rows start at
    ``bases[s]``.
    """

    def __init__(self, segments: Sequence[Segment], bases: np.ndarray, params: BM25Params,
                 num_rows: int) -> None:
        self.segments = list(segments)
        self.bases = bases
        self.params = params
        self.num_rows = num_rows
        lengths = [s.chunks.lengths[s.live_rows] for s in self.segments]
        self.n = int(sum(len(x) for x in lengths))
        total = float(sum(x.sum(dtype=np.float64) for x in lengths))
        self.avgdl = total / self.n if self.n else 0.0
        self._df: dict[str, int] = {}
        self._norms: dict[int, np.ndarray] = {}

    def _postings(self, segment: Segment, term: str) -> tuple[np.ndarray, np.ndarray]:
        column = segment.terms.get(term)
        if column is None:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        tf = segment.tf
        start, end = tf.indptr[column], tf.indptr[column + 1]
        return tf.indices[start:end], tf.data[start:end]

    def df(self, term: str) -> int:
        """Live chunks that contain ``term`` (cached for this commit)."""
        if term not in self._df:
            self._df[term] = int(sum(s.live_rows[self._postings(s, term)[0]].sum()
                                     for s in self.segments))
        return self._df[term]

    def _norm(self, index: int) -> np.ndarray:
        if index not in self._norms:
            lengths = self.segments[index].chunks.lengths.astype(np.float64)
            p = self.params
            self._norms[index] = p.k1 * (1 - p.b + p.b * lengths / self.avgdl)
        return self._norms[index]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every global row for ``query`` (0 for rows without a query term;
        deleted rows are scored too, callers mask them)."""
        out = np.zeros(self.num_rows, dtype=np.float64)
        if not self.n:
            return out
        # bm25s turns a text without terms into one empty placeholder token: no query term
        terms = Counter(t for t in self.params.tokenize([query])[0] if t)
        for term, repeats in terms.items():
            df = self.df(term)
            if df == 0:
                continue
            idf = float(self.params.idf(np.asarray([df]), self.n)[0])
            for index, segment in enumerate(self.segments):
                rows, tf = self._postings(segment, term)
                if len(rows):
                    part = self.params.tf_part(tf.astype(np.float64), self._norm(index)[rows])
                    out[self.bases[index] + rows] += repeats * idf * part
        return out

    def stats(self) -> dict[str, Any]:
        """``N`` and ``avgdl`` of this commit."""
        return {"chunks": self.n, "avgdl": self.avgdl}


__all__ = ["BM25Params", "LEXICAL_METHODS", "LexicalIndex", "term_matrix"]
