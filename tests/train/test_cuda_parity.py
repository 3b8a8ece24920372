"""The GPU path gives the CPU's results: encoders, rerankers and a training run on CUDA.

Skipped where no CUDA device is visible (CI has none); run on a GPU machine with
``pytest tests/test_cuda_parity.py``. Tolerances allow for the GPU's different kernel order
(TF32 is off by default for matmuls in PyTorch, so fp32 results agree to ~1e-5).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import DOCS, QUERIES

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

TEXTS = [text for _, text in DOCS.values()]
PAIRS = [(query, text) for query in QUERIES.values() for text in TEXTS[:4]]


def test_the_default_device_is_the_gpu():
    from ragsift.models.device import default_device

    assert default_device() == "cuda"


def test_bi_encoder_vectors_match_on_cpu_and_gpu(tiny_model_dir):
    from ragsift.models.bi_encoder import BiEncoder

    cpu = BiEncoder.from_pretrained(tiny_model_dir, device="cpu").encode_documents(TEXTS)
    gpu = BiEncoder.from_pretrained(tiny_model_dir, device="cuda").encode_documents(TEXTS)
    np.testing.assert_allclose(gpu, cpu, atol=1e-5)


@pytest.mark.parametrize("fixture", ["tiny_cross_encoder", "tiny_llm"])
def test_reranker_scores_match_on_cpu_and_gpu(fixture, request):
    from ragsift.rerank.base import Reranker

    folder = request.getfixturevalue(fixture)
    cpu = Reranker.load(folder, device="cpu").score(PAIRS)
    gpu = Reranker.load(folder, device="cuda").score(PAIRS)
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)
    assert list(np.argsort(-gpu)) == list(np.argsort(-cpu))


def test_colbert_token_vectors_match_on_cpu_and_gpu(tiny_model_dir):
    from ragsift.models.colbert import LateInteractionModel

    model = LateInteractionModel.from_pretrained(tiny_model_dir)
    cpu = model.encode(TEXTS, is_query=False)
    gpu = model.to("cuda").encode(TEXTS, is_query=False)
    for a, b in zip(gpu, cpu, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("task", ["reranker", "embedding", "colbert"])
def test_a_model_trained_on_the_gpu_scores_the_same_on_the_cpu(task, tiny_model_dir,
                                                                 training_jsonl, tmp_path):
    """Training on CUDA (bf16 mixed precision where supported) changes the weights, keeps them
    finite, and saves fp32 weights the CPU loads and uses like the GPU does."""
    from safetensors.torch import load_file

    from ragsift.rerank.base import Reranker
    from ragsift.train.config import load_config
    from ragsift.train.trainer import train

    values = {"model": str(tiny_model_dir), "data": str(training_jsonl),
              "out": str(tmp_path / task), "batch_size": 2, "negatives": 2, "max_steps": 6,
              "logging_steps": 1, "save_steps": 3, "learning_rate": 1e-3, "warmup_ratio": 0.0}
    out = train(task, load_config(task, None, values))
    weights = load_file(str(out / "model.safetensors"))
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())
    assert all(tensor.dtype == torch.float32 for tensor in weights.values()
               if tensor.is_floating_point())
    if task == "embedding":
        from ragsift.models.bi_encoder import BiEncoder

        cpu = BiEncoder.from_pretrained(out, device="cpu").encode_documents(TEXTS)
        gpu = BiEncoder.from_pretrained(out, device="cuda").encode_documents(TEXTS)
        before = BiEncoder.from_pretrained(tiny_model_dir, device="cpu").encode_documents(TEXTS)
        assert not np.allclose(cpu, before, atol=1e-4)
    else:
        cpu = Reranker.load(out, device="cpu").score(PAIRS)
        gpu = Reranker.load(out, device="cuda").score(PAIRS)
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)
