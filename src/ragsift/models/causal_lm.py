"""Helpers shared by everything that runs a causal LM (LLM reranker, gain labels, generator).

- :func:`load_causal_lm`: a folder, a GGUF checkpoint (``gguf_file=``, or the only ``.gguf`` of
  the folder, or a packaged name such as ``smollm2-135m``) or a hub id;
- :func:`left_padded_logits`: logits of a left-padded batch with explicit position ids, so a
  padded row gives the logits of the row alone;
- :func:`user_prompt_ids`: a user message as prompt ids (the chat template when the tokenizer
  has one, else ``message + "\\nAnswer:"`` with the tokenizer's special tokens);
- :func:`cut_to_tokens`: a text cut to its first ``n`` tokens.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ragsift.models.hub import gguf_file_for, resolve_model


def load_causal_lm(name: str | os.PathLike[str], gguf_file: str | None = None
                   ) -> tuple[torch.nn.Module, Any, Any]:
    """``(model, tokenizer, folder)`` of a causal LM (see the module docstring)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_model(name)
    gguf_file = gguf_file or gguf_file_for(name, folder)
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(folder, **extra)
    model = AutoModelForCausalLM.from_pretrained(folder, **extra)
    if gguf_file:
        as_plain_model(model)
    return model, tokenizer, folder


def as_plain_model(model: torch.nn.Module) -> None:
    """Drop the quantizer mark a GGUF load leaves on ``model``: transformers dequantizes GGUF
    weights to plain floats on load, yet the mark makes ``save_pretrained`` refuse the model
    (so a model fine-tuned from a GGUF checkpoint could not be saved)."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def left_padded_logits(model: torch.nn.Module, input_ids: torch.Tensor,
                       attention_mask: torch.Tensor, keep_last: int = 0) -> torch.Tensor:
    """``(B, L, vocab)`` logits of a left-padded batch, on the model's device (in the model's
    dtype: callers cast the slice they use). ``keep_last > 0`` computes only the last
    ``keep_last`` positions' logits, ``(B, keep_last, vocab)``: the vocabulary projection of
    every other position is skipped (for SmolLM2 that is a quarter of the forward pass)."""
    device = next(model.parameters()).device
    mask = attention_mask.to(device)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    extra = {"logits_to_keep": keep_last} if keep_last > 0 else {}
    return model(input_ids=input_ids.to(device), attention_mask=mask, position_ids=positions,
                 use_cache=False, **extra).logits


def user_prompt_ids(tokenizer: Any, message: str) -> list[int]:
    """Prompt ids for a user ``message``, ending where the model answers."""
    if getattr(tokenizer, "chat_template", None):
        return list(tokenizer.apply_chat_template(
            [{"role": "user", "content": message}], tokenize=True, add_generation_prompt=True,
            return_dict=False))
    return tokenizer(f"{message}\nAnswer:", add_special_tokens=True)["input_ids"]


def cut_to_tokens(tokenizer: Any, text: str, limit: int) -> str:
    """``text`` unchanged if it has at most ``limit`` tokens, else its first ``limit`` decoded."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= limit else tokenizer.decode(ids[:limit])
