"""LoRA adapters (peft) for any task: wrap before training, merge before saving."""

from __future__ import annotations

import torch

from ragsift.errors import MissingExtraError
from ragsift.train.config import LoraSettings


def with_lora(model: torch.nn.Module, settings: LoraSettings, seed: int,
              task_type: str | None = None) -> torch.nn.Module:
    """``model`` with trainable LoRA adapters on ``settings.lora_targets`` (the other weights
    frozen); the adapters are initialised from ``seed``. The wrapping changes ``model`` in place:
    its own forward now runs through the adapters."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise MissingExtraError("peft", "train") from exc
    config = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha,
                        lora_dropout=settings.lora_dropout,
                        target_modules=list(settings.lora_targets), task_type=task_type)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return get_peft_model(model, config)


def merged(peft_model: torch.nn.Module) -> torch.nn.Module:
    """The base model with the adapters folded into its weights (no peft needed to load it)."""
    return peft_model.merge_and_unload()
