"""Where models run by default: the one place that picks the torch device."""

from __future__ import annotations

import torch


def default_device() -> str:
    """``cuda`` when a GPU is visible, else ``mps`` on Apple silicon, else ``cpu``.

    Example:
        >>> default_device() in ("cuda", "mps", "cpu")
        True
    """
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
