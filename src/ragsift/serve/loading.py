"""Loading the server's rerankers, with one-line errors that say what to fix.

The family comes from ``options.family`` (``ragsift serve --reranker-family``) or, as
:meth:`Reranker.load` does, from the model's config. A cross-encoder whose checkpoint lacks its
scoring head (a bi-encoder loaded as a cross-encoder: transformers fills the missing
``classifier`` weights with random numbers and only logs a warning) is refused unless the
options say ``allow_untrained_head: true``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ragsift.errors import RagsiftError
from ragsift.models.hub import resolve_model
from ragsift.rerank import CrossEncoderReranker, Reranker
from ragsift.rerank.base import detect_family
from ragsift.serve.config import ALLOW_UNTRAINED_HEAD, ModelConfig

INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


class ModelLoadError(RagsiftError, ValueError):
    """A configured model the server cannot serve; the message names it and says what to do."""


def load_reranker(name: str, entry: ModelConfig) -> Reranker:
    """Load the reranker served as ``name``.

    Raises:
        ModelLoadError: the family cannot be told (and no ``family`` option names it), the
            loader refuses the model or its options, or a cross-encoder's scoring head is
            untrained and ``allow_untrained_head`` is not set.
    """
    options = dict(entry.options)
    allow_untrained = options.pop(ALLOW_UNTRAINED_HEAD, False)
    folder = resolve_model(entry.model)
    family = options.pop("family", None) or reranker_family(name, folder)
    try:
        reranker = Reranker.load(folder, family=family, **options)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"reranker {name!r} ({entry.model}): {exc}") from exc
    missing = untrained_head(reranker, folder)
    if missing and not allow_untrained:
        raise ModelLoadError(
            f"reranker {name!r} ({entry.model}): its checkpoint has no weights for the "
            f"cross-encoder's scoring head ({', '.join(missing)}), so transformers initialised "
            "them at random and every score would be noise; serve a trained cross-encoder, or "
            f"pass --allow-untrained-head (options: {{{ALLOW_UNTRAINED_HEAD}: true}}) to serve "
            "it anyway")
    return reranker


def reranker_family(name: str, folder: Path) -> str:
    """The family :meth:`Reranker.load` detects from ``folder``'s config, or a
    :class:`ModelLoadError` saying how to name it."""
    try:
        return detect_family(folder)
    except ValueError as exc:
        raise ModelLoadError(f"reranker {name!r}: {exc}; with ragsift serve: --reranker-family "
                             "FAMILY, or options: {family: FAMILY} in the config") from None


def untrained_head(reranker: Reranker, folder: Path) -> list[str]:
    """The parameters of a cross-encoder's scoring head (those outside its base model) that
    the checkpoint in ``folder`` lacks; empty for other families and for a folder whose
    checkpoint files are not recognised."""
    if not isinstance(reranker, CrossEncoderReranker):
        return []
    saved = checkpoint_keys(folder)
    if saved is None:
        return []
    prefix = reranker.model.base_model_prefix + "."
    return [key for key in reranker.model.state_dict()
            if not key.startswith(prefix) and key not in saved]


def checkpoint_keys(folder: Path) -> set[str] | None:
    """The names of the tensors a transformers checkpoint folder holds (safetensors or
    PyTorch, sharded or not), read without loading them; ``None`` when it has no such file."""
    for index in INDEX_FILES:
        if (folder / index).is_file():
            return set(json.loads((folder / index).read_text())["weight_map"])
    if (folder / "model.safetensors").is_file():
        from safetensors import safe_open

        with safe_open(folder / "model.safetensors", framework="pt") as weights:
            return set(weights.keys())
    if (folder / "pytorch_model.bin").is_file():
        import torch

        return set(torch.load(folder / "pytorch_model.bin", map_location="meta", mmap=True,
                              weights_only=True))
    return None
