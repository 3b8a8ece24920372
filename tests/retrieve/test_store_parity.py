"""Every vector store against brute-force exact search, with and without metadata filters.

faiss (``allowed=`` ids computed with :meth:`Filter.matches`), Milvus Lite and embedded Qdrant
in a temporary folder (their native ``filter=``) hold the same random vectors and random
metadata (strings, ints, floats, booleans, lists, fields left out, one field mixing every kind).
For filters from 0.1% to 100% selectivity and random conjunctions of conditions, each store's
top-k ids must equal brute force over the vectors whose metadata passes, scores within 1e-4.

The slow test does the same on SciFact encoded with the packaged ``minilm-l6`` (skipped when
../shared/datasets/scifact is absent); ``RAGSIFT_SLOW_DOCS`` / ``RAGSIFT_SLOW_QUERIES`` slice it.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from ragsift.retrieve.filters import Condition, Filter
from ragsift.retrieve.vector_store import FaissStore, VectorStore

DIM, N, N_QUERIES, K = 32, 1000, 4, 10
SELECTIVITIES = [0.001, 0.01, 0.1, 0.5, 1.0]
N_RANDOM_FILTERS = 40
STRINGS = ["pubmed", "arxiv", 'say "hi"', "back\\slash", "two\nlines", "tab\there",
           "ünïcødé ✓", "1", "true", "100%_like", "it's"]
NUMBERS = [0, 1, 2, 1.0, 2.5, -3, 2020, 2020.0, 1e-3]
BOOLS = [True, False]
POOL = STRINGS + NUMBERS + BOOLS
FIELDS = ["source", "year", "score", "flag", "tags", "mixed-kind", "rank", "absent"]


def normalised(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    """``n`` random unit vectors, float32."""
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None,
                ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k over the rows of ``vectors`` where ``mask`` holds.

    Returns ``(scores, ids)`` of shape (n_queries, min(k, len(vectors))), ids taken from ``ids``
    (default: row numbers), missing slots -1 / ``-inf`` like a store.
    """
    ids = np.arange(len(vectors)) if ids is None else np.asarray(ids)
    rows = np.arange(len(vectors)) if mask is None else np.flatnonzero(mask)
    width = min(k, len(vectors))
    out_scores = np.full((len(queries), width), -np.inf, dtype=np.float32)
    out_ids = np.full((len(queries), width), -1, dtype=np.int64)
    scores = queries @ vectors[rows].T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :width]
    out_scores[:, :order.shape[1]] = np.take_along_axis(scores, order, axis=1)
    out_ids[:, :order.shape[1]] = ids[rows][order]
    return out_scores, out_ids


def assert_same_ranking(scores: np.ndarray, ids: np.ndarray, expected_scores: np.ndarray,
                        expected_ids: np.ndarray, tie: float = 1e-5) -> None:
    """Same shape, same empty slots, scores within 1e-4, and ids equal except at slots whose
    expected score ties (within ``tie``) with a neighbour's."""
    assert scores.shape == ids.shape == expected_ids.shape
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(ids == -1, expected_ids == -1)
    np.testing.assert_array_equal(np.isneginf(scores), expected_ids == -1)
    found = expected_ids != -1
    np.testing.assert_allclose(scores[found], expected_scores[found], atol=1e-4)
    for row_ids, row_expected, row_scores in zip(ids, expected_ids, expected_scores):
        for j in np.flatnonzero(row_ids != row_expected):
            neighbours = row_scores[max(j - 1, 0):j + 2]
            assert np.sum(np.abs(neighbours - row_scores[j]) < tie) > 1, (j, row_ids,
                                                                          row_expected)


def random_metadata(rng: np.random.Generator, n: int) -> list[dict]:
    """``n`` payloads; ``rank`` is a permutation of 0..n-1 (for exact selectivities)."""
    ranks = rng.permutation(n)
    rows = []
    for rank in ranks:
        row: dict = {"rank": int(rank)}
        if rng.random() < 0.9:
            row["source"] = STRINGS[rng.integers(len(STRINGS))]
        if rng.random() < 0.9:
            year = int(rng.integers(2015, 2025))
            row["year"] = year if rng.random() < 0.7 else year + float(rng.choice([0.0, 0.5]))
        if rng.random() < 0.8:
            row["score"] = float(rng.random())
        if rng.random() < 0.8:  # mostly booleans, some 0 / 1 integers: kinds must stay apart
            row["flag"] = bool(rng.random() < 0.5) if rng.random() < 0.7 else int(
                rng.integers(2))
        if rng.random() < 0.8:
            tags = [POOL[i] for i in rng.choice(len(POOL), rng.integers(4), replace=False)]
            row["tags"] = tags if rng.random() < 0.8 else POOL[rng.integers(len(POOL))]
        if rng.random() < 0.9:  # any kind; sometimes a list (Qdrant unpacks one level only)
            lists = [[1, "a"], [True], [], [2.5, False, "1"]]
            row["mixed-kind"] = (lists[rng.integers(len(lists))] if rng.random() < 0.3
                                 else POOL[rng.integers(len(POOL))])
        rows.append(row)
    return rows


def random_condition(rng: np.random.Generator) -> Condition:
    """One condition on a random field: ``eq`` / ``in`` with values of any kind, or a range."""
    field = FIELDS[rng.integers(len(FIELDS))]
    op = ["eq", "in", "gt", "ge", "lt", "le"][rng.integers(6)]
    if op == "eq":
        return Condition(field, op, POOL[rng.integers(len(POOL))])
    if op == "in":
        picks = rng.choice(len(POOL), rng.integers(1, 5), replace=False)
        return Condition(field, op, tuple(POOL[i] for i in picks))
    bound = {"rank": N * rng.random(), "score": rng.random(), "year": 2015 + 10 * rng.random()}
    return Condition(field, op, round(float(bound.get(field, rng.choice([-1.0, 0.5, 1.5]))), 3))


def random_filter(seed: int) -> Filter:
    """One to three random conditions, all of which must hold."""
    rng = np.random.default_rng(seed)
    return Filter(tuple(random_condition(rng) for _ in range(rng.integers(1, 4))))


@pytest.fixture(scope="module")
def corpus():
    """``(ids, vectors, queries, metadata)``: ids are random, far from 0..N-1."""
    rng = np.random.default_rng(11)
    ids = np.sort(rng.choice(10**9, N, replace=False)).astype(np.int64)
    return ids, normalised(rng, N), normalised(rng, N_QUERIES), random_metadata(rng, N)


def open_test_store(kind: str, folder, dim: int = DIM) -> VectorStore:
    """An empty store of ``kind`` (faiss, milvus, qdrant) living in ``folder`` when on disk;
    skips the test when the store's package is not installed."""
    if kind == "faiss":
        return FaissStore(dim)
    if kind == "milvus":
        pytest.importorskip("pymilvus")
        pytest.importorskip("milvus_lite")
        from ragsift.retrieve.milvus_store import MilvusStore

        return MilvusStore(dim, str(folder / "milvus.db"), batch_size=300)
    pytest.importorskip("qdrant_client")
    from ragsift.retrieve.qdrant_store import QdrantStore

    return QdrantStore(dim, folder / "qdrant", batch_size=300)


@pytest.fixture(scope="module", params=["faiss", "milvus", "qdrant"])
def store(request, corpus, tmp_path_factory):
    """Each store, filled once with the corpus (payloads = metadata)."""
    ids, vectors, _, metadata = corpus
    store = open_test_store(request.param, tmp_path_factory.mktemp(request.param))
    store.upsert(ids, vectors, metadata)
    yield store
    store.close()


def search_filtered(store: VectorStore, queries: np.ndarray, k: int, filter: Filter,
                    metadata: list[dict], ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``store.search`` with ``filter`` natively, or as ``allowed`` ids for faiss."""
    if store.native_filter:
        return store.search(queries, k, filter=filter)
    allowed = ids[[filter.matches(m) for m in metadata]]
    return store.search(queries, k, allowed=allowed)


def check_filter(store: VectorStore, corpus, filter: Filter) -> float:
    """Assert ``store`` agrees with brute force under ``filter``; returns its selectivity."""
    ids, vectors, queries, metadata = corpus
    mask = np.array([filter.matches(m) for m in metadata])
    expected = brute_force(vectors, queries, K, mask, ids)
    assert_same_ranking(*search_filtered(store, queries, K, filter, metadata, ids), *expected)
    return float(mask.mean())


def test_unfiltered_top_k_equals_brute_force(store, corpus):
    ids, vectors, queries, _ = corpus
    assert store.size == N
    assert_same_ranking(*store.search(queries, K), *brute_force(vectors, queries, K, ids=ids))


@pytest.mark.parametrize("selectivity", SELECTIVITIES)
def test_selectivity_sweep(store, corpus, selectivity):
    filter = Filter((Condition("rank", "lt", math.ceil(selectivity * N)),))
    assert check_filter(store, corpus, filter) == pytest.approx(selectivity, abs=0.5 / N)


def test_random_filters_equal_brute_force(store, corpus):
    selectivities = [check_filter(store, corpus, random_filter(seed))
                     for seed in range(N_RANDOM_FILTERS)]
    assert min(selectivities) == 0 and max(selectivities) > 0.3  # a spread, not one case
    assert sum(0 < s < 0.05 for s in selectivities) >= 3


@pytest.mark.parametrize("spec", [
    {"flag": True}, {"flag": 1}, {"flag": [0, False]}, {"flag": {">=": 0}},
    {"year": 2020}, {"year": 2020.5}, {"year": {">": 2019.5, "<=": 2021}},
    {"source": 'say "hi"'}, {"source": ["back\\slash", "two\nlines", "ünïcødé ✓"]},
    {"source": "1"}, {"source": {">": 0}}, {"tags": "pubmed"}, {"tags": [1, "true"]},
    {"tags": {"<": 0}}, {"mixed-kind": 1}, {"mixed-kind": "a"}, {"mixed-kind": True},
    {"absent": 1}, {"rank": {">=": N}},
])
def test_kinds_lists_and_escapes(store, corpus, spec):
    check_filter(store, corpus, Filter.parse(spec))


def test_filter_and_allowed_together(store, corpus):
    ids, vectors, queries, metadata = corpus
    filter = Filter.parse({"year": {">=": 2018}})
    allowed = ids[::3]
    if not store.native_filter:  # faiss keeps no payloads: a filter is refused, not ignored
        with pytest.raises(ValueError, match="allowed="):
            store.search(queries, K, filter=filter, allowed=allowed)
        return
    mask = np.array([filter.matches(m) for m in metadata]) & np.isin(ids, allowed)
    assert_same_ranking(*store.search(queries, K, filter=filter, allowed=allowed),
                        *brute_force(vectors, queries, K, mask, ids))


@pytest.mark.slow
def test_scifact_top10_equal_faiss_exact(tmp_path):
    from benchmarks.common import slice_dataset
    from ragsift.data.beir import load_beir
    from ragsift.models.bi_encoder import BiEncoder
    from tests.conftest import shared_dataset

    n_queries = int(os.environ.get("RAGSIFT_SLOW_QUERIES", "0")) or None
    n_docs = int(os.environ.get("RAGSIFT_SLOW_DOCS", "0")) or None
    data = slice_dataset(load_beir(shared_dataset("scifact"), "test"), n_queries, n_docs)
    encoder = BiEncoder.from_pretrained("minilm-l6")
    vectors = encoder.encode_documents(list(data.corpus.values()))
    queries = encoder.encode_queries(list(data.queries.values()))
    ids = np.arange(len(vectors))
    metadata = [{"words": len(doc.text.split())} for doc in data.corpus.values()]
    long_docs = Filter.parse({"words": {">=": float(np.median([m["words"] for m in metadata]))}})
    reference = FaissStore(vectors.shape[1])
    reference.upsert(ids, vectors)
    allowed = ids[[long_docs.matches(m) for m in metadata]]
    expected = reference.search(queries, 10), reference.search(queries, 10, allowed=allowed)
    for kind in ["milvus", "qdrant"]:
        with open_test_store(kind, tmp_path, vectors.shape[1]) as store:
            store.upsert(ids, vectors, metadata)
            assert_same_ranking(*store.search(queries, 10), *expected[0])
            assert_same_ranking(*store.search(queries, 10, filter=long_docs), *expected[1])
