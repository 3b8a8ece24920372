"""The saved ColBERT folder against what PyLate's loader reads (pylate cannot share our
environment: it pins an older torch, so the check is against its source, not the package).

Reference: github.com/lightonai/pylate at commit 1f1f47cee5df (version 1.4.0 in
``pylate/__version__.py``), ``pylate/models/colbert.py`` and ``pylate/models/Dense.py``:

- ``ColBERT._get_model_type`` reads ``model_type`` from ``config_sentence_transformers.json``
  (sentence-transformers loads the module list only when it equals the class name, ``ColBERT``);
- ``ColBERT._load_sbert_model`` keeps the ``Transformer`` and ``Dense`` modules of
  ``modules.json`` and reads ``query_prefix``, ``document_prefix``, ``query_length``,
  ``document_length``, ``attend_to_expansion_tokens``, ``skiplist_words`` and
  ``do_query_expansion`` from ``config_sentence_transformers.json``;
- ``Dense.load`` calls ``Dense(**config)`` on ``1_Dense/config.json`` (keyword arguments
  ``in_features, out_features, bias, activation_function, init_weight, init_bias,
  use_residual``), resolves ``activation_function`` with ``import_from_string`` and loads
  ``model.safetensors`` into a module whose only parameters are ``linear.weight`` (and
  ``linear.bias`` with a bias);
- ``ColBERT.__init__`` adds the prefixes with ``tokenizer.add_tokens`` and resizes the
  embeddings to ``len(tokenizer)``, then maps prefixes and ``skiplist_words`` with
  ``convert_tokens_to_ids``: the saved tokenizer must already hold the prefixes as single
  tokens at the ids the saved embeddings were trained with.
"""

from __future__ import annotations

import importlib
import json

import pytest
import torch

from ragsift.models.colbert import LateInteractionModel

PYLATE_DENSE_ARGUMENTS = {"in_features", "out_features", "bias", "activation_function",
                          "init_weight", "init_bias", "use_residual"}
PYLATE_SETTINGS = {"query_prefix": str, "document_prefix": str, "query_length": int,
                   "document_length": int, "attend_to_expansion_tokens": bool,
                   "skiplist_words": list, "do_query_expansion": bool}


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_model_dir):
    model = LateInteractionModel.from_pretrained(tiny_model_dir, embedding_size=16, seed=3,
                                                 query_length=24)
    return model, model.save(tmp_path_factory.mktemp("pylate") / "colbert")


def test_model_type_and_settings_pylate_reads(saved):
    model, folder = saved
    settings = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert settings["model_type"] == "ColBERT"
    for key, kind in PYLATE_SETTINGS.items():
        assert isinstance(settings[key], kind), key
        assert settings[key] == getattr(model.config, key), key
    assert settings["query_length"] == 24


def test_modules_are_a_root_transformer_and_a_pylate_dense(saved):
    _, folder = saved
    modules = json.loads((folder / "modules.json").read_text())
    assert [(m["idx"], m["path"], m["type"]) for m in modules] == [
        (0, "", "sentence_transformers.models.Transformer"),
        (1, "1_Dense", "pylate.models.Dense.Dense")]
    transformer = json.loads((folder / "sentence_bert_config.json").read_text())
    assert isinstance(transformer["max_seq_length"], int)
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()


def test_dense_config_and_weights_load_the_way_pylate_loads_them(saved):
    from safetensors.torch import load_file

    model, folder = saved
    config = json.loads((folder / "1_Dense" / "config.json").read_text())
    assert set(config) <= PYLATE_DENSE_ARGUMENTS
    module_name, _, class_name = config["activation_function"].rpartition(".")
    activation = getattr(importlib.import_module(module_name), class_name)()
    assert isinstance(activation, torch.nn.Identity)
    weights = load_file(str(folder / "1_Dense" / "model.safetensors"))
    assert set(weights) == {"linear.weight"} and config["bias"] is False
    assert weights["linear.weight"].shape == (config["out_features"], config["in_features"])
    torch.testing.assert_close(weights["linear.weight"], model.projection.weight.detach())


def test_tokenizer_holds_prefixes_and_skiplist_at_the_trained_ids(saved):
    from transformers import AutoConfig, AutoTokenizer

    model, folder = saved
    tokenizer = AutoTokenizer.from_pretrained(folder)
    before = len(tokenizer)
    assert tokenizer.add_tokens([model.config.query_prefix, model.config.document_prefix]) == 0
    assert len(tokenizer) == before == AutoConfig.from_pretrained(folder).vocab_size
    assert tokenizer.convert_tokens_to_ids(model.config.query_prefix) == model.query_prefix_id
    assert (tokenizer.convert_tokens_to_ids(model.config.document_prefix)
            == model.document_prefix_id)
    skiplist = {tokenizer.convert_tokens_to_ids(w) for w in model.config.skiplist_words}
    assert skiplist - {tokenizer.unk_token_id} == set(model.skiplist_ids.tolist())
