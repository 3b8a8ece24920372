"""BiEncoder against sentence-transformers (the independent reference) and hand computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ragsift.models.bi_encoder import BiEncoder
from ragsift.models.pooling import pool

TEXTS = [
    "hello world",
    "BM25 ranks documents by term frequency and inverse document frequency. " * 3,
    "a",
    "long " * 400,  # past the 256-token limit: truncated the same way
    "Dense retrieval encodes queries and documents into vectors.",
]


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return BiEncoder.from_pretrained(minilm_dir, device="cpu")


@pytest.fixture(scope="module")
def st_minilm(minilm_dir):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    return sentence_transformers.SentenceTransformer(str(minilm_dir), device="cpu")


def test_minilm_matches_sentence_transformers(minilm, st_minilm):
    ours = minilm.encode(TEXTS)
    reference = st_minilm.encode(TEXTS, batch_size=32)
    assert ours.shape == (5, 384)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_batching_does_not_change_vectors(minilm):
    whole = minilm.encode(TEXTS)
    minilm.batch_size, minilm.max_batch_tokens = 1, 16
    try:
        one_by_one = minilm.encode(TEXTS)
    finally:
        minilm.batch_size, minilm.max_batch_tokens = 32, 16384
    np.testing.assert_allclose(whole, one_by_one, atol=1e-5)


def test_prompt_matches_sentence_transformers(minilm, st_minilm):
    ours = minilm.encode(TEXTS[:2], prompt="query: ")
    reference = st_minilm.encode(TEXTS[:2], prompt="query: ")
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    assert not np.allclose(ours, minilm.encode(TEXTS[:2]), atol=1e-3)


def test_truncate_dim_is_renormalised_prefix(minilm_dir, minilm, st_minilm):
    small = BiEncoder.from_pretrained(minilm_dir, truncate_dim=64, device="cpu")
    full = minilm.encode(TEXTS, normalize=False)[:, :64]
    expected = full / np.linalg.norm(full, axis=1, keepdims=True)
    got = small.encode(TEXTS)
    assert small.dim == 64 and got.shape == (5, 64)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(ValueError, match="truncate_dim"):
        BiEncoder.from_pretrained(minilm_dir, truncate_dim=1000, device="cpu")


def test_save_loads_in_sentence_transformers_and_back(tiny_model_dir, tmp_path):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    encoder = BiEncoder.from_pretrained(tiny_model_dir, device="cpu")
    saved = encoder.save(tmp_path / "copy")
    st = sentence_transformers.SentenceTransformer(str(saved), device="cpu")
    np.testing.assert_allclose(encoder.encode(TEXTS), st.encode(TEXTS), atol=1e-5)
    again = BiEncoder.from_pretrained(saved, device="cpu")
    np.testing.assert_allclose(encoder.encode(TEXTS), again.encode(TEXTS), atol=1e-6)


def test_fingerprint_tracks_weights(tiny_model_dir):
    a = BiEncoder.from_pretrained(tiny_model_dir, device="cpu")
    b = BiEncoder.from_pretrained(tiny_model_dir, device="cpu")
    assert a.fingerprint() == b.fingerprint()
    with torch.no_grad():
        b.model.embeddings.word_embeddings.weight[0, 0] += 1.0
    b._fingerprint = None
    assert a.fingerprint() != b.fingerprint()


def test_reads_st_dense_module(tiny_model_dir, tmp_path):
    st_models = pytest.importorskip("sentence_transformers.models")
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(1)
    transformer = st_models.Transformer(str(tiny_model_dir), max_seq_length=64)
    pooling = st_models.Pooling(32, pooling_mode="cls")
    dense = st_models.Dense(32, 16, activation_function=torch.nn.Tanh())
    model = SentenceTransformer(modules=[transformer, pooling, dense, st_models.Normalize()],
                                device="cpu")
    model.save(str(tmp_path / "with-dense"))
    ours = BiEncoder.from_pretrained(tmp_path / "with-dense", device="cpu")
    assert ours.dim == 16 and ours.layout.pooling == "cls"
    np.testing.assert_allclose(ours.encode(TEXTS), model.encode(TEXTS), atol=1e-5)


@pytest.mark.parametrize("side", ["right", "left"])
def test_pooling_modes_by_hand(side):
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]]) if side == "right" else torch.tensor(
        [[0, 1, 1], [1, 1, 1]])
    real = [hidden[0, mask[0].bool()], hidden[1]]
    assert torch.equal(pool(hidden, mask, "mean"), torch.stack([r.mean(0) for r in real]))
    assert torch.equal(pool(hidden, mask, "max"), torch.stack([r.max(0).values for r in real]))
    assert torch.equal(pool(hidden, mask, "lasttoken"), torch.stack([r[-1] for r in real]))
    assert torch.equal(pool(hidden, mask, "cls"), hidden[:, 0])
    expected = torch.stack([r.sum(0) / len(r) ** 0.5 for r in real])
    assert torch.allclose(pool(hidden, mask, "mean_sqrt_len"), expected)


def test_encode_rejects_a_bare_string(minilm):
    with pytest.raises(TypeError):
        minilm.encode("one text")
    assert minilm.encode([]).shape == (0, 384)


def test_plain_transformers_folder_gets_mean_pooling_like_st(tiny_model_dir, tmp_path):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    from transformers import AutoModel, AutoTokenizer

    plain = tmp_path / "plain"
    AutoModel.from_pretrained(tiny_model_dir).save_pretrained(plain)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(plain)
    ours = BiEncoder.from_pretrained(plain, device="cpu")
    assert (ours.layout.pooling, ours.layout.normalize, ours.max_length) == ("mean", False, 128)
    st = sentence_transformers.SentenceTransformer(str(plain), device="cpu")
    np.testing.assert_allclose(ours.encode(TEXTS), st.encode(TEXTS), atol=1e-5)


def test_truncation_is_said_once_at_info_then_at_debug(tiny_model_dir, caplog):
    import logging

    encoder = BiEncoder.from_pretrained(tiny_model_dir)
    long_text = "word " * (encoder.max_length + 50)
    with caplog.at_level(logging.DEBUG, logger="ragsift.models.bi_encoder"):
        encoder.encode(["short", long_text])
        encoder.encode([long_text, long_text, "short"])
    said = [(r.levelno, r.getMessage()) for r in caplog.records if "token limit" in r.message]
    limit = encoder.max_length
    assert said == [
        (logging.INFO, f"1 of 2 texts reached the {limit}-token limit and were truncated "
                       "(later counts at debug level, -v)"),
        (logging.DEBUG, f"2 of 3 texts reached the {limit}-token limit and were truncated")]
