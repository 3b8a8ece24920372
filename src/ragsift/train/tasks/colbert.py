"""ColBERT training: MaxSim scores of every query against every document of the (global)
batch, InfoNCE at ``temperature`` with the query's positive as target; with teacher scores and
``distill: kl``, KL between the teacher's and MaxSim's distributions over each query's own group.

Token vectors travel with their masks packed as one extra channel (``[v, mask]``), so that the
gathering and padding of :mod:`ragsift.train.tasks.contrastive` carry both.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ragsift.models.colbert import LateInteractionModel
from ragsift.models.maxsim import maxsim_matrix, maxsim_paired
from ragsift.rerank.colbert import LateInteractionReranker
from ragsift.train.config import ColbertConfig
from ragsift.train.data import TrainingItem
from ragsift.train.distributed import pad_to_global_max, world_size
from ragsift.train.losses import info_nce
from ragsift.train.task import TrainingTask
from ragsift.train.tasks.contrastive import (
    contrastive_inputs,
    distillation_loss,
    gathered_contrastive,
    own_groups,
)
from ragsift.types import Corpus, Queries, Run


def _packed(vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.cat([vectors, mask[..., None].to(vectors.dtype)], dim=-1)


def _maxsim_packed(queries: torch.Tensor, docs: torch.Tensor) -> torch.Tensor:
    return maxsim_matrix(queries[..., :-1], docs[..., :-1], queries[..., -1] > 0,
                         docs[..., -1] > 0)


class _QueryDocEncoder(torch.nn.Module):
    """Query and document token vectors (packed with their score masks) in one forward."""

    def __init__(self, model: LateInteractionModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, query_input_ids: torch.Tensor | None = None,
                query_attention_mask: torch.Tensor | None = None,
                query_score_mask: torch.Tensor | None = None,
                doc_input_ids: torch.Tensor | None = None,
                doc_attention_mask: torch.Tensor | None = None,
                doc_score_mask: torch.Tensor | None = None,
                **_: Any) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Packed ``(Q, D)``; a half whose inputs are missing comes back as ``None``."""
        queries = docs = None
        if query_input_ids is not None:
            queries = _packed(self.model(query_input_ids, query_attention_mask),
                              query_score_mask)
        if doc_input_ids is not None:
            docs = _packed(self.model(doc_input_ids, doc_attention_mask), doc_score_mask)
        return queries, docs


class ColbertTask(TrainingTask):
    """Train a ColBERT model (a PyLate/Stanford folder, or any encoder + fresh projection)."""

    config: ColbertConfig

    def __init__(self, config: ColbertConfig) -> None:
        super().__init__(config)
        self.model = LateInteractionModel.from_pretrained(
            config.model, embedding_size=config.embedding_size, seed=config.seed,
            attention_dropout=config.attention_dropout, query_length=config.query_length,
            document_length=config.document_length)
        self.module = _QueryDocEncoder(self.model)

    def collate(self, items: Sequence[TrainingItem]) -> dict[str, torch.Tensor]:
        model = self.model
        queries = model.collate(model.token_ids([item.query for item in items], True), True)
        texts, keys = contrastive_inputs(items)
        docs = model.collate(model.token_ids(texts, False), False)
        batch = {f"query_{k}": v for k, v in queries.items()}
        batch.update({f"doc_{k}": v for k, v in docs.items()})
        batch.update(keys)
        return batch

    def loss(self, outputs: tuple[torch.Tensor, torch.Tensor],
             batch: dict[str, torch.Tensor]) -> torch.Tensor:
        queries, docs = outputs
        config = self.config
        if config.distill:
            size = len(queries)
            groups = own_groups(docs, size)  # each query against [positive, its negatives]
            group = groups.shape[1]
            own_docs = groups.flatten(0, 1)
            own_queries = queries.repeat_interleave(group, dim=0)
            student = maxsim_paired(own_queries[..., :-1], own_docs[..., :-1],
                                    own_queries[..., -1] > 0,
                                    own_docs[..., -1] > 0).view(size, group)
            return distillation_loss(student, batch, "kl", config)
        if config.gather and world_size() > 1:
            docs = pad_to_global_max(docs, 1, 0.0)
        return gathered_contrastive(
            queries, docs, batch, config.gather, _maxsim_packed,
            lambda scores, targets, exclude: info_nce(scores, targets, config.temperature,
                                                      exclude))

    def reranker(self) -> LateInteractionReranker:
        device = str(next(self.module.parameters()).device)
        return LateInteractionReranker(self.model, device=device)

    def save(self, folder: Path) -> None:
        self.model.write(folder)

    def run(self, queries: Queries, corpus: Corpus, candidates: Run) -> Run:
        return self.rerank_live(self.reranker(), queries, corpus, candidates)
