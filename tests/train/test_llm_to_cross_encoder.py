"""The LLM-reranker -> cross-encoder distillation recipe (configs/reranker-from-llm-scifact.yaml)
on tiny models: `ragsift label` with an LLM teacher, then KL training moves the cross-encoder's
score distributions toward the LLM's."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from ragsift.train.config import load_config
from ragsift.train.trainer import train


def kl(teacher: np.ndarray, student: np.ndarray) -> float:
    """KL(softmax(teacher) || softmax(student)) of one group."""
    t = np.exp(teacher - teacher.max())
    t /= t.sum()
    s = student - student.max()
    log_s = s - np.log(np.exp(s).sum())
    return float((t * (np.log(t) - log_s)).sum())


def mean_kl(rows, score) -> float:
    values = []
    for row in rows:
        docs = row["pos"] + row["neg"]
        student = np.asarray(score([(row["query"], d) for d in docs]), dtype=float)
        values.append(kl(np.asarray(row["pos_scores"] + row["neg_scores"]), student))
    return float(np.mean(values))


@pytest.fixture
def opinionated_llm(tmp_path, minilm_dir):
    """A 2-layer random Llama with large weights, so its yes/no log-odds differ between pairs
    by whole units (the shared tiny LLM's differ by 1e-4)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    config = LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
                         initializer_range=1.0)
    folder = tmp_path / "teacher-llm"
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_cross_encoder_learns_the_llm_teachers_scores(opinionated_llm, tiny_model_dir,
                                                       tiny_beir, tmp_path):
    from ragsift.data.beir import load_beir
    from ragsift.jobs.label import label_run
    from ragsift.jobs.teacher import Teacher
    from ragsift.rerank import Reranker
    from ragsift.train.tasks import build_task

    data = load_beir(tiny_beir, "test")
    # every document is a candidate of every query (BM25 would leave some queries none)
    candidates = {qid: {doc: -float(i) for i, doc in enumerate(sorted(data.corpus))}
                  for qid in data.queries}
    labels = tmp_path / "llm-labels.jsonl"
    teacher = Teacher.load(opinionated_llm, device="cpu", max_length=128)
    assert teacher.model.family == "llm"
    label_run(data, candidates, teacher, labels, k=8, show_progress=False)
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    rows = [row for row in rows if "pos" in row]
    config = load_config("reranker", None, {
        "model": str(tiny_model_dir), "data": str(labels), "out": str(tmp_path / "student"),
        "distill": "kl", "distill_temperature": 1.0,
        "negatives": 4, "batch_size": 4, "max_steps": 50, "learning_rate": 3e-3,
        "warmup_ratio": 0.0, "logging_steps": 10, "save_steps": 100, "max_length": 96})
    spread = [np.ptp(row["pos_scores"] + row["neg_scores"]) for row in rows]
    assert min(spread) > 0.5  # a teacher with opinions
    before = mean_kl(rows, build_task("reranker", config).reranker().score)
    student = Reranker.load(train("reranker", config), device="cpu")
    after = mean_kl(rows, student.score)
    # the control: the same schedule on the labels alone (listwise CE, positive first)
    control_config = dataclasses.replace(config, distill=None, out=str(tmp_path / "control"))
    control = mean_kl(rows, Reranker.load(train("reranker", control_config), device="cpu").score)
    assert after < 0.6 * before and after < control, (before, after, control)
