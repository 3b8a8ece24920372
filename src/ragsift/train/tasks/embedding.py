"""Bi-encoder training: InfoNCE over in-batch and hard negatives, optionally Matryoshka.

Batch layout: ``B`` queries; documents ``[positives (B), negatives (B x n)]``. Under torchrun
the queries, positives and negatives of every process are gathered (gradients kept for the local
shard, :mod:`ragsift.train.distributed`) so each query sees every document of the global batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ragsift.models.bi_encoder import BiEncoder
from ragsift.train.config import EmbeddingConfig
from ragsift.train.data import TrainingItem
from ragsift.train.lora import merged, with_lora
from ragsift.train.losses import info_nce, matryoshka
from ragsift.train.task import TrainingTask
from ragsift.train.tasks.contrastive import (
    contrastive_inputs,
    distillation_loss,
    gathered_contrastive,
    own_group_scores,
)
from ragsift.types import Corpus, Queries, Run


class EncoderModule(torch.nn.Module):
    """A :class:`BiEncoder`'s transformer and dense layers as trainable parameters."""

    def __init__(self, encoder: BiEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.transformer = encoder.model
        self.dense = torch.nn.ModuleList(layer.linear for layer in encoder.layout.dense)


def save_bi_encoder(encoder: BiEncoder, folder: Path) -> None:
    """Write a trained bi-encoder (sentence-transformers layout) into ``folder``."""
    encoder._fingerprint = None  # the weights changed since any fingerprint
    encoder.model.save_pretrained(folder)
    encoder.tokenizer.save_pretrained(folder)
    encoder.layout.write(folder, dim=int(encoder.model.config.hidden_size))


def dense_run(encoder: BiEncoder, queries: Queries, corpus: Corpus, k: int = 100) -> Run:
    """Exact dense retrieval with the live encoder (no embedding cache)."""
    from ragsift.retrieve.dense import DenseRetriever

    encoder._fingerprint = None
    was_training = encoder.model.training
    encoder.model.eval()  # no dropout while evaluating
    try:
        retriever = DenseRetriever(encoder, cache_dir=False)
        retriever.index(corpus)
        return retriever.search(queries, k=k)
    finally:
        encoder.model.train(was_training)


class _TwoTowers(EncoderModule):
    """Queries and documents through the same encoder in one forward call."""

    def forward(self, query_input_ids: torch.Tensor | None = None,
                query_attention_mask: torch.Tensor | None = None,
                doc_input_ids: torch.Tensor | None = None,
                doc_attention_mask: torch.Tensor | None = None,
                query_prompt_length: int = 0, doc_prompt_length: int = 0,
                **_: Any) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(Q, D)``; a half whose inputs are missing comes back as ``None`` (GradCache)."""
        queries = docs = None
        if query_input_ids is not None:
            queries = self.encoder.embed({"input_ids": query_input_ids,
                                          "attention_mask": query_attention_mask},
                                         int(query_prompt_length))
        if doc_input_ids is not None:
            # documents in batches of B (positives, then each rank of negatives), as many as
            # the queries: with attention dropout PyTorch's unfused attention keeps B x heads x
            # L x L buffers, and two passes of B ran faster than one of 2B on CPU
            size = len(query_input_ids) if query_input_ids is not None else len(doc_input_ids)
            docs = torch.cat([
                self.encoder.embed({"input_ids": ids, "attention_mask": mask},
                                   int(doc_prompt_length))
                for ids, mask in zip(doc_input_ids.split(size), doc_attention_mask.split(size))])
        return queries, docs


class EmbeddingTask(TrainingTask):
    """Train any sentence-transformers or transformers encoder as a bi-encoder."""

    config: EmbeddingConfig

    def __init__(self, config: EmbeddingConfig) -> None:
        super().__init__(config)
        self.encoder = BiEncoder.from_pretrained(
            config.model, device="cpu", pooling=config.pooling,
            query_prompt=config.query_prompt, document_prompt=config.document_prompt,
            attention_dropout=config.attention_dropout)
        self.peft_model = None
        if config.lora_r:
            self.peft_model = with_lora(self.encoder.model, config, config.seed,
                                        "FEATURE_EXTRACTION")
        self.module = _TwoTowers(self.encoder)

    def collate(self, items: Sequence[TrainingItem]) -> dict[str, torch.Tensor]:
        queries, query_prompt = self.encoder.tokenize(
            [item.query for item in items], self.encoder.prompt_for("query"),
            self.config.query_max_length)
        texts, keys = contrastive_inputs(items)
        docs, doc_prompt = self.encoder.tokenize(texts, self.encoder.prompt_for("document"),
                                                 self.config.max_length)
        return {"query_input_ids": queries["input_ids"],
                "query_attention_mask": queries["attention_mask"],
                "doc_input_ids": docs["input_ids"], "doc_attention_mask": docs["attention_mask"],
                "query_prompt_length": query_prompt, "doc_prompt_length": doc_prompt, **keys}

    def loss(self, outputs: tuple[torch.Tensor, torch.Tensor],
             batch: dict[str, torch.Tensor]) -> torch.Tensor:
        config = self.config

        def contrastive(queries: torch.Tensor, docs: torch.Tensor) -> torch.Tensor:
            return gathered_contrastive(
                queries, docs, batch, config.gather,
                lambda q, d: q @ d.T,
                lambda scores, targets, exclude: info_nce(scores, targets, config.temperature,
                                                          exclude, config.symmetric))

        queries, docs = outputs
        if config.distill:
            return distillation_loss(own_group_scores(queries, docs) / config.temperature,
                                     batch, config.distill, config,
                                     labels=lambda: contrastive(queries, docs))
        if config.matryoshka_dims:
            return matryoshka(contrastive, queries, docs, config.matryoshka_dims,
                              config.matryoshka_weights)
        return contrastive(queries, docs)

    def save(self, folder: Path) -> None:
        if self.peft_model is not None:
            self.encoder.model = merged(self.peft_model)
        save_bi_encoder(self.encoder, folder)

    def run(self, queries: Queries, corpus: Corpus, candidates: Run) -> Run:
        return dense_run(self.encoder, queries, corpus)
