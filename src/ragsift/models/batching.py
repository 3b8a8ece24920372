"""Length-sorted, token-budget batching shared by every model family.

Padding a batch to its longest member wastes compute on short texts. Sorting by token length
and cutting batches by a token budget (``batch rows x longest row <= max_tokens``) keeps the
padded size close to the real token count; results are put back in input order afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ragsift.errors import UsageError


def length_sorted_batches(
    lengths: Sequence[int], batch_size: int = 32, max_tokens: int | None = None
) -> list[np.ndarray]:
    """Group item indices into batches, longest items first.

    Args:
        lengths: token length of each item.
        batch_size: most rows in one batch.
        max_tokens: most padded tokens in one batch (rows x longest row); ``None`` for no budget.
            A single item longer than the budget still gets a batch of its own.

    Returns:
        Index arrays; together they hold every index exactly once.

    Example:
        >>> [b.tolist() for b in length_sorted_batches([3, 10, 4, 9], batch_size=2)]
        [[1, 3], [2, 0]]
    """
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {batch_size}")
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    n = len(order)
    while start < n:
        longest = max(int(lengths[order[start]]), 1)
        rows = batch_size
        if max_tokens is not None:
            rows = max(1, min(batch_size, max_tokens // longest))
        batches.append(order[start : start + rows])
        start += rows
    return batches


def pad_features(
    features: Mapping[str, Sequence[Sequence[int]]],
    pad_token_id: int,
    padding_side: str = "right",
) -> dict[str, torch.Tensor]:
    """Pad lists of token ids (and masks, type ids) into rectangular long tensors.

    ``input_ids`` are padded with ``pad_token_id``; every other key (``attention_mask``,
    ``token_type_ids``) with 0. ``padding_side`` is ``"right"`` or ``"left"`` (causal LMs).

    Example:
        >>> pad_features({"input_ids": [[5, 6, 7], [8]]}, pad_token_id=0)["input_ids"].tolist()
        [[5, 6, 7], [8, 0, 0]]
    """
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    ids = features["input_ids"]
    width = max((len(row) for row in ids), default=0)
    out: dict[str, torch.Tensor] = {}
    for key, rows in features.items():
        fill = pad_token_id if key == "input_ids" else 0
        array = np.full((len(rows), width), fill, dtype=np.int64)
        for i, row in enumerate(rows):
            if padding_side == "right":
                array[i, : len(row)] = row
            elif len(row):
                array[i, width - len(row) :] = row
        out[key] = torch.from_numpy(array)
    if "attention_mask" not in out:
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for i, row in enumerate(ids):
            if padding_side == "right":
                mask[i, : len(row)] = 1
            elif len(row):
                mask[i, width - len(row) :] = 1
        out["attention_mask"] = torch.from_numpy(mask)
    return out


def model_max_length(model: torch.nn.Module, tokenizer, default: int = 512) -> int:
    """The most tokens a model takes: the smaller of its position embeddings and the
    tokenizer's ``model_max_length`` (ignoring the huge sentinel tokenizers use for "none")."""
    limits = (getattr(model.config, "max_position_embeddings", None),
              getattr(tokenizer, "model_max_length", None))
    return min((x for x in limits if x and x < 1_000_000), default=default)
