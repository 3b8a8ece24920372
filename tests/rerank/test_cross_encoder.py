"""Cross-encoders against sentence-transformers' CrossEncoder on the same weights."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from ragsift.data.beir import load_beir
from ragsift.rerank import CrossEncoderReranker, Reranker

PAIRS = [
    ("what is bm25", "BM25 is a ranking function used by search engines."),
    ("what is bm25", "The Eiffel Tower is in Paris."),
    ("capital of france", "Paris is the capital and most populous city of France. " * 4),
    ("a", "b"),
]


@pytest.fixture(scope="module")
def st():
    return pytest.importorskip("sentence_transformers")


@pytest.mark.parametrize("fixture", ["tiny_cross_encoder", "tiny_cross_encoder_2"])
def test_scores_equal_sentence_transformers(fixture, request, st):
    folder = request.getfixturevalue(fixture)
    ours = Reranker.load(folder, device="cpu")
    assert isinstance(ours, CrossEncoderReranker)
    peer = st.CrossEncoder(str(folder), device="cpu")
    logits = peer.predict(PAIRS, activation_fn=torch.nn.Identity())
    raw = logits if logits.ndim == 1 else logits[:, 1] - logits[:, 0]
    np.testing.assert_allclose(ours.score(PAIRS), raw, atol=1e-5)
    probability = peer.predict(PAIRS, apply_softmax=logits.ndim > 1)
    probability = probability if probability.ndim == 1 else probability[:, 1]
    np.testing.assert_allclose(ours.score(PAIRS, calibrated=True), probability, atol=1e-5)


def test_minilm_with_fresh_head_equals_sentence_transformers(minilm_dir, tmp_path, st):
    torch.manual_seed(0)
    peer = st.CrossEncoder(str(minilm_dir), num_labels=1, device="cpu")
    peer.save(str(tmp_path / "ce"))
    ours = Reranker.load(tmp_path / "ce", device="cpu")
    np.testing.assert_allclose(ours.score(PAIRS),
                               peer.predict(PAIRS, activation_fn=torch.nn.Identity()), atol=1e-5)


def test_rank_rerank_and_threshold(tiny_cross_encoder, tiny_beir, caplog):
    reranker = Reranker.load(tiny_cross_encoder, device="cpu")
    docs = [p for _, p in PAIRS[:3]]
    hits = reranker.rank("what is bm25", docs)
    scores = reranker.score([("what is bm25", d) for d in docs])
    assert [h.index for h in hits] == list(np.argsort(-scores, kind="stable"))
    assert [h.text for h in hits] == [docs[h.index] for h in hits]
    assert len(reranker.rank("what is bm25", docs, top_k=2)) == 2
    probabilities = reranker.score([("what is bm25", d) for d in docs], calibrated=True)
    cut = float(np.median(probabilities))
    kept = reranker.rank("what is bm25", docs, threshold=cut)
    assert {h.index for h in kept} == {i for i, p in enumerate(probabilities) if p >= cut}

    data = load_beir(tiny_beir)
    run = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}, "q2": {"d3": 1.0, "gone": 0.5},
           "unknown": {"d1": 1.0}}
    with caplog.at_level(logging.WARNING):
        reranked = reranker.rerank(data.queries, data.corpus, run, k=2)
    assert set(reranked) == {"q1", "q2"} and set(reranked["q1"]) == {"d1", "d2"}
    assert set(reranked["q2"]) == {"d3"} and "1 run documents are not in the corpus" in caplog.text
    expected = reranker.score([(data.queries["q1"], data.corpus["d2"].full_text())])[0]
    assert reranked["q1"]["d2"] == pytest.approx(float(expected), abs=1e-6)


def test_save_round_trip_keeps_calibration(tiny_cross_encoder, tmp_path, st):
    reranker = Reranker.load(tiny_cross_encoder, device="cpu")
    labels = [1, 0, 1, 0]
    reranker.fit_calibration(PAIRS, labels)
    reranker.save(tmp_path / "copy")
    again = Reranker.load(tmp_path / "copy", device="cpu")
    assert again.calibration == reranker.calibration
    np.testing.assert_allclose(again.score(PAIRS, calibrated=True),
                               reranker.score(PAIRS, calibrated=True), atol=1e-6)
    peer = st.CrossEncoder(str(tmp_path / "copy"), device="cpu")
    np.testing.assert_allclose(peer.predict(PAIRS, activation_fn=torch.nn.Identity()),
                               reranker.score(PAIRS), atol=1e-5)


def test_unknown_family_is_explained(tiny_model_dir):
    with pytest.raises(ValueError, match="cannot tell the reranker family"):
        Reranker.load(tiny_model_dir)


def test_max_length_is_clamped_to_the_model(tiny_cross_encoder, caplog):
    reranker = Reranker.load(tiny_cross_encoder, max_length=4096, device="cpu")
    assert reranker.max_length == 128 and "exceeds the model's 128 positions" in caplog.text
    long_pair = [("q", "word " * 1000)]
    assert reranker.score(long_pair).shape == (1,)  # windows of <= 128 tokens, no index error
