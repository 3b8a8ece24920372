"""LLM-reranker training batches: every prompt ends with the template's answer suffix, even when
its document is longer than max_length, and the group loss is the configured one."""

from __future__ import annotations

import pytest
import torch

from ragsift.data.training import TrainingExample, write_training
from ragsift.rerank.llm import TEMPLATES
from ragsift.train.config import load_config
from ragsift.train.data import TrainingItem
from ragsift.train.losses import lambda_loss
from ragsift.train.tasks import build_task


@pytest.fixture
def llm_task(tiny_llm, tmp_path):
    pytest.importorskip("peft")
    data = tmp_path / "train.jsonl"
    write_training([TrainingExample("q", pos=["a"], neg=["b"])], data)

    def build(**extra):
        return build_task("llm-reranker", load_config("llm-reranker", None, {
            "model": str(tiny_llm), "data": str(data), "out": str(tmp_path / "out"),
            "lora_r": 2, "lora_targets": "q_proj,v_proj", **extra}))
    return build


def test_long_documents_keep_the_suffix_in_training_batches(llm_task):
    task = llm_task(template="qwen3", instruction="Find cat facts", max_length=128)
    long_text = "Cats are small domesticated mammals that sleep a lot. " * 60
    items = [TrainingItem("which animals sleep", long_text, ["Dogs bark.", long_text], []),
             TrainingItem("tower in paris", "The Eiffel Tower.", ["Rust.", "Wolves."], [])]
    batch = task.collate(items)
    suffix = task.reranker.tokenizer(TEMPLATES["qwen3"].suffix,
                                     add_special_tokens=False)["input_ids"]
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.shape == (6, 128)  # the long prompts fill max_length exactly
    assert (ids[:, -len(suffix):] == torch.tensor(suffix)).all()
    assert mask[:, -1].all()  # left padding: the last position is every prompt's own
    instruction = task.reranker.tokenizer("Find cat facts", add_special_tokens=False)["input_ids"]
    row = ids[0][mask[0].bool()].tolist()
    assert any(row[i:i + len(instruction)] == instruction for i in range(len(row)))


def test_the_configured_group_loss_is_used(llm_task):
    task = llm_task(loss="lambdaloss", lambdaloss_weighting="ndcg2")
    scores = torch.tensor([0.3, -0.1, 0.2, 0.5, 0.0, 0.1])
    labels = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    got = task.loss(scores, {"labels_": labels})
    assert got.item() == pytest.approx(lambda_loss(scores.view(2, 3), labels, "ndcg2").item())
