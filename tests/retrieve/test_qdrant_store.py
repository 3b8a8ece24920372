"""QdrantStore (embedded mode) against FaissStore exact search and brute-force numpy scoring.

Covers payload filters, allowed ids, upserts and deletes, save/load round trips and the
missing-extra error. Filters of every kind against brute force: test_store_parity.py.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from qdrant_client.http import models  # noqa: E402

from ragsift.errors import IndexMismatchError, MissingExtraError  # noqa: E402
from ragsift.retrieve.filters import Filter, FilterError  # noqa: E402
from ragsift.retrieve.qdrant_store import POINTER_FILE, QdrantStore, make_filter  # noqa: E402
from ragsift.retrieve.vector_store import FaissStore, VectorStore  # noqa: E402
from tests.retrieve.test_store_parity import (  # noqa: E402
    assert_same_ranking,
    brute_force,
)
from tests.retrieve.test_store_parity import normalised as unit_vectors  # noqa: E402

DIM, N, N_QUERIES, K = 64, 2000, 20, 10
SOURCES = ["wiki", "news", "forum"]
YEARS = [2018, 2019, 2020, 2021, 2022]


def normalised(rng, n):
    return unit_vectors(rng, n, DIM)


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(7)
    vectors = normalised(rng, N)
    queries = normalised(rng, N_QUERIES)
    payloads = [{"source": SOURCES[rng.integers(3)], "year": int(rng.choice(YEARS))}
                for _ in range(N)]
    return vectors, queries, payloads


@pytest.fixture(scope="module")
def store(corpus):
    vectors, _, payloads = corpus
    store = QdrantStore(DIM, batch_size=300)  # several upload batches
    store.add(vectors, payloads)
    yield store
    store.close()


def test_top_k_equals_faiss_exact_search(corpus, store):
    vectors, queries, _ = corpus
    faiss_store = FaissStore(DIM)
    faiss_store.add(vectors)
    expected_scores, expected_ids = faiss_store.search(queries, K)
    scores, ids = store.search(queries, K)
    assert store.size == N
    assert isinstance(store, VectorStore) and store.kind == "qdrant" and store.native_filter
    assert_same_ranking(scores, ids, expected_scores, expected_ids)


def test_k_larger_than_size_and_empty_store():
    store = QdrantStore(2)
    scores, ids = store.search(np.ones((3, 2), dtype=np.float32), k=5)
    assert scores.shape == ids.shape == (3, 0)
    store.add(np.array([[1, 0], [0, 1]], dtype=np.float32))
    scores, ids = store.search(np.array([[0.2, 0.9]], dtype=np.float32), k=5)
    assert ids.tolist() == [[1, 0]]
    np.testing.assert_allclose(scores, [[0.9, 0.2]], rtol=1e-6)


@pytest.mark.parametrize("conditions", [
    {"source": "wiki"},
    {"year": [2020, 2021]},
    {"source": "news", "year": (2019, 2022)},
    {"source": ["forum", "wiki"], "year": 2018},
])
def test_filters_equal_brute_force_on_matching_subset(corpus, store, conditions):
    vectors, queries, payloads = corpus

    def matches(payload):
        return all(payload[key] in value if isinstance(value, (list, tuple))
                   else payload[key] == value for key, value in conditions.items())

    mask = np.array([matches(p) for p in payloads])
    assert 0 < mask.sum() < N
    queries = queries[:10]  # local-mode filtering is checked point by point in Python: slower
    expected = brute_force(vectors, queries, K, mask)
    assert_same_ranking(*store.search(queries, K, filter=conditions), *expected)
    assert_same_ranking(*store.search(queries, K, filter=Filter.parse(conditions)), *expected)


def test_allowed_ids_alone_and_with_a_filter(corpus, store):
    vectors, queries, payloads = corpus
    allowed = np.arange(0, N, 7)
    in_allowed = np.isin(np.arange(N), allowed)
    wiki = np.array([p["source"] == "wiki" for p in payloads])
    queries = queries[:5]
    assert_same_ranking(*store.search(queries, K, allowed=allowed),
                        *brute_force(vectors, queries, K, in_allowed))
    assert_same_ranking(*store.search(queries, K, filter={"source": "wiki"}, allowed=allowed),
                        *brute_force(vectors, queries, K, in_allowed & wiki))
    scores, ids = store.search(queries, K, allowed=[])
    assert ids.shape == (5, K) and (ids == -1).all() and np.isneginf(scores).all()


def test_few_matches_pad_floats_match_ints_and_bad_values_are_refused(store, corpus):
    _, queries, _ = corpus
    scores, ids = store.search(queries[:2], K, filter={"source": "nowhere"})
    assert (ids == -1).all() and np.isneginf(scores).all()
    np.testing.assert_array_equal(store.search(queries[:3], K, filter={"year": 2020.0})[1],
                                  store.search(queries[:3], K, filter={"year": 2020})[1])
    with pytest.raises(FilterError, match="is not a string, number or boolean"):
        store.search(queries[:1], K, filter={"year": None})


def test_make_filter_keeps_kinds_apart():
    assert make_filter(None) is None and make_filter({}) is None
    [flag] = make_filter({"flag": True}).must
    assert flag.match == models.MatchValue(value=True)
    [year] = make_filter({"year": 2020}).must
    assert year.match is None and year.range == models.Range(gte=2020.0, lte=2020.0)
    [mixed] = make_filter(Filter.parse("x in [a, b, 1, true]")).must
    assert [(c.match, c.range) for c in mixed.should] == [
        (models.MatchValue(value=True), None), (None, models.Range(gte=1.0, lte=1.0)),
        (models.MatchAny(any=["a", "b"]), None)]
    [low, ids] = make_filter("year<2000", allowed=np.array([4, 2])).must
    assert low.range == models.Range(lt=2000.0) and ids.has_id == [4, 2]


def test_upsert_replaces_and_delete_removes(corpus):
    vectors, queries, payloads = corpus
    store = QdrantStore(DIM)
    store.add(vectors[:300], payloads[:300])
    query = queries[:1]

    store.upsert([5], query, [{"source": "edited", "year": 1999}])
    scores, ids = store.search(query, 1)
    assert ids.tolist() == [[5]]
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert store.size == 300
    assert store.payloads([5]) == [{"source": "edited", "year": 1999}]
    assert store.search(query, 3, filter={"source": "edited"})[1][0, 0] == 5

    store.upsert([10_000], -query)  # a new id far past the others
    assert store.size == 301
    assert store.search(-query, 1)[1].tolist() == [[10_000]]

    deleted = list(range(0, 300, 3))
    store.delete(deleted + [123_456])  # unknown ids are ignored
    assert store.size == 301 - len(deleted)
    _, ids = store.search(queries, store.size)
    assert not np.isin(ids, deleted).any()
    assert (ids >= 0).all()
    reference = {i: vectors[i] for i in range(300) if i not in deleted}
    reference[5], reference[10_000] = query[0], -query[0]
    assert_same_ranking(*store.search(queries, K), *brute_force(
        np.stack(list(reference.values())), queries, K, ids=np.array(list(reference))))

    store.add(vectors[:2], [{"source": "new"}] * 2)  # ids continue past the largest id
    assert sorted(store.search(query, 5, filter={"source": "new"})[1][0]) == [
        -1, -1, -1, 10_001, 10_002]


def test_save_load_round_trip_from_memory(corpus, tmp_path):
    vectors, queries, payloads = corpus
    n = 120  # the local folder storage commits every point to SQLite separately: keep it small
    store = QdrantStore(DIM, batch_size=50)
    store.add(vectors[:n], payloads[:n])
    store.save(tmp_path / "db")
    before = store.search(queries, K)

    loaded = QdrantStore.load(tmp_path / "db")
    try:
        assert loaded.size == n and loaded.dim == DIM
        after = loaded.search(queries, K)
        np.testing.assert_array_equal(after[1], before[1])
        np.testing.assert_allclose(after[0], before[0], atol=1e-6)
        assert loaded.payloads([0, n - 1]) == [payloads[0], payloads[n - 1]]
        loaded.add(vectors[n:n + 1])
        assert loaded.search(vectors[n:n + 1], 1)[1].tolist() == [[n]]
    finally:
        loaded.close()
    with QdrantStore.load(tmp_path / "db") as reopened:  # the write above was persisted
        assert reopened.size == n + 1


def test_save_in_place_for_a_folder_store(corpus, tmp_path):
    vectors, queries, _ = corpus
    folder = tmp_path / "live"
    with QdrantStore(DIM, folder, collection="docs") as store:
        store.add(vectors[:40])
        store.save(folder)  # nothing to copy: only the pointer file is written
        expected = store.search(queries, 5)
    with QdrantStore.load(folder) as loaded:
        assert loaded.collection == "docs"
        np.testing.assert_array_equal(loaded.search(queries, 5)[1], expected[1])
    with pytest.raises(IndexMismatchError, match="holds 64-dim vectors, not 32"):
        QdrantStore(32, folder, collection="docs").close()


def test_server_save_writes_a_pointer_without_the_key(tmp_path):
    store = QdrantStore.__new__(QdrantStore)  # no server here: only save() is exercised
    store.dim, store.location, store.collection = 8, "https://qdrant.example:6333", "docs"
    store.save(tmp_path / "remote")
    pointer = json.loads((tmp_path / "remote" / POINTER_FILE).read_text())
    assert pointer == {"format": 1, "dim": 8, "collection": "docs",
                       "url": "https://qdrant.example:6333"}


def test_missing_extra_names_the_pip_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "qdrant_client", None)  # makes the import fail
    with pytest.raises(MissingExtraError, match=r"qdrant-client.*ragsift\[qdrant\]"):
        QdrantStore(4)
    with pytest.raises(ImportError):
        QdrantStore(4)
