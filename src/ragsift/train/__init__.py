"""Training retrieval models on the Hugging Face Trainer: tasks (embedding, reranker, colbert,
llm-reranker, vector-distill; the table is :data:`ragsift.train.config.TASKS`), their losses
(:mod:`ragsift.train.losses`, :data:`ragsift.train.registry.GROUP_LOSSES`) and configs.

``load_config`` and ``train`` are imported on first use, so reading a config (and ``ragsift
train --help``) does not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_config", "train"]


def __getattr__(name: str) -> Any:
    """``load_config`` from :mod:`ragsift.train.config`, ``train`` from
    :mod:`ragsift.train.trainer`, imported when first asked for."""
    if name == "load_config":
        from ragsift.train.config import load_config

        return load_config
    if name == "train":
        from ragsift.train.trainer import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
