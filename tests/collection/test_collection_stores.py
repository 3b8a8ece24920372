"""Collections on Milvus Lite and Qdrant (embedded, in the collection folder): the same hits as
on faiss after adds, upserts and deletes, with native filters; a writer that died between the
store upsert and the commit leaves no vector behind once the next writer runs."""

from __future__ import annotations

import random

import pytest

from ragsift.collection import Collection
from ragsift.collection.manifest import Manifest
from ragsift.models.bi_encoder import BiEncoder
from tests.collection.conftest import random_document

STORES = {"qdrant:qdrant": "qdrant_client", "milvus:vectors.db": "milvus_lite"}
FILTERS = [None, "year>=2012", ["source in [pubmed, wiki]", "open=true"], "tags=b",
           "score<0.3"]


@pytest.fixture(scope="module")
def encoder(tiny_model_dir):
    return BiEncoder.from_pretrained(tiny_model_dir, device="cpu")


def fill(col: Collection, seed: int) -> None:
    rng = random.Random(seed)
    col.add([random_document(rng, f"d{i}") for i in range(80)])
    col.add([random_document(rng, f"d{i}") for i in range(0, 80, 5)])  # upserts
    col.delete([f"d{i}" for i in range(1, 80, 6)])


@pytest.mark.parametrize("store", STORES)
def test_database_stores_answer_like_faiss(tmp_path, encoder, store):
    pytest.importorskip(STORES[store])
    on_faiss = Collection.create(tmp_path / "faiss", retriever="hybrid", encoder=encoder,
                                 chunk_tokens=40, chunk_overlap=4)
    on_db = Collection.create(tmp_path / "db", retriever="hybrid", encoder=encoder,
                              store=store, chunk_tokens=40, chunk_overlap=4)
    fill(on_faiss, 1)
    fill(on_db, 1)
    try:
        assert on_db._store.size == int(on_db.snapshot.live.sum())
        for spec in FILTERS:
            for query in ("immune cell", "tumor growth dose"):
                for retriever in ("dense", "hybrid"):
                    want = on_faiss.search(query, k=7, filter=spec, retriever=retriever)
                    got = on_db.search(query, k=7, filter=spec, retriever=retriever)
                    assert [h.id for h in got] == [h.id for h in want], (spec, retriever)
                    assert [h.score for h in got] == pytest.approx([h.score for h in want],
                                                                   abs=1e-4)
    finally:
        on_db.close()
    reopened = Collection.open(tmp_path / "db", encoder=encoder)
    try:
        want = on_faiss.search("immune cell", k=5, filter="year>=2012")
        assert [h.id for h in reopened.search("immune cell", k=5, filter="year>=2012")] == [
            h.id for h in want]
    finally:
        reopened.close()


@pytest.mark.parametrize("store", STORES)
def test_vectors_of_an_uncommitted_add_are_removed_by_the_next_writer(tmp_path, encoder,
                                                                       store, monkeypatch):
    pytest.importorskip(STORES[store])
    rng = random.Random(2)
    col = Collection.create(tmp_path / "c", retriever="dense", encoder=encoder, store=store)
    col.add([random_document(rng, f"d{i}") for i in range(10)])
    committed = col._store.size

    def die(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies after the store upsert, before the commit

    with monkeypatch.context() as patch:
        patch.setattr(Manifest, "write", die)
        with pytest.raises(KeyboardInterrupt):
            col.add([random_document(rng, f"n{i}") for i in range(10)])
    assert col._store.size > committed  # orphan vectors in the database
    hits = col.search("cell", k=30)
    assert {h.id for h in hits} <= {f"d{i}" for i in range(10)}  # never shown
    col.delete(["d0"])  # the next write cleans up first
    assert col._store.size == int(col.snapshot.live.sum())
    col.close()
