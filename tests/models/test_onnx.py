"""The ONNX backends against torch on the same weights; export happens once per model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ragsift.errors import UsageError
from ragsift.rerank import Reranker

pytest.importorskip("onnxruntime")

PAIRS = [(f"query {i % 3} about topic {i}", f"passage {i} " + "with some words " * (i % 7 + 1))
         for i in range(40)]


@pytest.fixture
def torch_scores(tiny_cross_encoder):
    return Reranker.load(tiny_cross_encoder, device="cpu").score(PAIRS)


def test_onnx_fp32_matches_torch(tiny_cross_encoder, torch_scores):
    onnx = Reranker.load(tiny_cross_encoder, backend="onnx", device="cpu")
    np.testing.assert_allclose(onnx.score(PAIRS), torch_scores, atol=1e-4)


def test_onnx_int8_stays_close_and_keeps_the_order(minilm_cross_encoder):
    # A random tiny model scores every pair alike; MiniLM's real features give a spread.
    from tests.conftest import DOCS, QUERIES

    pairs = [(q, f"{title} {text}") for q in QUERIES.values() for title, text in DOCS.values()]
    fp32 = Reranker.load(minilm_cross_encoder, device="cpu").score(pairs)
    int8 = Reranker.load(minilm_cross_encoder, backend="onnx-int8", device="cpu").score(pairs)
    spread = fp32.max() - fp32.min()
    assert np.abs(int8 - fp32).max() < 0.25 * spread
    assert stats.spearmanr(int8, fp32).statistic > 0.9


def test_export_is_cached_by_weights(tiny_cross_encoder, monkeypatch):
    from ragsift.models import onnx

    Reranker.load(tiny_cross_encoder, backend="onnx", device="cpu")

    def fail(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx, "build_onnx", fail)  # the int8 file was built with the fp32 one
    Reranker.load(tiny_cross_encoder, backend="onnx-int8", device="cpu")
    with pytest.raises(UsageError, match="backend"):
        Reranker.load(tiny_cross_encoder, backend="tensorrt", device="cpu")


def test_bi_encoder_onnx_matches_torch(minilm_dir):
    from ragsift.models.bi_encoder import BiEncoder

    texts = ["hello world", "ONNX Runtime fuses attention kernels. " * 20, "a"]
    torch_vectors = BiEncoder.from_pretrained(minilm_dir, device="cpu").encode(texts)
    onnx = BiEncoder.from_pretrained(minilm_dir, device="cpu", backend="onnx")
    np.testing.assert_allclose(onnx.encode(texts), torch_vectors, atol=1e-4)
    int8 = BiEncoder.from_pretrained(minilm_dir, device="cpu", backend="onnx-int8")
    cosine = (int8.encode(texts) * torch_vectors).sum(axis=1)
    assert cosine.min() > 0.98
    assert int8.fingerprint() != onnx.fingerprint()  # cached embeddings never mix backends


def test_openvino_backends(minilm_cross_encoder):
    pytest.importorskip("openvino")
    from tests.conftest import DOCS, QUERIES

    pairs = [(q, f"{title} {text}") for q in QUERIES.values() for title, text in DOCS.values()]
    fp32 = Reranker.load(minilm_cross_encoder, device="cpu").score(pairs)
    exact = Reranker.load(minilm_cross_encoder, backend="openvino", device="cpu").score(pairs)
    np.testing.assert_allclose(exact, fp32, atol=1e-4)
    bf16 = Reranker.load(minilm_cross_encoder, backend="openvino-bf16", device="cpu").score(pairs)
    assert np.abs(bf16 - fp32).max() < 0.1 * (fp32.max() - fp32.min())
    assert stats.spearmanr(bf16, fp32).statistic > 0.95


def test_export_keeps_the_quantizers_per_tensor_logs_out(tiny_cross_encoder, tmp_path, caplog):
    import logging

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ragsift.models.onnx import build_onnx

    model = AutoModelForSequenceClassification.from_pretrained(tiny_cross_encoder).eval()
    example = dict(AutoTokenizer.from_pretrained(tiny_cross_encoder)(
        ["a query"], ["a passage"], return_tensors="pt"))
    with caplog.at_level(logging.INFO):
        build_onnx(model, example, "logits", tmp_path)
        assert logging.getLogger().level == logging.INFO  # restored after the export
    assert (tmp_path / "model-int8.onnx").is_file()
    assert not [r for r in caplog.records if r.name == "root" and r.levelno < logging.ERROR]
