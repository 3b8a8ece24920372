"""BM25 over bm25s: its variants, stemming (PyStemmer) and stopwords, behind :class:`Retriever`.

For a query ``q`` and document ``d`` of length ``|d|`` (average ``avgdl``), every variant scores
``sum_{t in q} idf(t) * tf_part(tf(t, d), |d|)``; with ``K = k1 * (1 - b + b * |d| / avgdl)``:

- ``lucene`` (default): ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``, ``tf_part = tf / (tf + K)``
  (Lucene drops Robertson's constant ``(k1 + 1)``; rankings are the same)
- ``robertson``: ``idf = ln((N - df + 0.5) / (df + 0.5))``, ``tf_part = tf (k1 + 1) / (tf + K)``
- ``atire``: ``idf = ln(N / df)``, ``tf_part = tf (k1 + 1) / (tf + K)``
- ``bm25l``: ``c = tf / (1 - b + b |d| / avgdl)``,
  ``tf_part = (k1 + 1)(c + delta) / (k1 + c + delta)``
- ``bm25+``: ``tf_part = tf (k1 + 1) / (tf + K) + delta``

The tokenizer lower-cases, splits on ``\\w\\w+``, removes stopwords and Snowball-stems, as bm25s
recommends; queries are tokenized against the corpus vocabulary. Documents with a score of 0
(no query term) are not returned.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

import bm25s
import numpy as np
from bm25s.tokenization import Tokenizer

from ragsift.errors import UsageError
from ragsift.retrieve.base import Retriever
from ragsift.types import Corpus, Queries, Run

logger = logging.getLogger(__name__)

Method = Literal["lucene", "robertson", "atire", "bm25l", "bm25+"]
METHODS: tuple[str, ...] = ("lucene", "robertson", "atire", "bm25l", "bm25+")


def make_tokenizer(stopwords: str | list[str] | None = "en", stemmer: str | None = "english",
                   lower: bool = True) -> Tokenizer:
    """A bm25s tokenizer with the given stopword list (name or words) and Snowball language."""
    stem_fn = None
    if stemmer:
        import Stemmer

        stem_fn = Stemmer.Stemmer(stemmer).stemWord
    return Tokenizer(lower=lower, stopwords=stopwords or [], stemmer=stem_fn)


class BM25Retriever(Retriever):
    """Lexical retrieval with bm25s.

    Args:
        method: one of ``lucene``, ``robertson``, ``atire``, ``bm25l``, ``bm25+``.
        k1, b, delta: BM25 parameters (``delta`` for bm25l / bm25+).
        stopwords: a bm25s stopword list name (``"en"``), a list of words, or None.
        stemmer: a Snowball language for PyStemmer (``"english"``), or None.
        n_threads: threads for retrieval (0: the calling thread, -1: all cores).

    Example:
        >>> from ragsift.types import Document
        >>> bm25 = BM25Retriever()
        >>> bm25.index({"a": Document("a", "cats sleep a lot"), "b": Document("b", "dogs bark")})
        >>> list(bm25.search({"q": "sleeping cat"}, k=2)["q"])
        ['a']
    """

    kind = "bm25"

    def __init__(
        self,
        method: Method = "lucene",
        k1: float = 1.5,
        b: float = 0.75,
        delta: float = 0.5,
        stopwords: str | list[str] | None = "en",
        stemmer: str | None = "english",
        lower: bool = True,
        n_threads: int = 0,
        show_progress: bool = False,
    ) -> None:
        if method not in METHODS:
            raise UsageError(f"unknown BM25 method {method!r}; choose one of {METHODS}")
        self.method = method
        self.k1, self.b, self.delta = k1, b, delta
        self.stopwords, self.stemmer, self.lower = stopwords, stemmer, lower
        self.n_threads = n_threads
        self.show_progress = show_progress
        self.tokenizer = make_tokenizer(stopwords, stemmer, lower)
        self.model: bm25s.BM25 | None = None
        self.doc_ids: list[str] = []

    def config(self) -> dict[str, Any]:
        return {"method": self.method, "k1": self.k1, "b": self.b, "delta": self.delta,
                "stopwords": self.stopwords, "stemmer": self.stemmer, "lower": self.lower}

    @property
    def num_documents(self) -> int:
        return len(self.doc_ids)

    def index(self, corpus: Corpus) -> None:
        """Tokenize ``title + " " + text`` of every document (streamed) and build the index."""
        self.tokenizer.reset_vocab()
        self.doc_ids = []

        def texts():
            for doc_id, doc in corpus.items():
                self.doc_ids.append(doc_id)
                yield doc.full_text()

        tokens = self.tokenizer.tokenize(
            texts(), update_vocab=True, return_as="tuple", length=len(corpus),
            show_progress=self.show_progress,
        )
        self.model = bm25s.BM25(method=self.method, k1=self.k1, b=self.b, delta=self.delta)
        self.model.index(tokens, show_progress=self.show_progress)

    def tokenize_queries(self, texts: list[str]) -> list[list[int]]:
        """Token ids of ``texts`` in the corpus vocabulary (unknown words are dropped)."""
        return self.tokenizer.tokenize(texts, update_vocab=False, return_as="ids",
                                       show_progress=False)

    def search(self, queries: Queries, k: int = 100) -> Run:
        if self.model is None:
            raise RuntimeError("BM25Retriever.search before index() or load()")
        qids = list(queries)
        if not qids or not self.doc_ids:
            return {qid: {} for qid in qids}
        token_ids = self.tokenize_queries([queries[q] for q in qids])
        k = min(k, len(self.doc_ids))
        docs, scores = self.model.retrieve(
            token_ids, k=k, show_progress=self.show_progress, n_threads=self.n_threads
        )
        ids = np.asarray(self.doc_ids, dtype=object)
        run: Run = {}
        for qid, row_docs, row_scores in zip(qids, docs, scores):
            keep = row_scores > 0
            run[qid] = dict(zip(ids[row_docs[keep]].tolist(), row_scores[keep].tolist()))
        return run

    def _save_files(self, folder: Path) -> None:
        if self.model is None:
            raise RuntimeError("nothing to save: index() first")
        self.model.save(str(folder / "bm25s"), show_progress=False)
        self.tokenizer.save_vocab(str(folder / "bm25s"))
        (folder / "doc_ids.json").write_text(json.dumps(self.doc_ids))

    @classmethod
    def _load_files(cls, folder: Path, manifest: dict[str, Any], **options: Any) -> BM25Retriever:
        retriever = cls(**manifest["config"], **options)
        retriever.model = bm25s.BM25.load(str(folder / "bm25s"), show_progress=False)
        retriever.tokenizer.load_vocab(str(folder / "bm25s"))
        retriever.doc_ids = json.loads((folder / "doc_ids.json").read_text())
        return retriever
