"""The ColBERT model: input layout, vectors against a direct computation, folder layouts."""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pytest
import torch

from ragsift.models.colbert import LateInteractionModel, is_late_interaction_folder


@pytest.fixture(scope="module")
def model(tiny_model_dir) -> LateInteractionModel:
    return LateInteractionModel.from_pretrained(tiny_model_dir, embedding_size=16, seed=3)


def test_query_layout_prefix_and_mask_expansion(model):
    tokenizer = model.tokenizer
    ids = model.token_ids(["where do wolves hunt"], is_query=True)[0]
    plain = tokenizer("where do wolves hunt")["input_ids"]
    assert ids == plain[:1] + [model.query_prefix_id] + plain[1:]
    features = model.collate([ids], is_query=True)
    assert features["input_ids"].shape == (1, 32)
    expansion = [tokenizer.mask_token_id] * (32 - len(ids))
    assert features["input_ids"][0, len(ids):].tolist() == expansion
    # real tokens do not attend to the expansion tokens, but every position is scored
    assert features["attention_mask"][0].tolist() == [1] * len(ids) + [0] * (32 - len(ids))
    assert bool(features["score_mask"].all())
    assert model.encode(["where do wolves hunt"], is_query=True)[0].shape == (32, 16)


def test_document_layout_drops_punctuation_and_truncates(model):
    ids = model.token_ids(["Wolves, hunt!"], is_query=False)[0]
    assert ids[1] == model.document_prefix_id
    punctuation = {model.tokenizer.convert_tokens_to_ids(c) for c in string.punctuation}
    kept = [i for i in ids if i not in punctuation]
    assert len(kept) == len(ids) - 2  # "," and "!"
    assert model.encode(["Wolves, hunt!"], is_query=False)[0].shape == (len(kept), 16)
    long = model.token_ids(["word " * 500], is_query=False)[0]
    assert len(long) == model.config.document_length
    assert model.document_token_budget() == model.config.document_length - 3


def test_vectors_equal_a_direct_computation(model):
    texts = ["Wolves live and hunt in packs.", "short", "Cats sleep; a lot!"]
    vectors = model.encode(texts, is_query=False, batch_size=2)
    for text, got in zip(texts, vectors):
        ids = torch.tensor([model.token_ids([text], is_query=False)[0]])
        with torch.no_grad():
            hidden = model.encoder(input_ids=ids).last_hidden_state[0]
            expected = torch.nn.functional.normalize(hidden @ model.projection.weight.T, dim=-1)
        keep = ~torch.isin(ids[0], model.skiplist_ids)
        np.testing.assert_allclose(got, expected[keep].numpy(), atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_save_round_trip_in_the_pylate_layout(model, tmp_path):
    folder = model.save(tmp_path / "colbert")
    assert is_late_interaction_folder(folder)
    modules = json.loads((folder / "modules.json").read_text())
    assert [m["path"] for m in modules] == ["", "1_Dense"]
    dense = json.loads((folder / "1_Dense" / "config.json").read_text())
    assert dense["in_features"] == 32 and dense["out_features"] == 16 and dense["bias"] is False
    settings = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert settings["query_prefix"] == "[Q] " and settings["similarity_fn_name"] == "MaxSim"
    again = LateInteractionModel.from_pretrained(folder)
    assert again.query_prefix_id == model.query_prefix_id
    texts = ["Wolves live and hunt in packs.", "a query"]
    for is_query in (True, False):
        for a, b in zip(model.encode(texts, is_query), again.encode(texts, is_query)):
            np.testing.assert_allclose(a, b, atol=1e-6)
    from transformers import AutoModel

    assert AutoModel.from_pretrained(folder).config.vocab_size == len(model.tokenizer)


def test_new_model_is_seeded(tiny_model_dir):
    a = LateInteractionModel.from_pretrained(tiny_model_dir, embedding_size=8, seed=1)
    b = LateInteractionModel.from_pretrained(tiny_model_dir, embedding_size=8, seed=1)
    c = LateInteractionModel.from_pretrained(tiny_model_dir, embedding_size=8, seed=2)
    assert torch.equal(a.projection.weight, b.projection.weight)
    assert not torch.equal(a.projection.weight, c.projection.weight)
    with pytest.raises(TypeError, match="unknown late-interaction setting"):
        LateInteractionModel.from_pretrained(tiny_model_dir, query_lenght=8)


def write_stanford_folder(folder: Path, tiny_model_dir: Path) -> torch.Tensor:
    """A Stanford ColBERT checkpoint: HF_ColBERT weights under ``bert.`` plus ``linear``."""
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoTokenizer

    encoder = AutoModel.from_pretrained(tiny_model_dir)
    encoder.config.architectures = ["HF_ColBERT"]
    encoder.config.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    linear = torch.randn(8, 32, generator=torch.Generator().manual_seed(5))
    state = {f"bert.{k}": v.contiguous() for k, v in encoder.state_dict().items()}
    save_file({**state, "linear.weight": linear}, str(folder / "model.safetensors"))
    (folder / "artifact.metadata").write_text(json.dumps(
        {"query_token_id": "[unused0]", "doc_token_id": "[unused1]", "query_maxlen": 16,
         "doc_maxlen": 64, "attend_to_mask_tokens": False}))
    return linear


def test_loads_the_stanford_layout(tiny_model_dir, tmp_path):
    linear = write_stanford_folder(tmp_path / "stanford", tiny_model_dir)
    model = LateInteractionModel.from_pretrained(tmp_path / "stanford")
    assert torch.equal(model.projection.weight, linear)
    assert model.query_prefix_id == model.tokenizer.convert_tokens_to_ids("[unused0]")
    assert model.config.query_length == 16 and model.config.document_length == 64
    assert len(model.tokenizer) == model.tokenizer.vocab_size  # no token added
    reference = LateInteractionModel.from_pretrained(tiny_model_dir)
    assert torch.equal(model.encoder.embeddings.word_embeddings.weight,
                       reference.encoder.embeddings.word_embeddings.weight[:len(model.tokenizer)])
