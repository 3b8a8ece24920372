"""LLM reranker training: LoRA adapters on a causal LM, a group loss (``loss``, listwise softmax
cross-entropy by default; :data:`ragsift.train.registry.GROUP_LOSSES`) over the yes/no log-odds
(:meth:`ragsift.rerank.llm.CausalLMReranker.log_odds`) of each group.

Prompts follow the config's ``template`` and ``instruction``
(:data:`ragsift.rerank.llm.TEMPLATES`); a document too long for ``max_length`` is cut at
its end, so the instruction, the query and the answer suffix are always in the prompt and the
log-odds are read right after the suffix.

Only the adapters train (``lora_r``, ``lora_alpha``, ``lora_dropout`` on ``lora_targets``); the
saved folder holds the merged weights, so it loads as a plain transformers causal LM (and as a
ragsift ``llm`` reranker) without peft. A GGUF starting point is dequantised by transformers
on load and saved as safetensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ragsift.errors import RagsiftError
from ragsift.models.batching import pad_features
from ragsift.rerank.llm import CausalLMReranker
from ragsift.train.config import LLMRerankerConfig
from ragsift.train.data import TrainingItem
from ragsift.train.lora import merged, with_lora
from ragsift.train.registry import GROUP_LOSSES
from ragsift.train.task import TrainingTask
from ragsift.types import Corpus, Queries, Run


class _LogOdds(torch.nn.Module):
    """The peft-wrapped LM returning the yes/no log-odds of each prompt."""

    def __init__(self, reranker: CausalLMReranker, peft_model: torch.nn.Module) -> None:
        super().__init__()
        self.reranker = reranker
        self.peft_model = peft_model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                **_: Any) -> torch.Tensor:
        return self.reranker.log_odds(input_ids, attention_mask)


class LLMRerankerTask(TrainingTask):
    """LoRA fine-tuning of an LLM reranker (a causal LM folder, GGUF, or ``smollm2-135m``)."""

    config: LLMRerankerConfig

    def __init__(self, config: LLMRerankerConfig) -> None:
        super().__init__(config)
        if not config.lora_r:
            raise RagsiftError("llm-reranker training needs lora_r >= 1")
        if config.attention_dropout is not None:
            raise RagsiftError("attention_dropout is for encoder training (embedding, "
                               "reranker, colbert, vector-distill); causal LMs keep their own")
        self.reranker = CausalLMReranker.from_pretrained(
            config.model, max_length=config.max_length, device="cpu",
            template=config.template, instruction=config.instruction)
        self.group_loss = GROUP_LOSSES[config.loss].load()
        self.peft_model = with_lora(self.reranker.model, config, config.seed, "CAUSAL_LM")
        self.module = _LogOdds(self.reranker, self.peft_model)

    def collate(self, items: Sequence[TrainingItem]) -> dict[str, torch.Tensor]:
        pairs = [(item.query, text) for item in items for text in [item.positive, *item.negatives]]
        features = pad_features({"input_ids": self.reranker.encode_prompts(pairs)},
                                self.reranker.pad_id, padding_side="left")
        labels = torch.zeros(len(items), 1 + len(items[0].negatives))
        labels[:, 0] = 1  # the positive leads each group
        features["labels_"] = labels
        return features

    def loss(self, outputs: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        labels = batch["labels_"]
        return self.group_loss(outputs.view(labels.shape), labels, self.config)

    def save(self, folder: Path) -> None:
        merged(self.peft_model).save_pretrained(folder)
        self.reranker.tokenizer.save_pretrained(folder)

    def run(self, queries: Queries, corpus: Corpus, candidates: Run) -> Run:
        self.module.eval()
        return self.rerank_live(self.reranker, queries, corpus, candidates)
