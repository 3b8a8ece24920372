"""Cross-encoder training on groups of one positive and ``n`` negatives per query.

Logits of a batch form a ``(B, 1 + n)`` matrix, positive in column 0. Loss: ``loss``, any of
:data:`ragsift.train.registry.GROUP_LOSSES` (listwise softmax cross-entropy, pointwise BCE,
RankNet, LambdaLoss); with teacher scores in the data and ``distill`` set, KL or MarginMSE
against the teacher instead. A student cut
from a deeper model (``layers``) can also learn that model's token states layer by layer
(``hidden_distill_weight``, TinyBERT's hidden-state loss).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ragsift.models.dropout import attention_dropout_options
from ragsift.models.hub import resolve_model
from ragsift.models.layers import chosen_layers, keep_layers
from ragsift.rerank.cross_encoder import CrossEncoderReranker, pair_scores
from ragsift.train.config import RerankerConfig
from ragsift.train.data import TrainingItem
from ragsift.train.losses import hidden_state_mse
from ragsift.train.registry import GROUP_LOSSES
from ragsift.train.task import TrainingTask
from ragsift.train.tasks.contrastive import distillation_loss, teacher_scores
from ragsift.types import Corpus, Queries, Run


class _PairScorer(torch.nn.Module):
    """A sequence-classification model returning one raw score per pair; with a ``teacher``
    (the frozen encoder the model was cut from), ``(scores, hidden-state loss)`` where the
    student's hidden states ``0 .. n`` are matched with the teacher's ``teacher_states``."""

    def __init__(self, model: torch.nn.Module, teacher: torch.nn.Module | None = None,
                 teacher_states: Sequence[int] = ()) -> None:
        super().__init__()
        self.model = model
        # held outside the module tree: the optimizer, checkpoints and the saved model see the
        # student alone
        self._teacher = [teacher.eval().requires_grad_(False)] if teacher is not None else []
        self.teacher_states = list(teacher_states)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, **_: Any
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        if not self._teacher:
            return pair_scores(self.model(**inputs).logits)
        outputs = self.model(**inputs, output_hidden_states=True)
        teacher = self._teacher[0].to(input_ids.device)
        with torch.no_grad():
            states = teacher(**inputs, output_hidden_states=True).hidden_states
        hidden = hidden_state_mse(outputs.hidden_states,
                                  [states[i] for i in self.teacher_states], attention_mask)
        return pair_scores(outputs.logits), hidden


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
        extra.update(attention_dropout_options(model_config, config.attention_dropout))
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)  # a fresh head is seeded
            model = AutoModelForSequenceClassification.from_pretrained(folder, **extra)
        teacher = None
        if config.hidden_distill_weight > 0:  # the config has checked that layers is set
            teacher = copy.deepcopy(model.base_model)
        if kept is not None:
            keep_layers(model, kept)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        # hidden state 0 is the embedding output, state k + 1 the output of layer k
        self.module = _PairScorer(model, teacher, [0] + [k + 1 for k in kept or []])
        self.label_loss = GROUP_LOSSES[config.loss].load()

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

    def loss(self, outputs: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
             batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The ranking loss of the scores, plus ``hidden_distill_weight`` times the
        hidden-state loss when the module returns one."""
        if isinstance(outputs, tuple):
            scores, hidden = outputs
            return self.ranking_loss(scores, batch) + self.config.hidden_distill_weight * hidden
        return self.ranking_loss(outputs, batch)

    def ranking_loss(self, scores: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Distillation or label loss of the ``(B * G,)`` pair scores, viewed as groups."""
        labels = batch["labels_"]
        scores = scores.view(labels.shape)
        config = self.config
        if config.distill:
            return distillation_loss(scores, batch, config.distill, config)
        return self.label_loss(scores, labels, config)

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
