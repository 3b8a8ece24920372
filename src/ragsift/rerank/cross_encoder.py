"""Cross-encoder rerankers: a sequence-classification transformer reads query and passage together.

Backends: ``torch`` (default), ``onnx`` (fused fp32 graph) and ``onnx-int8`` (int8 weights), see
:mod:`ragsift.models.onnx`; ``threads`` sets the CPU threads.

Raw score of a pair: the logit for a 1-label head; ``logit_1 - logit_0`` for a 2-label head (so
``sigmoid(raw)`` equals the softmax probability of label 1). Loads and saves the folders of
sentence-transformers' ``CrossEncoder`` (v6 ``modules.json`` layout and older plain folders).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ragsift.atomic import atomic_dir
from ragsift.errors import DataFormatError
from ragsift.models.batching import length_sorted_batches, model_max_length, pad_features
from ragsift.models.device import default_device
from ragsift.models.hub import resolve_model
from ragsift.models.onnx import Backend, backend_session
from ragsift.rerank.base import Reranker

logger = logging.getLogger(__name__)


def pair_scores(logits: torch.Tensor) -> torch.Tensor:
    """The raw score of each pair from a head's ``(N, 1)`` or ``(N, 2)`` logits."""
    return logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]


class CrossEncoderReranker(Reranker):
    """A cross-encoder behind the :class:`Reranker` API.

    Example:
        >>> reranker = Reranker.load("path/to/cross-encoder")  # doctest: +SKIP
        >>> reranker.rank("what is bm25?", ["BM25 ranks documents.", "Paris"])  # doctest: +SKIP
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, *, max_length: int = 512,
                 batch_size: int = 32, max_batch_tokens: int = 16384,
                 device: str | None = None, backend: Backend = "torch",
                 threads: int | None = None, **options: Any) -> None:
        super().__init__(**options)
        labels = int(model.config.num_labels)
        if labels not in (1, 2):
            folder = getattr(model.config, "name_or_path", "") or "."
            raise DataFormatError(Path(folder, "config.json"), None, "num_labels",
                                  f"a cross-encoder reranker needs 1 or 2 labels, not {labels}")
        self.device = torch.device(device or default_device())
        self.model = model.to(self.device).eval()
        self._tokenizer = tokenizer
        positions = getattr(model.config, "max_position_embeddings", None)
        if positions and max_length > positions:
            logger.warning("max_length %d exceeds the model's %d positions; using %d",
                           max_length, positions, positions)
            max_length = positions
        self.max_length = max_length
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self._specials = tokenizer.num_special_tokens_to_add(pair=True)
        self.backend = backend
        example = dict(tokenizer(["query"], ["passage"], return_tensors="pt"))
        self._session = backend_session(self.model, example, "logits", backend, "cross-encoder",
                                        threads)

    @classmethod
    def from_pretrained(cls, name: str | os.PathLike[str], *, max_length: int | None = None,
                        **options: Any) -> CrossEncoderReranker:
        """Load a cross-encoder folder (sentence-transformers or transformers layout)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        folder = resolve_model(name)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSequenceClassification.from_pretrained(folder)
        max_length = max_length or model_max_length(model, tokenizer)
        return cls(model, tokenizer, max_length=max_length, **options).with_saved_calibration(
            folder)

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    def passage_budget(self, query: str) -> int:
        query_tokens = len(self._tokenizer(query, add_special_tokens=False)["input_ids"])
        return self.max_length - self._specials - query_tokens

    def score_fitted(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        encoded = self._tokenizer([q for q, _ in pairs], [p for _, p in pairs],
                                  truncation="longest_first", max_length=self.max_length,
                                  return_attention_mask=False)
        keys = [k for k in ("input_ids", "token_type_ids") if k in encoded]
        lengths = [len(ids) for ids in encoded["input_ids"]]
        out = np.zeros(len(pairs), dtype=np.float32)
        with torch.inference_mode():
            for batch in length_sorted_batches(lengths, self.batch_size, self.max_batch_tokens):
                features = pad_features({k: [encoded[k][i] for i in batch] for k in keys},
                                        self._tokenizer.pad_token_id,
                                        self._tokenizer.padding_side)
                if self._session is not None:
                    logits = self._session(features)
                else:
                    logits = self.model(**{k: v.to(self.device)
                                           for k, v in features.items()}).logits
                out[batch] = pair_scores(logits).float().cpu().numpy()
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save atomically in the layout ``sentence_transformers.CrossEncoder`` loads."""
        path = Path(path)
        with atomic_dir(path) as tmp:
            self.write(tmp)
        return path

    def write(self, tmp: Path) -> None:
        """Write the model files into an existing folder (see :meth:`save`)."""
        self.model.save_pretrained(tmp)
        self._tokenizer.save_pretrained(tmp)
        modules = [{"idx": 0, "name": "0", "path": "",
                    "type": "sentence_transformers.base.modules.transformer.Transformer"}]
        (tmp / "modules.json").write_text(json.dumps(modules, indent=2))
        (tmp / "sentence_bert_config.json").write_text(json.dumps({
            "transformer_task": "sequence-classification",
            "modality_config": {"text": {"method": "forward",
                                         "method_output_name": "logits"}},
            "module_output_name": "scores",
        }, indent=2))
        activation = ("torch.nn.modules.activation.Sigmoid"
                      if self.model.config.num_labels == 1 else
                      "torch.nn.modules.linear.Identity")
        (tmp / "config_sentence_transformers.json").write_text(json.dumps({
            "activation_fn": activation, "model_type": "CrossEncoder", "prompts": {},
            "default_prompt_name": None,
        }, indent=2))
        self.save_calibration(tmp)


def is_cross_encoder(config: dict, folder: Path) -> bool:
    """A transformers sequence-classification model."""
    return any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or [])
