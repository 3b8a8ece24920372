"""The ColBERT reranker: MaxSim scores, family detection, long passages, calibration, CLI."""

from __future__ import annotations

import numpy as np
import pytest

from ragsift.models.colbert import LateInteractionModel
from ragsift.rerank import LateInteractionReranker, Reranker


@pytest.fixture(scope="module")
def colbert_dir(tiny_model_dir, tmp_path_factory):
    model = LateInteractionModel.from_pretrained(tiny_model_dir, embedding_size=16, seed=0,
                                                 document_length=40)
    return model.save(tmp_path_factory.mktemp("colbert") / "tiny-colbert")


def test_scores_are_maxsim_of_the_token_vectors(colbert_dir):
    reranker = Reranker.load(colbert_dir, device="cpu")
    assert isinstance(reranker, LateInteractionReranker) and reranker.family == "colbert"
    pairs = [("wolves hunt", "Wolves live and hunt in packs."), ("wolves hunt", "Cats sleep."),
             ("python", "Python is a programming language.")]
    scores = reranker.score(pairs)
    for (query, passage), score in zip(pairs, scores):
        q = reranker.model.encode([query], True)[0]
        d = reranker.model.encode([passage], False)[0]
        assert abs(score - (q @ d.T).max(axis=1).sum()) < 1e-4


def test_long_passages_are_windowed(colbert_dir):
    needle = "Wolves live and hunt in packs."
    filler = " ".join(["The committee met on tuesday to discuss the budget."] * 12)
    passage = filler + " " + needle
    pair = [("where do wolves hunt", passage)]
    best = Reranker.load(colbert_dir, device="cpu", long_doc="max")
    windows = best.score(pair)[0]
    first = Reranker.load(colbert_dir, device="cpu", long_doc="first").score(pair)[0]
    tail = best.score([("where do wolves hunt", needle)])[0]
    assert best.model.config.document_length == 40
    assert windows >= tail - 1e-4 and windows > first  # the window holding the needle wins


def test_calibration_is_required_for_probabilities(colbert_dir, tmp_path):
    reranker = Reranker.load(colbert_dir, device="cpu")
    docs = ["Wolves live and hunt in packs.", "Cats sleep.", "Python is a language."]
    with pytest.raises(ValueError, match="fit_calibration"):
        reranker.rank("wolves", docs, threshold=0.5)
    pairs = [("wolves", d) for d in docs] * 2
    reranker.fit_calibration(pairs, [1, 0, 0, 1, 0, 0])
    probabilities = reranker.score(pairs[:3], calibrated=True)
    assert ((probabilities > 0) & (probabilities < 1)).all()
    saved = reranker.save(tmp_path / "calibrated")
    again = Reranker.load(saved, device="cpu")
    np.testing.assert_allclose(again.score(pairs[:3], calibrated=True), probabilities, atol=1e-6)


def test_minilm_with_a_fresh_projection_is_a_working_colbert(minilm_dir):
    reranker = Reranker.load(minilm_dir, family="colbert", device="cpu")
    hits = reranker.rank("where do wolves hunt",
                         ["Cats sleep a lot.", "Wolves live and hunt in packs.", "Python code."])
    assert hits[0].index == 1  # MiniLM's token features already carry the match


def test_onnx_backend_matches_torch(colbert_dir):
    pytest.importorskip("onnxruntime")
    pairs = [("wolves hunt", "Wolves live and hunt in packs."), ("python", "Cats sleep.")]
    torch_scores = Reranker.load(colbert_dir, device="cpu").score(pairs)
    onnx_scores = Reranker.load(colbert_dir, device="cpu", backend="onnx").score(pairs)
    np.testing.assert_allclose(onnx_scores, torch_scores, atol=1e-4)


def test_rerank_cli_with_a_colbert(colbert_dir, tiny_beir, tmp_path):
    from ragsift.cli.main import main
    from ragsift.data.trec import read_run, write_run

    run = {qid: {f"d{i}": float(10 - i) for i in range(1, 9)} for qid in
           ("q1", "q2", "q3", "q4", "q5")}
    write_run(run, tmp_path / "bm25.run")
    assert main(["rerank", "--data", str(tiny_beir), "--run", str(tmp_path / "bm25.run"),
                 "--model", str(colbert_dir), "--out", str(tmp_path / "colbert.run")]) == 0
    reranked = read_run(tmp_path / "colbert.run")
    reranker = Reranker.load(colbert_dir, device="cpu")
    from tests.conftest import DOCS, QUERIES

    text = " ".join(DOCS["d3"]).strip()
    expected = reranker.score([(QUERIES["q2"], text)])[0]
    assert abs(reranked["q2"]["d3"] - expected) < 1e-3
