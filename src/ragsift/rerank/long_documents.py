"""Passages longer than a model's input, split into overlapping token windows — never cut silently.

For a pair (query, passage) whose passage has more tokens than the model's budget ``B`` beside
that query, the strategies are:

- ``max`` / ``mean`` / ``topk-mean``: windows of at most ``B`` tokens, consecutive windows sharing
  ``overlap`` tokens (default ``B // 4``), cut at word boundaries
  (:func:`ragsift.data.chunking.chunk_text`); each window is scored with the query repeated,
  and the window scores are aggregated (:func:`ragsift.rerank.base.aggregate_windows`);
- ``first``: the first window only;
- ``truncate``: the pair as it is, cut by the model's tokenizer; a warning counts such pairs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from ragsift.data.chunking import chunk_text
from ragsift.errors import UsageError

logger = logging.getLogger(__name__)

LongDocStrategy = Literal["max", "mean", "topk-mean", "first", "truncate"]
STRATEGIES: tuple[str, ...] = ("max", "mean", "topk-mean", "first", "truncate")


def expand_pairs(
    pairs: Sequence[tuple[str, str]],
    tokenizer,
    budget: Callable[[str], int],
    strategy: LongDocStrategy = "max",
    overlap: int | None = None,
) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Window pairs that fit the model, and for each the index of the pair it came from.

    Args:
        pairs: (query, passage) pairs.
        tokenizer: a fast tokenizer (the model's).
        budget: passage tokens that fit beside a query (special tokens excluded).
        strategy: see the module docstring.
        overlap: tokens shared by consecutive windows.

    Returns:
        ``(windows, owners)``: ``owners`` is non-decreasing and covers every pair.
    """
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown long-document strategy {strategy!r}; choose from {STRATEGIES}")
    budgets: dict[str, int] = {}
    lengths = [len(ids) for ids in tokenizer([p for _, p in pairs], add_special_tokens=False,
                                             return_attention_mask=False,
                                             verbose=False)["input_ids"]]
    windows: list[tuple[str, str]] = []
    owners: list[int] = []
    long_pairs = 0
    for i, ((query, passage), length) in enumerate(zip(pairs, lengths)):
        if query not in budgets:
            budgets[query] = budget(query)
            if budgets[query] < 8:
                raise UsageError(f"query too long: only {budgets[query]} tokens left for the "
                                 f"passage; raise max_length or shorten the query")
        limit = budgets[query]
        if length <= limit or strategy == "truncate":
            long_pairs += length > limit
            windows.append((query, passage))
            owners.append(i)
            continue
        long_pairs += 1
        step_overlap = min(limit // 4 if overlap is None else overlap, limit - 1)
        spans = chunk_text(passage, tokenizer, max_tokens=limit, overlap=step_overlap)
        if strategy == "first":
            spans = spans[:1]
        for start, end in spans:
            windows.append((query, passage[start:end]))
            owners.append(i)
    if long_pairs and strategy == "truncate":
        logger.warning("%d of %d pairs are longer than the model takes and were truncated "
                       "(use long_doc='max' to score every part)", long_pairs, len(pairs))
    elif long_pairs:
        logger.info("%d of %d passages split into %d windows (%s)", long_pairs, len(pairs),
                    len(windows) - len(pairs) + long_pairs, strategy)
    return windows, np.asarray(owners, dtype=np.int64)
