"""LLM reranker prompt templates: a document longer than max_length is cut at its end, so the
instruction, the query and the answer suffix survive, and the yes/no log-odds are read after the
suffix."""

from __future__ import annotations

import pytest
import torch

from ragsift.rerank import CausalLMReranker
from ragsift.rerank.llm import TEMPLATES

QUERY = "which animals sleep a lot"
LONG = "Cats are small domesticated mammals that sleep a lot. " * 60  # ~700 tokens


def load(folder, **options):
    return CausalLMReranker.from_pretrained(folder, device="cpu", **options)


def own_log_odds(reranker, ids):
    """logit(yes) - logit(no) read at the last position of one unpadded prompt."""
    with torch.no_grad():
        logits = reranker.model(input_ids=torch.tensor([ids])).logits[0, -1]
    return float(torch.logsumexp(logits[reranker.yes_ids], 0)
                 - torch.logsumexp(logits[reranker.no_ids], 0))


def test_qwen3_prompt_keeps_instruction_query_and_suffix(tiny_llm):
    reranker = load(tiny_llm, template="qwen3", instruction="Find cat facts", max_length=128)
    tokenize = reranker.tokenizer
    suffix = tokenize(TEMPLATES["qwen3"].suffix, add_special_tokens=False)["input_ids"]
    head = (TEMPLATES["qwen3"].prefix + f"<Instruct>: Find cat facts\n<Query>: {QUERY}\n"
            "<Document>: ")
    head_ids = tokenize(head, add_special_tokens=False)["input_ids"]
    [ids] = reranker.encode_prompts([(QUERY, LONG)])
    assert len(ids) == 128
    assert ids[-len(suffix):] == suffix  # the answer position follows the suffix
    assert ids[:len(head_ids)] == head_ids  # instruction and query whole
    document = tokenize(LONG, add_special_tokens=False)["input_ids"]
    assert ids[len(head_ids):-len(suffix)] == document[:128 - len(head_ids) - len(suffix)]
    # a short document is not cut: the prompt is the template's text, tokenized
    [short] = reranker.encode_prompts([(QUERY, "Cats sleep.")])
    assert short == tokenize(reranker.prompt(QUERY, "Cats sleep."),
                             add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("template", ["plain", "qwen3"])
def test_log_odds_are_read_after_the_suffix_in_a_padded_batch(tiny_llm, template):
    reranker = load(tiny_llm, template=template, max_length=128, long_doc="truncate")
    pairs = [(QUERY, LONG), (QUERY, "Cats sleep."), ("q", "short")]
    prompts = reranker.encode_prompts(pairs)
    assert max(len(p) for p in prompts) == 128 and len(set(map(len, prompts))) == 3
    expected = [own_log_odds(reranker, ids) for ids in prompts]
    assert reranker.score(pairs).tolist() == pytest.approx(expected, abs=1e-4)


def test_plain_template_keeps_the_tokenizers_special_tokens(tiny_llm):
    reranker = load(tiny_llm, max_length=64)  # MiniLM's tokenizer: [CLS] ... [SEP], no chat
    tokenizer = reranker.tokenizer
    [ids] = reranker.encode_prompts([(QUERY, LONG)])
    tail = tokenizer("\n" + reranker.instruction + "\nAnswer:",
                     add_special_tokens=False)["input_ids"]
    assert len(ids) == 64
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert ids[-1 - len(tail):-1] == tail


def test_a_query_too_long_for_max_length_is_an_error(tiny_llm):
    reranker = load(tiny_llm, template="qwen3", max_length=70)
    with pytest.raises(ValueError, match="query too long"):
        reranker.encode_prompts([("word " * 80, "doc")])
    with pytest.raises(ValueError, match="unknown LLM reranker template"):
        load(tiny_llm, template="qwen9")
