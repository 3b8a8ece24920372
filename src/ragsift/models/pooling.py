"""Pooling token vectors into one vector per text, and the sentence-transformers config for it.

With token vectors ``h_1..h_n`` and attention mask ``m_1..m_n``:

- ``mean``: ``sum_i m_i h_i / max(sum_i m_i, 1e-9)``
- ``max``: ``max_i h_i`` over unmasked tokens
- ``cls``: ``h_1``
- ``mean_sqrt_len``: ``sum_i m_i h_i / sqrt(sum_i m_i)``
- ``lasttoken``: the vector of the last unmasked token (works with left or right padding)
"""

from __future__ import annotations

from typing import Literal

import torch

from ragsift.errors import DataFormatError, UsageError

PoolingMode = Literal["mean", "max", "cls", "mean_sqrt_len", "lasttoken"]

# sentence-transformers' Pooling config keys, by our mode names.
_CONFIG_KEYS: dict[str, str] = {
    "cls": "pooling_mode_cls_token",
    "mean": "pooling_mode_mean_tokens",
    "max": "pooling_mode_max_tokens",
    "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: PoolingMode) -> torch.Tensor:
    """Pool ``hidden`` (batch, tokens, dim) under ``mask`` (batch, tokens) into (batch, dim)."""
    maskf = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "mean":
        return (hidden * maskf).sum(1) / maskf.sum(1).clamp(min=1e-9)
    if mode == "mean_sqrt_len":
        return (hidden * maskf).sum(1) / maskf.sum(1).clamp(min=1e-9).sqrt()
    if mode == "max":
        return hidden.masked_fill(maskf == 0, torch.finfo(hidden.dtype).min).max(1).values
    if mode == "cls":
        return hidden[:, 0]
    if mode == "lasttoken":
        width = mask.shape[1]
        positions = torch.arange(width, device=mask.device).expand_as(mask)
        last = (positions * mask).argmax(1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise _unknown_mode(mode)


def mode_from_config(config: dict, source: str = "pooling config") -> PoolingMode:
    """Our mode name from a sentence-transformers ``1_Pooling/config.json`` dict.

    Raises:
        DataFormatError: naming ``source`` (the config file): no mode, several modes at once,
            or a mode we do not implement.
    """
    if "pooling_mode" in config:  # newer sentence-transformers write the name directly
        name = str(config["pooling_mode"]).replace("_tokens", "").replace("_token", "")
        if name not in _CONFIG_KEYS:
            raise DataFormatError(source, None, "pooling_mode",
                                  f"unsupported pooling mode {name!r}")
        return name  # type: ignore[return-value]
    active = [key for key, value in config.items() if key.startswith("pooling_mode") and value]
    if len(active) != 1:
        raise DataFormatError(source, None, "pooling_mode",
                              f"expected exactly one pooling mode enabled, got {active}")
    for mode, key in _CONFIG_KEYS.items():
        if key == active[0]:
            return mode  # type: ignore[return-value]
    raise DataFormatError(source, None, active[0], "unsupported pooling mode")


def _unknown_mode(mode: str) -> UsageError:
    """The error for a pooling mode (a setting the user chose) that is not one of ours."""
    return UsageError(f"unknown pooling mode {mode!r}; choose one of {sorted(_CONFIG_KEYS)}")


def config_for_mode(mode: PoolingMode, dim: int, include_prompt: bool = True) -> dict:
    """The sentence-transformers Pooling config dict that selects ``mode``."""
    if mode not in _CONFIG_KEYS:
        raise _unknown_mode(mode)
    config: dict = {"word_embedding_dimension": dim}
    config.update({key: (name == mode) for name, key in _CONFIG_KEYS.items()})
    config["pooling_mode_weightedmean_tokens"] = False
    config["include_prompt"] = include_prompt
    return config
