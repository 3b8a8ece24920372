"""SPLADE on the fused ONNX graph (encoder + MLM head + masked max-pool + log1p(relu) in one
graph) against the torch encoder, and the pooling formula against a hand computation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ragsift.models.splade import SpladeEncoder, pool_logits
from tests.conftest import build_tiny_mlm

pytest.importorskip("onnxruntime")

TEXTS = ["Cats are small domesticated carnivorous mammals that sleep a lot.",
         "tower in paris", "", "BM25 ranks documents by term frequency " * 6]


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    return build_tiny_mlm(tmp_path_factory.mktemp("splade-onnx") / "tiny-mlm", minilm_dir, seed=1)


def test_pool_logits_is_the_masked_max_then_log1p_relu():
    logits = torch.tensor([[[0.5, -1.0, 2.0], [1.5, -3.0, -1.0], [9.0, 9.0, 9.0]]])
    keep = torch.tensor([[True, True, False]])  # the third position (e.g. [SEP]) is left out
    expected = [[math.log1p(1.5), 0.0, math.log1p(2.0)]]
    np.testing.assert_allclose(pool_logits(logits, keep).numpy(), expected, rtol=1e-6)
    assert pool_logits(logits, torch.zeros_like(keep)).abs().sum() == 0  # nothing scored


def test_onnx_fp32_equals_torch_and_int8_stays_close(mlm_dir):
    reference = SpladeEncoder.from_pretrained(mlm_dir, device="cpu").encode(TEXTS).toarray()
    fused = SpladeEncoder.from_pretrained(mlm_dir, backend="onnx").encode(TEXTS).toarray()
    np.testing.assert_allclose(fused, reference, atol=1e-4)
    assert not fused[2].any()  # an empty text has no scored position
    int8 = SpladeEncoder.from_pretrained(mlm_dir, backend="onnx-int8").encode(TEXTS).toarray()
    # int8 weights move each term weight by a fraction of its size; the ranking of a text's
    # terms by weight stays close (cosine between the two weight vectors)
    cosine = (int8 * reference).sum(1) / (np.linalg.norm(int8, axis=1) *
                                          np.linalg.norm(reference, axis=1) + 1e-12)
    assert cosine[[0, 1, 3]].min() > 0.99


def test_top_k_applies_after_the_onnx_graph(mlm_dir):
    full = SpladeEncoder.from_pretrained(mlm_dir, backend="onnx").encode(TEXTS[:2])
    top = SpladeEncoder.from_pretrained(mlm_dir, backend="onnx", top_k=5).encode(TEXTS[:2])
    for row in range(2):
        expected = np.sort(full[row].toarray().ravel())[-5:]
        np.testing.assert_allclose(np.sort(top[row].data), expected, atol=1e-6)
