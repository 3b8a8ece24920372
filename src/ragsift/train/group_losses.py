"""The losses :data:`ragsift.train.registry.GROUP_LOSSES` names, in one signature.

Each takes ``scores`` ``(B, G)`` (a query's candidates in a row, its positive in column 0),
``labels`` ``(B, G)`` (1 for the positive, 0 for the negatives) and the task's config, and
returns the scalar loss; the math is in :mod:`ragsift.train.losses`.
"""

from __future__ import annotations

from typing import Any

import torch

from ragsift.train import losses


def listwise(scores: torch.Tensor, labels: torch.Tensor, config: Any) -> torch.Tensor:
    """:func:`ragsift.train.losses.listwise_ce` (the positive is column 0)."""
    return losses.listwise_ce(scores)


def pointwise(scores: torch.Tensor, labels: torch.Tensor, config: Any) -> torch.Tensor:
    """:func:`ragsift.train.losses.pointwise_bce`."""
    return losses.pointwise_bce(scores, labels)


def ranknet(scores: torch.Tensor, labels: torch.Tensor, config: Any) -> torch.Tensor:
    """:func:`ragsift.train.losses.ranknet`."""
    return losses.ranknet(scores, labels)


def lambdaloss(scores: torch.Tensor, labels: torch.Tensor, config: Any) -> torch.Tensor:
    """:func:`ragsift.train.losses.lambda_loss` with the config's ``lambdaloss_weighting`` and
    ``lambdaloss_mu``."""
    return losses.lambda_loss(scores, labels, config.lambdaloss_weighting, config.lambdaloss_mu)
