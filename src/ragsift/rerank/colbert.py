"""Late-interaction (ColBERT) rerankers: queries and passages are encoded separately into token
vectors and a pair's score is MaxSim (:mod:`ragsift.models.maxsim`).

Within one call to :meth:`score_fitted` every distinct query and passage is encoded once, so a
passage shared by several queries costs one forward pass. Long passages are split into windows
of ``document_length`` tokens by the shared long-document logic, like every family.

MaxSim is a sum of cosines, not a log-odds: ``score(..., calibrated=True)`` and ``rank(...,
threshold=...)`` need a calibration fitted first (:meth:`Reranker.fit_calibration`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ragsift.atomic import atomic_dir
from ragsift.errors import UsageError
from ragsift.models.colbert import LateInteractionModel, is_late_interaction_folder
from ragsift.models.device import default_device
from ragsift.models.hub import resolve_model
from ragsift.models.maxsim import maxsim_paired
from ragsift.models.onnx import Backend, backend_session
from ragsift.rerank.base import Reranker


class LateInteractionReranker(Reranker):
    """A ColBERT model behind the :class:`Reranker` API.

    Args:
        model: the encoder + projection.
        batch_size, max_batch_tokens: encoding batches.
        backend: ``torch`` or an ONNX/OpenVINO backend for the encoder (see
            :mod:`ragsift.models.onnx`); the projection and MaxSim run in torch.

    Example:
        >>> reranker = Reranker.load("path/to/colbert")  # doctest: +SKIP
        >>> reranker.rank("what is bm25?", ["BM25 ranks documents.", "Paris"])  # doctest: +SKIP
    """

    def __init__(self, model: LateInteractionModel, *, batch_size: int = 32,
                 max_batch_tokens: int = 16384, device: str | None = None,
                 backend: Backend = "torch", threads: int | None = None,
                 **options: Any) -> None:
        super().__init__(**options)
        self.device = torch.device(device or default_device())
        self.model = model.to(self.device).eval()
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.backend = backend
        example = {"input_ids": torch.tensor([[model.tokenizer.cls_token_id or 0, 5, 6]]),
                   "attention_mask": torch.ones(1, 3, dtype=torch.long)}
        model.session = backend_session(model.encoder, example, "last_hidden_state", backend,
                                        "late-interaction", threads)

    @classmethod
    def from_pretrained(cls, name: str | os.PathLike[str], *, max_length: int | None = None,
                        embedding_size: int = 128, query_length: int | None = None,
                        **options: Any) -> LateInteractionReranker:
        """Load a ColBERT folder, or any encoder with a fresh projection (see
        :meth:`LateInteractionModel.from_pretrained`). ``max_length`` sets the document length."""
        folder = resolve_model(name)
        model = LateInteractionModel.from_pretrained(
            folder, embedding_size=embedding_size, document_length=max_length,
            query_length=query_length)
        return cls(model, **options).with_saved_calibration(folder)

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    def passage_budget(self, query: str) -> int:
        return self.model.document_token_budget()

    def score_fitted(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        queries = list(dict.fromkeys(q for q, _ in pairs))
        passages = list(dict.fromkeys(p for _, p in pairs))
        encode = {"batch_size": self.batch_size, "max_batch_tokens": self.max_batch_tokens}
        query_vectors = dict(zip(queries, self.model.encode(queries, True, **encode)))
        passage_vectors = dict(zip(passages, self.model.encode(passages, False, **encode)))
        out = np.zeros(len(pairs), dtype=np.float32)
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start:start + self.batch_size]
            q, q_mask = _pad([query_vectors[query] for query, _ in chunk])
            d, d_mask = _pad([passage_vectors[passage] for _, passage in chunk])
            out[start:start + len(chunk)] = maxsim_paired(q, d, q_mask, d_mask).numpy()
        return out

    def uncalibrated_probability(self, scores: np.ndarray) -> np.ndarray:
        raise UsageError("late-interaction (MaxSim) scores are not probabilities: fit a "
                         "calibration on labelled pairs (fit_calibration) before asking for "
                         "probabilities (calibrated=True, a threshold)")

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save atomically in the PyLate layout, with the calibration when one is fitted."""
        path = Path(path)
        with atomic_dir(path) as tmp:
            self.model.write(tmp)
            self.save_calibration(tmp)
        return path


def _pad(arrays: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``(n_i, D)`` arrays into ``(B, max n_i, D)`` with a mask of real rows."""
    width = max(1, max(len(a) for a in arrays))
    dim = arrays[0].shape[1]
    values = torch.zeros((len(arrays), width, dim), dtype=torch.float32)
    mask = torch.zeros((len(arrays), width), dtype=torch.bool)
    for i, array in enumerate(arrays):
        values[i, :len(array)] = torch.from_numpy(array)
        mask[i, :len(array)] = True
    return values, mask


def is_late_interaction(config: dict, folder: Path) -> bool:
    """A PyLate or Stanford ColBERT folder."""
    return is_late_interaction_folder(folder)
