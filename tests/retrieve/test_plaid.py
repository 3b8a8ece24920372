"""The PLAID index against exhaustive MaxSim computed per document with plain numpy: exact
agreement with generous settings, graceful recall loss as nprobe shrinks, incremental add,
delete, persistence, and the ColBERT retriever's ``plaid`` engine."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from ragsift.data.beir import load_beir
from ragsift.errors import RagsiftError, UsageError
from ragsift.models.colbert import LateInteractionModel
from ragsift.retrieve import LateInteractionRetriever, Retriever
from ragsift.retrieve.plaid import PlaidIndex, token_ranges

TOPICS, DIM = 40, 16


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def topical_tokens(rng: np.random.Generator, count: int, topics: np.ndarray) -> np.ndarray:
    """``count`` unit vectors near randomly chosen topic directions (clustered like real
    token vectors, so centroids mean something)."""
    return unit(topics[rng.integers(0, len(topics), size=count)]
                + 0.4 * rng.normal(size=(count, topics.shape[1])))


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(7)
    topics = rng.normal(size=(TOPICS, DIM))
    docs = [topical_tokens(rng, int(rng.integers(3, 30)), topics) for _ in range(300)]
    queries = [topical_tokens(rng, 6, topics) for _ in range(25)]
    return docs, queries


def reference(query: np.ndarray, docs: list[np.ndarray], k: int) -> tuple[list[int], list[float]]:
    """Top-k by ``sum_i max_j q_i . d_j`` over float16-rounded vectors, one document at a time,
    ties by position."""
    scores = np.array([(query @ d.astype(np.float16).astype(np.float32).T).max(axis=1).sum()
                       for d in docs])
    top = np.lexsort((np.arange(len(docs)), -scores))[:k]
    return top.tolist(), scores[top].tolist()


def recall(index: PlaidIndex, docs, queries, k: int, **settings) -> float:
    found = [len(set(index.search(q, k, **settings)[0].tolist()) &
                 set(reference(q, docs, k)[0])) / k for q in queries]
    return float(np.mean(found))


@pytest.fixture(scope="module")
def exact_index(corpus):
    docs, _ = corpus
    index = PlaidIndex.train(docs, residual_bits=None, num_centroids=64)
    index.add(docs)
    return index


def test_token_ranges_select_each_documents_rows_in_order():
    offsets = np.array([0, 3, 3, 7, 9])
    rows, local = token_ranges(offsets, np.array([3, 1, 0, 2]))
    assert rows.tolist() == [7, 8, 0, 1, 2, 3, 4, 5, 6]
    assert local.tolist() == [0, 2, 2, 5, 9]


def test_generous_settings_return_exhaustive_maxsim_exactly(corpus, exact_index):
    docs, queries = corpus
    for query in queries:
        positions, scores = exact_index.search(query, 10, nprobe=64, ncandidates=4 * len(docs))
        expected, expected_scores = reference(query, docs, 10)
        assert positions.tolist() == expected
        np.testing.assert_allclose(scores, expected_scores, atol=1e-5)


def test_recall_degrades_gracefully_as_nprobe_shrinks(corpus, exact_index):
    # diffuse tokens (no topics): a document's best match often sits in a neighbouring centroid
    rng = np.random.default_rng(3)
    docs = [unit(rng.normal(size=(int(rng.integers(3, 30)), DIM))) for _ in range(400)]
    queries = [unit(rng.normal(size=(6, DIM))) for _ in range(25)]
    index = PlaidIndex.train(docs, residual_bits=None, num_centroids=64)
    index.add(docs)
    recalls = [recall(index, docs, queries, 10, nprobe=nprobe, ncandidates=4 * len(docs))
               for nprobe in (64, 16, 4, 2, 1)]
    assert recalls[0] == 1.0
    # more probed centroids reach a superset of documents, each scored exactly
    assert recalls == sorted(recalls, reverse=True)
    assert recalls[2] >= 0.95 and recalls[-1] < 1.0
    # clustered tokens (like real ones): the centroid stages keep most of the exhaustive top-10
    # with a candidate budget of a fifth of the corpus
    clustered_docs, clustered_queries = corpus
    assert recall(exact_index, clustered_docs, clustered_queries, 10, nprobe=8,
                  ncandidates=64) >= 0.85


@pytest.mark.parametrize("bits, error", [(8, 0.02), (4, 0.15)])
def test_compressed_residuals_bound_the_score_error(corpus, bits, error):
    docs, queries = corpus
    index = PlaidIndex.train(docs, residual_bits=bits, num_centroids=64)
    index.add(docs)
    tokens = np.concatenate(docs)
    rebuilt = index.decompress(np.arange(len(tokens)))
    assert index.residuals.shape == (len(tokens), DIM * bits // 8)
    # a reconstruction error per vector of about one bucket, relative to unit vectors
    assert np.linalg.norm(rebuilt - tokens, axis=1).mean() < error
    for query in queries:
        positions, scores = index.search(query, 10, nprobe=64, ncandidates=4 * len(docs))
        exact = np.array([(query @ docs[p].T).max(axis=1).sum() for p in positions])
        assert np.abs(scores - exact).max() < len(query) * error
    assert recall(index, docs, queries, 10, nprobe=64, ncandidates=4 * len(docs)) >= 0.9


def test_add_after_training_equals_adding_everything_at_once(corpus, exact_index):
    docs, queries = corpus
    first, rest = docs[:200], docs[200:]
    trained = PlaidIndex.train(first, residual_bits=4, num_centroids=32)
    at_once = PlaidIndex(trained.centroids, 4, faiss.clone_index(trained.quantizer),
                         trained.trained_tokens)
    trained.add(first)
    trained.add(rest)
    at_once.add(docs)
    for name in ("codes", "residuals", "offsets", "_ivf_offsets", "_ivf_docs"):
        np.testing.assert_array_equal(getattr(trained, name), getattr(at_once, name))
    for query in queries[:5]:
        got, expected = trained.search(query, 5, 4, 64), at_once.search(query, 5, 4, 64)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    assert not trained.rebuild_advised
    trained.add(docs * 2)  # three times the training tokens: refit advised
    assert trained.rebuild_advised


def test_deleted_documents_are_never_returned(corpus):
    docs, queries = corpus
    index = PlaidIndex.train(docs, residual_bits=None, num_centroids=64)
    index.add(docs)
    top = reference(queries[0], docs, 3)[0]
    index.delete(top[:2])
    positions, _ = index.search(queries[0], 3, nprobe=64, ncandidates=4 * len(docs))
    assert positions[0] == top[2] and not set(top[:2]) & set(positions.tolist())


def test_save_load_round_trip(corpus, tmp_path):
    docs, queries = corpus
    index = PlaidIndex.train(docs, residual_bits=4, num_centroids=32)
    index.add(docs)
    index.delete([5])
    index.save(tmp_path)
    loaded = PlaidIndex.load(tmp_path, residual_bits=4)
    for query in queries[:5]:
        got, expected = loaded.search(query, 10, 4, 64), index.search(query, 10, 4, 64)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    assert loaded.nbytes == index.nbytes and loaded.deleted[5]


def test_bad_settings_are_refused(corpus):
    docs, _ = corpus
    with pytest.raises(UsageError, match="residual_bits"):
        PlaidIndex.train(docs, residual_bits=3)
    with pytest.raises(UsageError, match="num_centroids"):
        PlaidIndex.train(docs[:1], num_centroids=1000)


# ---- the retriever's plaid engine ------------------------------------------------------------
@pytest.fixture(scope="module")
def model(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("colbert-plaid")
    LateInteractionModel.from_pretrained(tiny_model_dir, embedding_size=16, seed=3).save(folder)
    return LateInteractionModel.from_pretrained(folder)


def test_retriever_plaid_engine_equals_flat_exhaustive_and_persists(model, tiny_beir, tmp_path):
    data = load_beir(tiny_beir)
    flat = LateInteractionRetriever(model, token_k=None)
    flat.index(data.corpus)
    assert flat.engine == "flat"  # auto: a tiny corpus stays flat
    plaid = LateInteractionRetriever(model, engine="plaid", residual_bits=None, num_centroids=8,
                                     nprobe=8, ncandidates=64)
    ids = list(data.corpus)
    plaid.index({i: data.corpus[i] for i in ids[:5]})
    plaid.add({i: data.corpus[i] for i in ids[5:]})
    expected = flat.search(data.queries, k=4)
    got = plaid.search(data.queries, k=4)
    for qid in expected:
        assert list(got[qid]) == list(expected[qid])
        np.testing.assert_allclose(list(got[qid].values()), list(expected[qid].values()),
                                   atol=1e-5)
    plaid.save(tmp_path / "index")
    loaded = Retriever.load(tmp_path / "index", encoder=model)
    assert loaded.engine == "plaid" and loaded.num_tokens == plaid.num_tokens
    assert loaded.search(data.queries, k=4) == got
    with pytest.raises(RagsiftError, match="already indexed"):
        plaid.add({ids[0]: data.corpus[ids[0]]})
    with pytest.raises(UsageError, match="engine"):
        LateInteractionRetriever(model, engine="ivf")


@pytest.mark.parametrize("bits", [4, 8])
def test_numpy_decompression_equals_faiss_decoding(corpus, bits):
    docs, _ = corpus
    index = PlaidIndex.train(docs, residual_bits=bits, num_centroids=16)
    index.add(docs[:20])
    rows = np.arange(index.num_tokens)[::-1]
    expected = index.quantizer.sa_decode(index.residuals[rows]) + index.centroids[index.codes[rows]]
    np.testing.assert_allclose(index.decompress(rows), expected, atol=1e-6)
