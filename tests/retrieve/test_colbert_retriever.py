"""ColBERT retrieval against exhaustive MaxSim computed independently, token pooling,
persistence and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ragsift.data.beir import load_beir
from ragsift.errors import IndexMismatchError
from ragsift.models.colbert import LateInteractionModel
from ragsift.models.maxsim import maxsim_matrix
from ragsift.retrieve import LateInteractionRetriever, Retriever, parse_spec
from ragsift.retrieve.colbert import maxsim_scores, pool_tokens


@pytest.fixture(scope="module")
def colbert_dir(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("colbert")
    LateInteractionModel.from_pretrained(tiny_model_dir, embedding_size=16, seed=5).save(folder)
    return folder


@pytest.fixture(scope="module")
def model(colbert_dir):
    return LateInteractionModel.from_pretrained(colbert_dir)


@pytest.fixture
def data(tiny_beir):
    return load_beir(tiny_beir)


def exhaustive(model, data, k, pool_factor=1):
    """MaxSim of every query with every document through the training-time scorer, on
    float16-rounded document vectors (what the index stores)."""
    docs = [pool_tokens(v, pool_factor).astype(np.float16).astype(np.float32)
            for v in model.encode([d.full_text() for d in data.corpus.values()], is_query=False)]
    width = max(len(v) for v in docs)
    padded = torch.zeros(len(docs), width, docs[0].shape[1])
    mask = torch.zeros(len(docs), width, dtype=torch.bool)
    for i, v in enumerate(docs):
        padded[i, :len(v)] = torch.from_numpy(v)
        mask[i, :len(v)] = True
    queries = torch.from_numpy(np.stack(model.encode(list(data.queries.values()), is_query=True)))
    scores = maxsim_matrix(queries, padded, doc_mask=mask).numpy()
    ids = list(data.corpus)
    return {qid: {ids[j]: float(row[j]) for j in np.argsort(-row, kind="stable")[:k]}
            for qid, row in zip(data.queries, scores)}


def assert_same_run(run, expected):
    assert run.keys() == expected.keys()
    for qid in expected:
        assert list(run[qid]) == list(expected[qid])
        np.testing.assert_allclose(list(run[qid].values()), list(expected[qid].values()),
                                   atol=1e-4)


def test_pooling_merges_close_tokens_into_normalised_means():
    a = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [0.1, 0.995]], dtype=np.float32)
    pooled = pool_tokens(a, 2)
    expected = np.stack([a[:2].mean(0), a[2:].mean(0)])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(pooled, expected, atol=1e-6)
    assert pool_tokens(a, 1) is a
    assert pool_tokens(a, 3).shape == (1, 2)


def test_maxsim_scores_equal_the_padded_reference_with_an_empty_document():
    rng = np.random.default_rng(0)
    query = rng.normal(size=(4, 8)).astype(np.float32)
    docs = [rng.normal(size=(n, 8)).astype(np.float32) for n in (3, 0, 5, 1)]
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])])
    scores = maxsim_scores(query, np.concatenate(docs), offsets)
    for score, doc in zip(scores, docs):
        reference = (query @ doc.T).max(axis=1).sum() if len(doc) else 0.0
        assert score == pytest.approx(reference, abs=1e-5)


def test_exhaustive_and_candidate_search_equal_reference_maxsim(model, data):
    expected = exhaustive(model, data, k=5)
    full = LateInteractionRetriever(model, token_k=None)
    full.index(data.corpus)
    assert_same_run(full.search(data.queries, k=5), expected)
    # enough nearest tokens per query token to reach every document: the same ranking
    every_token = LateInteractionRetriever(model, token_k=len(full.tokens))
    every_token.index(data.corpus)
    assert_same_run(every_token.search(data.queries, k=5), expected)
    # a few nearest tokens: fewer candidates, but each one scored exactly
    few = LateInteractionRetriever(model, token_k=2)
    few.index(data.corpus)
    all_scores = exhaustive(model, data, k=len(data.corpus))
    for qid, hits in few.search(data.queries, k=5).items():
        for doc_id, score in hits.items():
            assert score == pytest.approx(all_scores[qid][doc_id], abs=1e-4)


def test_pooling_shrinks_the_index_and_matches_pooled_reference(model, data):
    plain = LateInteractionRetriever(model, token_k=None)
    plain.index(data.corpus)
    pooled = LateInteractionRetriever(model, pool_factor=2, token_k=None)
    pooled.index(data.corpus)
    lengths = np.diff(plain.offsets)
    expected_lengths = [n if n <= 2 else max(1, n // 2) for n in lengths]
    assert np.diff(pooled.offsets).tolist() == expected_lengths
    assert pooled.index_bytes < 0.6 * plain.index_bytes
    assert_same_run(pooled.search(data.queries, k=5), exhaustive(model, data, 5, pool_factor=2))


def test_save_load_round_trip_and_model_check(model, data, colbert_dir, tiny_model_dir, tmp_path):
    retriever = LateInteractionRetriever(model, pool_factor=2, token_k=8)
    retriever.index(data.corpus)
    retriever.save(tmp_path / "index")
    loaded = Retriever.load(tmp_path / "index", trust_model_paths=True)
    assert isinstance(loaded, LateInteractionRetriever) and loaded.pool_factor == 2
    assert loaded.search(data.queries, k=5) == retriever.search(data.queries, k=5)
    same = Retriever.load(tmp_path / "index", encoder=model)
    assert same.model is model
    other = LateInteractionModel.from_pretrained(tiny_model_dir, embedding_size=16)
    with pytest.raises(IndexMismatchError):
        Retriever.load(tmp_path / "index", encoder=other)
    with pytest.raises(IndexMismatchError):
        Retriever.load(tmp_path / "index", model=tiny_model_dir)


def test_spec_and_cli(colbert_dir, tiny_beir, tmp_path):
    from ragsift.cli.main import main
    from ragsift.data.trec import read_run

    assert parse_spec(f"colbert:{colbert_dir}").kind == "colbert"
    with pytest.raises(ValueError, match="colbert:MODEL"):
        parse_spec("colbert")
    out = tmp_path / "run.trec"
    assert main(["search", "--data", str(tiny_beir), "--retriever", f"colbert:{colbert_dir}",
                 "--pool-factor", "2", "--token-k", "0", "--k", "3", "--out", str(out)]) == 0
    run = read_run(out)
    assert len(run) == 5 and all(len(hits) == 3 for hits in run.values())
    exhaustive, plaid = tmp_path / "exhaustive.trec", tmp_path / "plaid.trec"
    common = ["search", "--data", str(tiny_beir), "--retriever", f"colbert:{colbert_dir}",
              "--k", "3", "--no-cache"]
    assert main([*common, "--token-k", "0", "--colbert-engine", "flat", "--out",
                 str(exhaustive)]) == 0
    assert main([*common, "--colbert-engine", "plaid", "--nprobe", "64", "--ncandidates", "64",
                 "--residual-bits", "0", "--out", str(plaid)]) == 0
    assert {q: list(hits) for q, hits in read_run(plaid).items()} == \
        {q: list(hits) for q, hits in read_run(exhaustive).items()}
    hybrid = tmp_path / "hybrid.trec"
    assert main(["search", "--data", str(tiny_beir), "--retriever",
                 f"hybrid:bm25+colbert:{colbert_dir}", "--k", "3", "--out", str(hybrid)]) == 0
    assert len(read_run(hybrid)) == 5
