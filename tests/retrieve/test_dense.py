"""DenseRetriever against brute-force numpy scoring, caching, persistence and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from ragsift.data.beir import load_beir
from ragsift.errors import IndexMismatchError
from ragsift.models.bi_encoder import BiEncoder
from ragsift.retrieve import DenseRetriever, Retriever


@pytest.fixture
def data(tiny_beir):
    return load_beir(tiny_beir)


@pytest.fixture
def encoder(tiny_model_dir):
    return BiEncoder.from_pretrained(tiny_model_dir, device="cpu")


def brute_force(encoder, data, k):
    docs = encoder.encode([d.full_text() for d in data.corpus.values()])
    queries = encoder.encode(list(data.queries.values()))
    scores = queries @ docs.T
    ids = list(data.corpus)
    return {
        qid: {ids[j]: float(row[j]) for j in np.argsort(-row)[:k]}
        for qid, row in zip(data.queries, scores)
    }


def test_flat_search_equals_brute_force(encoder, data):
    retriever = DenseRetriever(encoder)
    retriever.index(data.corpus)
    run = retriever.search(data.queries, k=3)
    expected = brute_force(encoder, data, 3)
    for qid in expected:
        assert list(run[qid]) == list(expected[qid])
        np.testing.assert_allclose(list(run[qid].values()), list(expected[qid].values()),
                                   rtol=1e-5)


def test_hnsw_finds_the_same_neighbours_on_small_data(encoder, data):
    exact = DenseRetriever(encoder)
    exact.index(data.corpus)
    approx = DenseRetriever(encoder, index_kind="hnsw")
    approx.index(data.corpus)
    assert approx.search(data.queries, 3).keys() == exact.search(data.queries, 3).keys()
    for qid, docs in exact.search(data.queries, 3).items():
        assert list(approx.search({qid: data.queries[qid]}, 3)[qid]) == list(docs)


def test_embeddings_are_cached_by_model_and_content(encoder, data, tmp_path, monkeypatch):
    calls = []
    original = encoder.encode_documents

    def counting(texts, **kwargs):
        calls.append(len(texts))
        return original(texts, **kwargs)

    monkeypatch.setattr(encoder, "encode_documents", counting)
    first = DenseRetriever(encoder, cache_dir=tmp_path / "c", block_size=3)
    first.index(data.corpus)
    assert calls == [3, 3, 2]
    second = DenseRetriever(encoder, cache_dir=tmp_path / "c", block_size=3)
    second.index(data.corpus)
    assert calls == [3, 3, 2]  # nothing re-encoded
    assert second.search(data.queries, 3) == first.search(data.queries, 3)
    changed = dict(data.corpus)
    changed.pop("d8")
    DenseRetriever(encoder, cache_dir=tmp_path / "c", block_size=3).index(changed)
    assert calls == [3, 3, 2, 1]  # only the changed last block


def test_save_load_and_model_mismatch(encoder, data, tmp_path, minilm_dir):
    retriever = DenseRetriever(encoder, cache_dir=False)
    retriever.index(data.corpus)
    retriever.save(tmp_path / "idx")
    loaded = Retriever.load(tmp_path / "idx", trust_model_paths=True)
    assert isinstance(loaded, DenseRetriever)
    got, expected = loaded.search(data.queries, 4), retriever.search(data.queries, 4)
    assert got.keys() == expected.keys()
    for qid in expected:
        assert got[qid] == pytest.approx(expected[qid])
    assert Retriever.load(tmp_path / "idx", model=str(encoder.name)).num_documents == 8
    with pytest.raises(IndexMismatchError, match="refusing"):
        Retriever.load(tmp_path / "idx", model="minilm-l6")
    other = BiEncoder.from_pretrained(minilm_dir, device="cpu")
    with pytest.raises(IndexMismatchError, match="refusing"):
        DenseRetriever.load(tmp_path / "idx", encoder=other)


def test_interrupted_save_leaves_no_index(encoder, data, tmp_path, monkeypatch):
    retriever = DenseRetriever(encoder, cache_dir=False)
    retriever.index(data.corpus)

    def crash(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(retriever.store, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        retriever.save(tmp_path / "out" / "idx")
    assert list((tmp_path / "out").iterdir()) == []  # neither the index nor its temp folder


def test_bad_index_folders(tmp_path):
    with pytest.raises(IndexMismatchError, match="no manifest"):
        Retriever.load(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format_version": 99, "retriever": "dense"}')
    with pytest.raises(IndexMismatchError, match="format version 99"):
        Retriever.load(tmp_path)


def test_dense_retriever_on_a_qdrant_store_equals_faiss(encoder, data, tmp_path):
    pytest.importorskip("qdrant_client")
    from ragsift.retrieve.qdrant_store import QdrantStore

    on_faiss = DenseRetriever(encoder, cache_dir=False)
    on_faiss.index(data.corpus)
    on_qdrant = DenseRetriever(encoder, cache_dir=False, store=QdrantStore(encoder.dim))
    on_qdrant.index(data.corpus)
    expected = on_faiss.search(data.queries, k=3)
    got = on_qdrant.search(data.queries, k=3)
    for qid in expected:
        assert list(got[qid]) == list(expected[qid])
        assert list(got[qid].values()) == pytest.approx(list(expected[qid].values()), abs=1e-5)
    on_qdrant.save(tmp_path / "idx")
    on_qdrant.store.close()
    loaded = Retriever.load(tmp_path / "idx", encoder=encoder)
    assert loaded.store.kind == "qdrant"
    assert list(loaded.search(data.queries, k=3)) == list(expected)
    loaded.store.close()
