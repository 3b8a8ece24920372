"""The batch setup shared by bi-encoders and ColBERT (and the distillation helpers every
task uses).

Documents of a batch are laid out ``[positives (B), negatives (B x n)]``. Every document
carries a key (a hash of its text) and every query the keys of all its known positives, so
that a document relevant to a query is never its negative even when it is another query's
positive. Across processes, queries, positives, negatives and keys are gathered (local
gradients kept) and the global loss is scaled by the world size, which makes DDP's averaged
gradient equal to the single-process gradient of the global batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ragsift.errors import UsageError
from ragsift.train.config import DistillSettings
from ragsift.train.data import TrainingItem, text_key
from ragsift.train.distributed import gather_with_grad, pad_to_global_max, world_size
from ragsift.train.losses import kl_distillation, listwise_ce, margin_mse


def contrastive_inputs(items: Sequence[TrainingItem]) -> tuple[list[str], dict[str, torch.Tensor]]:
    """Document texts in batch layout, and the key tensors :func:`gathered_contrastive` needs:
    ``doc_keys`` ``(B + B n,)`` and ``positive_keys`` ``(B, P)`` (rows padded with their first
    key, which is the target's own)."""
    texts = [item.positive for item in items] + [n for item in items for n in item.negatives]
    doc_keys = torch.tensor([text_key(t) for t in texts], dtype=torch.long)
    width = max(len(item.positive_keys) for item in items)
    positive_keys = torch.tensor(
        [item.positive_keys + [text_key(item.positive)] * (width - len(item.positive_keys))
         for item in items], dtype=torch.long)
    keys = {"doc_keys": doc_keys, "positive_keys": positive_keys}
    teacher = teacher_scores(items)
    if teacher is not None:
        keys["teacher_scores"] = teacher
    return texts, keys


def teacher_scores(items: Sequence[TrainingItem]) -> torch.Tensor | None:
    """``(B, 1 + n)`` teacher scores when every item has them, else ``None``."""
    if any(item.scores is None for item in items):
        return None
    return torch.tensor([item.scores for item in items], dtype=torch.float32)


def gathered_contrastive(
    queries: torch.Tensor,
    docs: torch.Tensor,
    batch: dict[str, torch.Tensor],
    gather: bool,
    score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """``loss(score(Q, D), targets, exclude)`` over the (global) batch, times the world size.

    Args:
        queries: local query representations, ``B`` rows first.
        docs: local document representations in batch layout.
        batch: holds ``doc_keys`` and ``positive_keys`` (see :func:`contrastive_inputs`).
        gather: share documents across processes (when there are several).
        score: ``(Q, D) -> (B_q, N_d)`` similarity matrix.
        loss: e.g. :func:`ragsift.train.losses.info_nce`.
    """
    size = len(queries)
    doc_keys, positive_keys = batch["doc_keys"], batch["positive_keys"]
    positives, negatives = docs[:size], docs[size:]
    neg_keys = doc_keys[size:]
    scale = 1
    if gather and world_size() > 1:
        queries, positives, negatives = (gather_with_grad(x) for x in
                                         (queries, positives, negatives))
        positive_keys = gather_with_grad(pad_to_global_max(positive_keys, 1))
        pos_keys = gather_with_grad(doc_keys[:size].contiguous())
        neg_keys = gather_with_grad(neg_keys.contiguous())
        doc_keys = torch.cat([pos_keys, neg_keys])
        scale = world_size()
    else:
        doc_keys = torch.cat([doc_keys[:size], neg_keys])
    # positives are gathered rank-major, so query i's target is column i of the global batch
    everything = torch.cat([positives, negatives])
    targets = torch.arange(len(queries), device=queries.device)
    exclude = (positive_keys[:, :, None] == doc_keys[None, None, :]).any(dim=1)
    return loss(score(queries, everything), targets, exclude) * scale


def own_groups(docs: torch.Tensor, size: int) -> torch.Tensor:
    """Documents in batch layout regrouped per query: ``(B, 1 + n, ...)``, each row
    ``[positive, its negatives]``."""
    group = len(docs) // size
    return torch.cat([docs[:size, None], docs[size:].view(size, group - 1, *docs.shape[1:])],
                     dim=1)


def own_group_scores(queries: torch.Tensor, docs: torch.Tensor) -> torch.Tensor:
    """``(B, 1 + n)`` dot products of each query with its own group ``[positive, negatives]``
    (documents in batch layout)."""
    return torch.einsum("bd,bgd->bg", queries, own_groups(docs, len(queries)))


def distillation_loss(student: torch.Tensor, batch: dict[str, torch.Tensor], method: str,
                      settings: DistillSettings,
                      labels: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
    """KL (at the settings' temperatures) or MarginMSE of ``(B, G)`` student scores against the
    batch's ``teacher_scores``, plus a label term when the settings' ``distill_label_weight``
    ``w`` is above 0: ``w * labels()`` when ``labels`` is given (a bi-encoder's InfoNCE over
    in-batch and hard negatives, which the teacher's own-group scores cannot supply), else
    ``T^2 * w * listwise_ce(s, T)`` over the group (the positive in column 0)."""
    if "teacher_scores" not in batch:
        raise UsageError("distill is set but the training data has no teacher scores "
                         "(pos_scores/neg_scores, as ragsift label writes); label the data "
                         "with ragsift label or drop distill")
    teacher = batch["teacher_scores"].to(student.dtype)
    temperature = settings.distill_temperature
    if method == "kl":
        loss = kl_distillation(student, teacher, temperature,
                               settings.distill_teacher_temperature)
    else:
        loss = margin_mse(student, teacher)
    weight = settings.distill_label_weight
    if weight > 0:
        label_loss = labels() if labels is not None else \
            temperature ** 2 * listwise_ce(student, temperature)
        loss = loss + weight * label_loss
    return loss
