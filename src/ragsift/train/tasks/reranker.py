"""Cross-encoder training on groups of one positive and ``n`` negatives per query.

Logits of a batch form a ``(B, 1 + n)`` matrix, positive in column 0. Loss: listwise softmax
cross-entropy, pointwise BCE or RankNet (:mod:`ragsift.train.losses`); with teacher scores in
the data and ``distill`` set, KL or MarginMSE against the teacher instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ragsift.models.dropout import attention_dropout_options
from ragsift.models.hub import resolve_model
from ragsift.models.layers import chosen_layers, keep_layers
from ragsift.rerank.cross_encoder import CrossEncoderReranker
from ragsift.train.config import RerankerConfig
from ragsift.train.data import TrainingItem
from ragsift.train.losses import listwise_ce, pointwise_bce, ranknet
from ragsift.train.task import TrainingTask
from ragsift.train.tasks.contrastive import distillation_loss, teacher_scores
from ragsift.types import Corpus, Queries, Run


class _PairScorer(torch.nn.Module):
    """A sequence-classification model returning one raw score per pair."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, **_: Any) -> torch.Tensor:
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits
        return logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]


def output_layer(model: torch.nn.Module) -> torch.nn.Linear:
    """The last linear layer of a sequence-classification model's head (``classifier`` in
    BERT-style models, ``classifier.out_proj`` in RoBERTa-style, ``score`` in decoder LMs)."""
    for name in ("classifier", "score"):
        head = getattr(model, name, None)
        if head is not None:
            linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
            if linears:
                return linears[-1]
    raise ValueError(f"{type(model).__name__} has no classification head (classifier / score)")


class RerankerTask(TrainingTask):
    """Train a cross-encoder (from a cross-encoder, or any encoder with a fresh head)."""

    config: RerankerConfig

    def __init__(self, config: RerankerConfig) -> None:
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        super().__init__(config)
        folder = resolve_model(config.model)
        model_config = AutoConfig.from_pretrained(folder)
        is_classifier = any(a.endswith("ForSequenceClassification")
                            for a in model_config.architectures or [])
        extra: dict[str, Any] = {} if is_classifier else {"num_labels": 1}
        kept = (chosen_layers(model_config.num_hidden_layers, config.layers, config.layers_from)
                if config.layers else None)
        extra.update(attention_dropout_options(model_config, config.attention_dropout_rate))
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)  # a fresh head is seeded
            model = AutoModelForSequenceClassification.from_pretrained(folder, **extra)
        if kept is not None:
            keep_layers(model, kept)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.module = _PairScorer(model)

    def collate(self, items: Sequence[TrainingItem]) -> dict[str, torch.Tensor]:
        queries = [item.query for item in items for _ in range(1 + len(item.negatives))]
        passages = [text for item in items for text in [item.positive, *item.negatives]]
        batch = dict(self.tokenizer(queries, passages, truncation="longest_first",
                                    max_length=self.config.max_length, padding=True,
                                    return_tensors="pt"))
        group = 1 + len(items[0].negatives)
        labels = torch.zeros(len(items), group)
        labels[:, 0] = 1
        batch["labels_"] = labels
        teacher = teacher_scores(items)
        if teacher is not None:
            batch["teacher_scores"] = teacher
        return batch

    def loss(self, outputs: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        labels = batch["labels_"]
        scores = outputs.view(labels.shape)
        config = self.config
        if config.distill:
            return distillation_loss(scores, batch, config.distill, config)
        if config.loss == "pointwise":
            return pointwise_bce(scores, labels)
        if config.loss == "ranknet":
            return ranknet(scores, labels)
        return listwise_ce(scores)

    def reranker(self) -> CrossEncoderReranker:
        """The live model behind the reranker API (shares the weights being trained)."""
        device = str(next(self.module.parameters()).device)
        return CrossEncoderReranker(self.module.model, self.tokenizer,
                                    max_length=self.config.max_length, device=device)

    @property
    def logit_scale(self) -> float:
        """``1 / T`` under KL distillation at student temperature ``T``, else 1: the loss
        compares ``s / T``, so those are the logits the model learned."""
        config = self.config
        return 1.0 / config.distill_temperature if config.distill == "kl" else 1.0

    def save(self, folder: Path) -> None:
        """Write the cross-encoder with :attr:`logit_scale` folded into its output layer, so
        the saved logits are ``s / T`` (a KL-distilled student at ``T`` = 0.05 otherwise
        outputs logits 20x narrower than the distribution it learned); the live model is left
        as it was."""
        head = output_layer(self.module.model)
        original = {name: value.clone() for name, value in head.state_dict().items()}
        with torch.no_grad():
            for value in head.parameters():
                value.mul_(self.logit_scale)
        try:
            self.reranker().write(folder)
        finally:
            head.load_state_dict(original)

    def run(self, queries: Queries, corpus: Corpus, candidates: Run) -> Run:
        return self.rerank_live(self.reranker(), queries, corpus, candidates)
