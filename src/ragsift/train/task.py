"""What a training task provides to the shared trainer (:mod:`ragsift.train.trainer`).

A task owns the model being trained and knows its data and loss:

- :attr:`TrainingTask.module` -- the ``torch.nn.Module`` the HF Trainer optimises; its
  ``forward(**batch)`` computes everything that needs gradients in one call (so DDP sees one
  forward per step) and returns the outputs :meth:`TrainingTask.loss` reads;
- :meth:`dataset` -- the training items (groups from a BEIR folder or jsonl by default);
- :meth:`collate` -- training items to a batch of tensors;
- :meth:`save` -- the trained model in its ecosystem's layout (sentence-transformers,
  CrossEncoder, PyLate, transformers);
- :meth:`reranker_or_retriever` -- the live model as something that produces a run, for the
  nDCG@10 evaluation during training.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ragsift.train.config import TrainConfig
from ragsift.train.data import TrainingItem, TrainingItems, load_examples
from ragsift.types import Corpus, Queries, Run


class TrainingTask(ABC):
    """A model, its collate function, its loss and how to save it."""

    module: torch.nn.Module

    def __init__(self, config: TrainConfig) -> None:
        self.config = config

    @abstractmethod
    def collate(self, items: Sequence[TrainingItem]) -> dict[str, torch.Tensor]:
        """Tokenised tensors of a batch (and the keys the loss needs)."""

    @abstractmethod
    def loss(self, outputs: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The scalar training loss from ``module(**batch)``'s outputs."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the trained model into ``folder`` (an existing, empty temporary folder)."""

    @abstractmethod
    def run(self, queries: Queries, corpus: Corpus, candidates: Run) -> Run:
        """Score the evaluation queries with the live model (``candidates``: BM25's top k,
        which rerankers re-score and retrievers may ignore)."""

    def rerank_live(self, reranker: Any, queries: Queries, corpus: Corpus, candidates: Run
                    ) -> Run:
        """Rerank ``candidates`` with a reranker sharing the weights being trained, then put
        the module back in the mode it was in."""
        was_training = self.module.training
        try:
            return reranker.rerank(queries, corpus, candidates, k=self.config.eval_k)
        finally:
            self.module.train(was_training)

    def dataset(self) -> Dataset:
        """The training items: (query, positive, negatives) groups from ``config.data``."""
        config = self.config
        examples = load_examples(config.data, config.split, config.negatives_depth,
                                 config.negatives_skip)
        return TrainingItems(examples, config.negatives, config.seed)

    def enable_gradient_checkpointing(self) -> None:
        """Trade compute for memory in the transformer (when it supports it)."""
        for submodule in self.module.modules():
            if hasattr(submodule, "gradient_checkpointing_enable"):
                submodule.gradient_checkpointing_enable(
                    gradient_checkpointing_kwargs={"use_reentrant": False})
                return
