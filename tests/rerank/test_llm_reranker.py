"""LLM rerankers: batched, left-padded scores equal the model's own logits for each prompt."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ragsift.rerank import CausalLMReranker, Reranker
from ragsift.rerank.long_documents import expand_pairs

PAIRS = [
    ("capital of france", "Paris is the capital of France."),
    ("capital of france", "Bananas are yellow."),
    ("who wrote hamlet", "Hamlet is a tragedy by William Shakespeare, written around 1600."),
    ("a", "b"),
]


def test_scores_equal_the_models_own_logits(tiny_llm):
    reranker = Reranker.load(tiny_llm, max_length=128, device="cpu")
    assert isinstance(reranker, CausalLMReranker)
    got = reranker.score(PAIRS)
    model, tokenizer = reranker.model, reranker.tokenizer
    for (query, passage), value in zip(PAIRS, got):
        ids = tokenizer(reranker.prompt(query, passage), return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, -1]
        expected = (torch.logsumexp(logits[reranker.yes_ids], 0)
                    - torch.logsumexp(logits[reranker.no_ids], 0))
        assert value == pytest.approx(float(expected), abs=1e-4)
    one_by_one = np.array([reranker.score([pair])[0] for pair in PAIRS])
    np.testing.assert_allclose(got, one_by_one, atol=1e-4)


def test_yes_no_token_sets(tiny_llm):
    reranker = Reranker.load(tiny_llm, device="cpu")
    decoded = {reranker.tokenizer.decode([i]).strip().lower() for i in reranker.yes_ids}
    assert decoded == {"yes"}
    assert {reranker.tokenizer.decode([i]).strip().lower() for i in reranker.no_ids} == {"no"}


def test_long_passages_are_windowed_to_the_prompt_budget(tiny_llm):
    reranker = Reranker.load(tiny_llm, max_length=64, device="cpu")
    long_pair = ("q", "many words here " * 80)
    windows, owners = expand_pairs([long_pair], reranker.tokenizer, reranker.passage_budget)
    assert len(windows) > 1 and set(owners.tolist()) == {0}
    for query, window in windows:
        assert len(reranker.tokenizer(reranker.prompt(query, window))["input_ids"]) <= 64
    assert reranker.score([long_pair]).shape == (1,)


def test_rerank_cli_with_an_llm(tiny_llm, tiny_beir, tmp_path):
    from ragsift.cli.main import main
    from ragsift.data.trec import read_run

    first = tmp_path / "bm25.trec"
    assert main(["search", "--data", str(tiny_beir), "--retriever", "bm25", "--out",
                 str(first)]) == 0
    out = tmp_path / "llm.trec"
    assert main(["rerank", "--data", str(tiny_beir), "--run", str(first), "--model",
                 str(tiny_llm), "--k", "2", "--max-length", "128", "--out", str(out)]) == 0
    assert read_run(out).keys() == read_run(first).keys()
    with pytest.raises(ValueError, match="torch backend only"):
        Reranker.load(tiny_llm, backend="onnx", device="cpu")


@pytest.mark.slow
def test_smollm2_gguf_prefers_the_answering_passage():
    reranker = Reranker.load("smollm2-135m")
    cases = [
        ("What is the capital of France?",
         "Paris is the capital and largest city of France.",
         "The mitochondria is the powerhouse of the cell."),
        ("Who wrote Romeo and Juliet?",
         "Romeo and Juliet is a tragedy written by William Shakespeare.",
         "Bananas are rich in potassium."),
        ("How many legs does a spider have?",
         "Spiders are arachnids with eight legs.",
         "The stock market fell sharply on Monday."),
    ]
    for query, relevant, other in cases:
        good, bad = reranker.score([(query, relevant), (query, other)])
        assert good > bad, query


@pytest.mark.slow
def test_a_gguf_model_saves_as_a_plain_folder_with_the_same_logits(tmp_path):
    from transformers import AutoModelForCausalLM

    from ragsift.models.causal_lm import load_causal_lm

    model, tokenizer, _ = load_causal_lm("smollm2-135m")
    model.save_pretrained(tmp_path)  # refused before: transformers marks GGUF loads quantized
    again = AutoModelForCausalLM.from_pretrained(tmp_path)
    ids = tokenizer("Spiders are arachnids with eight legs.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(again(ids).logits, model(ids).logits)
