"""BM25Retriever against bm25s on the same tokens, and against a hand computation."""

from __future__ import annotations

import math

import bm25s
import numpy as np
import pytest

from ragsift.data.beir import load_beir
from ragsift.retrieve import BM25Retriever, Retriever
from ragsift.retrieve.bm25 import METHODS, make_tokenizer


@pytest.fixture
def data(tiny_beir):
    return load_beir(tiny_beir)


@pytest.mark.parametrize("method", METHODS)
def test_scores_equal_bm25s_on_same_tokens(data, method):
    retriever = BM25Retriever(method=method, k1=1.2, b=0.7, delta=0.8)
    retriever.index(data.corpus)
    run = retriever.search(data.queries, k=8)

    tokenizer = make_tokenizer("en", "english")
    texts = [doc.full_text() for doc in data.corpus.values()]
    reference = bm25s.BM25(method=method, k1=1.2, b=0.7, delta=0.8)
    reference.index(tokenizer.tokenize(texts, return_as="tuple", show_progress=False),
                    show_progress=False)
    ids = list(data.corpus)
    for qid, text in data.queries.items():
        tokens = tokenizer.tokenize([text], update_vocab=False, return_as="ids",
                                    show_progress=False)
        expected = reference.get_scores(tokens[0])
        got = np.array([run[qid].get(d, 0.0) for d in ids])
        np.testing.assert_allclose(got, np.where(expected > 0, expected, 0), rtol=1e-6)


def test_lucene_bm25_by_hand():
    from ragsift.types import Document

    corpus = {"a": Document("a", "apple apple banana"), "b": Document("b", "banana cherry"),
              "c": Document("c", "cherry cherry cherry date")}
    retriever = BM25Retriever(stopwords=None, stemmer=None, k1=1.5, b=0.75)
    retriever.index(corpus)
    run = retriever.search({"q": "apple cherry"}, k=3)["q"]
    n, avgdl = 3, (3 + 2 + 4) / 3

    def score(tf, dl, df):
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        return idf * tf / (tf + 1.5 * (1 - 0.75 + 0.75 * dl / avgdl))

    assert run["a"] == pytest.approx(score(2, 3, 1), rel=1e-6)
    assert run["b"] == pytest.approx(score(1, 2, 2), rel=1e-6)
    assert run["c"] == pytest.approx(score(3, 4, 2), rel=1e-6)


def test_stemming_and_stopwords_options(data):
    stemmed = BM25Retriever()
    stemmed.index(data.corpus)
    assert "d6" in stemmed.search({"q": "programs"}, k=3)["q"]  # programs -> program
    plain = BM25Retriever(stemmer=None)
    plain.index(data.corpus)
    assert plain.search({"q": "programs"}, k=3)["q"] == {}
    assert stemmed.search({"q": "the and of"}, k=3)["q"] == {}  # stopwords only: no match
    kept = BM25Retriever(stopwords=None)
    kept.index(data.corpus)
    assert kept.search({"q": "the"}, k=3)["q"]


def test_save_load_round_trip(data, tmp_path):
    retriever = BM25Retriever(method="bm25+", k1=1.1)
    retriever.index(data.corpus)
    retriever.save(tmp_path / "idx")
    loaded = Retriever.load(tmp_path / "idx")
    assert isinstance(loaded, BM25Retriever) and loaded.config() == retriever.config()
    assert loaded.search(data.queries, 5) == retriever.search(data.queries, 5)


def test_k_larger_than_corpus_and_empty_queries(data):
    retriever = BM25Retriever()
    retriever.index(data.corpus)
    assert len(retriever.search({"q": "wolves packs hunt dogs"}, k=1000)["q"]) <= len(data.corpus)
    assert retriever.search({}, k=5) == {}
    with pytest.raises(ValueError, match="unknown BM25 method"):
        BM25Retriever(method="okapi")  # type: ignore[arg-type]
