"""Shallow students cut from a deeper transformer: keep some of its layers, drop the rest.

Which layers: ``first`` keeps layers ``0 .. n-1`` (the bottom of the network); ``uniform``
keeps ``n`` layers spread over the depth, the ``m``-th student layer taken from teacher layer
``(m + 1) * L // n - 1`` of ``L`` (TinyBERT's uniform mapping; the last layer is always kept,
so the student ends on the representation the model was trained to output). For MiniLM-L6 and
``n`` = 2: ``first`` -> [0, 1], ``uniform`` -> [2, 5].

``uniform`` is the default: a model trained with mean pooling (all-MiniLM-L6-v2) fills its
[CLS] state only in the last layer, so a cross-encoder head over the first layers' [CLS] has
nothing to read and does not learn.
"""

from __future__ import annotations

from typing import Literal

import torch

from ragsift.errors import UsageError

LayerChoice = Literal["first", "uniform"]


def chosen_layers(total: int, keep: int, choice: LayerChoice = "uniform") -> list[int]:
    """Indices (ascending) of the ``keep`` layers of a ``total``-layer model to keep.

    Raises:
        UsageError: ``keep`` outside ``1 .. total``.
    """
    if not 1 <= keep <= total:
        raise UsageError(f"layers={keep}, but the model has only {total}")
    if choice == "first":
        return list(range(keep))
    return [(m + 1) * total // keep - 1 for m in range(keep)]


def keep_layers(model: torch.nn.Module, indices: list[int]) -> None:
    """Cut ``model`` (a transformers model) down to the transformer layers ``indices``, in
    place; its config's ``num_hidden_layers`` follows, so the saved model loads as an ordinary
    ``len(indices)``-layer model.

    The layer stack is the ``ModuleList`` under ``model.base_model`` with
    ``config.num_hidden_layers`` entries (``encoder.layer`` in BERT-style models).
    """
    total = model.config.num_hidden_layers
    found = [(name, module) for name, module in model.base_model.named_modules()
             if isinstance(module, torch.nn.ModuleList) and len(module) == total]
    if not found:
        raise UsageError(f"{type(model).__name__} has no list of {total} layers to cut")
    name, stack = found[0]
    parent_name, _, attribute = name.rpartition(".")
    parent = model.base_model.get_submodule(parent_name) if parent_name else model.base_model
    setattr(parent, attribute, torch.nn.ModuleList(stack[i] for i in indices))
    model.config.num_hidden_layers = len(indices)
