"""MilvusStore on Milvus Lite: writes, reads, errors and the filter translation.

Search results against brute force, with filters of every kind, are in test_store_parity.py.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from ragsift.errors import IndexMismatchError, MissingExtraError, UsageError  # noqa: E402
from ragsift.retrieve.filters import Filter  # noqa: E402
from ragsift.retrieve.milvus_store import (  # noqa: E402
    LITE_FILE,
    MilvusStore,
    derived_fields,
    equality_token,
    filter_expression,
    lite_folder,
    string_literal,
)
from ragsift.retrieve.vector_store import open_store  # noqa: E402
from tests.retrieve.test_store_parity import (  # noqa: E402
    assert_same_ranking,
    brute_force,
    normalised,
)

DIM = 16


@pytest.fixture
def store(tmp_path):
    with MilvusStore(DIM, str(tmp_path / "vectors.db"), batch_size=7) as store:
        yield store


def test_upsert_replace_delete_and_size(store):
    rng = np.random.default_rng(3)
    vectors, queries = normalised(rng, 30, DIM), normalised(rng, 3, DIM)
    ids = np.arange(100, 130)
    store.upsert(ids, vectors, [{"i": int(i)} for i in ids])  # several batches of 7
    assert store.size == 30
    assert_same_ranking(*store.search(queries, 5), *brute_force(vectors, queries, 5, ids=ids))

    store.upsert([105], queries[:1], [{"edited": True}])  # replaces vector and payload
    assert store.size == 30
    scores, found = store.search(queries[:1], 1)
    assert found.tolist() == [[105]] and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert store.payloads([105, 106, 999]) == [{"edited": True}, {"i": 106}, None]
    assert store.search(queries[:1], 3, filter=Filter.parse("i=105"))[1].tolist() == [[-1] * 3]

    store.upsert([106], vectors[6:7])  # no payload: the old one is gone
    assert store.payloads([106]) == [{}]

    store.delete(list(range(100, 120)) + [5_000])  # unknown ids are ignored
    assert store.size == 10
    _, found = store.search(queries, 10)
    assert sorted(found[0]) == list(range(120, 130))


def test_k_larger_than_size_empty_store_and_empty_allowed(store):
    queries = np.ones((2, DIM), dtype=np.float32)
    scores, ids = store.search(queries, 5)
    assert scores.shape == ids.shape == (2, 0)
    store.upsert([4, 8], np.eye(DIM, dtype=np.float32)[:2])
    scores, ids = store.search(queries[:1] * np.arange(DIM, dtype=np.float32), 5)
    assert ids.tolist() == [[8, 4]] and scores.tolist() == [[1.0, 0.0]]
    scores, ids = store.search(queries, 5, allowed=[])
    assert ids.tolist() == [[-1, -1]] * 2 and np.isneginf(scores).all()
    assert store.search(queries, 5, allowed=[4])[1].tolist() == [[4, -1]] * 2
    assert store.search(queries[:0], 5)[1].shape == (0, 2)
    assert store.search(queries, 0)[1].shape == (2, 0)


def test_bad_input_is_refused(store):
    with pytest.raises(ValueError, match=r"shape \(n, 16\)"):
        store.upsert([1], np.ones((1, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="non-negative"):
        store.upsert([-1], np.ones((1, DIM), dtype=np.float32))
    with pytest.raises(ValueError, match="2 ids for 1 vectors"):
        store.upsert([1, 2], np.ones((1, DIM), dtype=np.float32))
    with pytest.raises(ValueError, match="2 payloads for 1 vectors"):
        store.upsert([1], np.ones((1, DIM), dtype=np.float32), [{}, {}])
    with pytest.raises(ValueError, match="NaN"):
        store.upsert([1], np.full((1, DIM), np.nan, dtype=np.float32))
    for payload in ({"id": 3}, {"vector": [1]}, {"ragsift_eq_x": ["s:a"]}):
        with pytest.raises(UsageError, match="reserved"):
            store.upsert([1], np.ones((1, DIM), dtype=np.float32), [payload])
    with pytest.raises(UsageError, match="NaN or infinity"):
        store.upsert([1], np.ones((1, DIM), dtype=np.float32), [{"x": [1, float("inf")]}])
    with pytest.raises(ValueError, match="is not a string, number or boolean"):
        store.search(np.ones((1, DIM), dtype=np.float32), 3, filter={"x": None})
    assert store.size == 0


def test_reopen_keeps_the_data_and_checks_the_dimension(tmp_path):
    path = str(tmp_path / "vectors.db")
    vectors = normalised(np.random.default_rng(5), 12, DIM)
    with MilvusStore(DIM, path, collection="docs") as store:
        store.upsert(np.arange(12), vectors, [{"n": i} for i in range(12)])
        expected = store.search(vectors[:2], 4, filter=Filter.parse("n>=6"))
    with MilvusStore(DIM, path, collection="docs") as store:
        assert store.size == 12
        found = store.search(vectors[:2], 4, filter=Filter.parse("n>=6"))
        np.testing.assert_array_equal(found[1], expected[1])
    with pytest.raises(IndexMismatchError, match="holds 16-dim vectors, not 8"):
        MilvusStore(8, path, collection="docs")


def test_stores_of_one_process_share_a_folder(tmp_path):
    path = str(tmp_path / "shared.db")
    first = MilvusStore(DIM, path, collection="a")
    with MilvusStore(DIM, path, collection="b") as second:
        second.upsert([1], np.ones((1, DIM), dtype=np.float32))
    first.upsert([2, 3], np.ones((2, DIM), dtype=np.float32))  # still served after b closed
    assert first.size == 2
    first.close()
    first.close()  # closing twice releases nothing more
    with MilvusStore(DIM, path, collection="b") as reopened:  # released and reopened
        assert reopened.size == 1


def test_a_folder_locked_by_another_process_is_refused_clearly(tmp_path):
    path = str(tmp_path / "locked.db")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from milvus_lite import MilvusLite; "
         f"db = MilvusLite({path!r}); print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RuntimeError, match="one process at a time"):
            MilvusStore(DIM, path)
    finally:
        holder.communicate(timeout=60)
    with MilvusStore(DIM, path) as store:  # free once the other process is gone
        assert store.size == 0


def test_local_paths_and_open_store(tmp_path):
    assert lite_folder(str(tmp_path / "x.db")) == tmp_path / "x.db"
    assert lite_folder(str(tmp_path / "index")) == tmp_path / "index" / LITE_FILE
    assert lite_folder("http://milvus:19530") is None
    with open_store(f"milvus:{tmp_path / 'index'}", DIM, collection="c") as store:
        assert isinstance(store, MilvusStore) and store.collection == "c"
        assert store.kind == "milvus" and store.native_filter
    assert (tmp_path / "index" / LITE_FILE).is_dir()


def test_equality_tokens_keep_kinds_apart():
    assert equality_token(1) == equality_token(1.0) == equality_token(np.int64(1)) == "n:1"
    assert equality_token(True) == "b:true" != equality_token(1)
    assert equality_token("1") == "s:1"
    assert equality_token(0.5) == "n:0.5" and equality_token(-0.0) == "n:0"
    assert equality_token(2**60 + 1) != equality_token(float(2**60))
    assert equality_token(None) is None and equality_token({"a": 1}) is None
    assert equality_token(float("nan")) is None


def test_derived_fields_of_scalars_lists_and_odd_names():
    assert derived_fields({"year": 2020, "tags": ["a", 1, [True, 2.5]], "my-key_x": "v",
                           "no filter": 1, "empty": [], "nested": {"a": 1}}) == {
        "ragsift_eq_year": ["n:2020"], "ragsift_lo_year": 2020.0, "ragsift_hi_year": 2020.0,
        "ragsift_eq_tags": ["b:true", "n:1", "n:2.5", "s:a"],
        "ragsift_lo_tags": 1.0, "ragsift_hi_tags": 2.5,
        "ragsift_eq_my_dkey__x": ["s:v"],
    }


def test_filter_expressions_escape_strings():
    assert string_literal('a"b\\c\nd\te') == '"a\\"b\\\\c\\nd\\te"'
    assert filter_expression(None) == ""
    assert filter_expression(Filter.parse(["flag=true", "n in [1, 1.0, x]", "s<-2"])) == (
        'json_contains(ragsift_eq_flag, "b:true") and '
        'json_contains_any(ragsift_eq_n, ["n:1", "s:x"]) and ragsift_lo_s < -2.0')
    assert filter_expression(allowed=np.array([3, 1])) == "id in [3, 1]"


def test_missing_extras_name_the_pip_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "milvus_lite.server_manager", None)
    with pytest.raises(MissingExtraError, match=r"milvus-lite.*ragsift\[milvus\]"):
        MilvusStore(4, str(tmp_path / "x.db"))
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # makes the import fail
    with pytest.raises(MissingExtraError, match=r"pymilvus.*ragsift\[milvus\]"):
        MilvusStore(4, "http://localhost:19530")
