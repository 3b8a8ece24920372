"""A SPLADE encoder: a masked-language model turned into sparse, vocabulary-sized term weights.

For a text with tokens ``i = 1..L`` and MLM logits ``l_ij`` (token position ``i``, vocabulary
term ``j``), the weight of term ``j`` is

    w_j = max_{i in P} log(1 + relu(l_ij))

where ``P`` is the set of scored positions: every real token, without padding and without the
special tokens the tokenizer adds (``[CLS]``, ``[SEP]``; or ``<s>``, ``</s>``) unless
``mask_special_tokens=False``. Because ``log(1 + relu(x))`` is non-decreasing, this equals
``log(1 + relu(max_{i in P} l_ij))``, which is how it is computed (one max over the logits).
Optionally only the ``top_k`` largest weights of each text are kept. A query ``q`` and a document
``d`` are compared with the dot product ``s(q, d) = sum_j w_j(q) * w_j(d)``
(:class:`~ragsift.retrieve.splade.SparseRetriever`).

Outputs are ``scipy.sparse`` CSR matrices of shape ``(n_texts, vocab_size)``, float32.

Backends (:mod:`ragsift.models.onnx`): ``torch``, or the whole computation above (encoder, MLM
head, masked max over positions, ``log1p(relu)``) exported as one ONNX graph
(:class:`SpladePooling`), so that only the ``(batch, vocab_size)`` weights leave the graph:
``onnx`` (fused fp32), ``onnx-int8`` (int8 MatMul weights, the 30,522-term MLM projection
included) and ``openvino`` / ``openvino-bf16``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from ragsift.errors import RagsiftError
from ragsift.models.batching import length_sorted_batches, model_max_length, pad_features
from ragsift.models.device import default_device
from ragsift.models.hub import model_id, resolve_model
from ragsift.models.onnx import Backend, backend_session
from ragsift.types import Document

logger = logging.getLogger(__name__)


def pool_logits(logits: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """SPLADE weights ``log(1 + relu(max_{i in P} l_ij))`` of ``logits`` ``(B, L, V)`` over the
    positions where ``keep`` ``(B, L)`` is true; ``(B, V)``, 0 for a row with no kept position.
    Float32 ``logits`` are overwritten (masked in place: no second ``B x L x V`` buffer).

    Example:
        >>> logits = torch.tensor([[[1.0, -2.0], [3.0, -1.0]]])
        >>> pool_logits(logits, torch.tensor([[True, False]])).tolist()  # log 2, log 1
        [[0.6931471824645996, 0.0]]
    """
    masked = logits.float().masked_fill_(~keep.bool().unsqueeze(-1), float("-inf"))
    return torch.log1p(torch.relu(masked.amax(dim=1)))


class SpladePooling(torch.nn.Module):
    """A masked-LM and :func:`pool_logits` as one module, the graph the ONNX backends export:
    ``(input_ids, attention_mask, score_mask)`` -> ``(B, V)`` term weights (``score_mask`` is
    :meth:`SpladeEncoder.scored_positions` as integers)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                score_mask: torch.Tensor) -> torch.Tensor:
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        return pool_logits(logits, score_mask)


class SpladeEncoder:
    """Encode queries and documents into sparse SPLADE term-weight vectors.

    Args:
        model: a transformers masked-language model (its output has ``logits`` of shape
            ``(batch, tokens, vocab_size)``).
        tokenizer: its fast tokenizer.
        name: the identifier recorded in index manifests.
        max_length: most tokens per text, special tokens included (default: the model's limit).
        batch_size: most texts in a forward pass.
        max_batch_tokens: most padded tokens in a forward pass; the logits of a batch take
            ``max_batch_tokens * vocab_size * 4`` bytes (500 MB for 4096 tokens and BERT's
            30,522 terms), so this bounds memory.
        top_k: keep only the ``top_k`` largest weights of each text (``None``: keep all).
        mask_special_tokens: leave ``[CLS]``/``[SEP]`` (and the like) out of the max.
        device: ``cuda``, ``mps`` or ``cpu`` (default: the best available; ``cpu`` for the
            ONNX and OpenVINO backends).
        backend: ``torch``, ``onnx``, ``onnx-int8``, ``openvino`` or ``openvino-bf16`` (see the
            module docstring; the export is cached per model under ``$RAGSIFT_CACHE_DIR``).
        threads: intra-op threads of the backend (default: its own choice).

    Example:
        >>> encoder = SpladeEncoder.from_pretrained("splade-tiny")  # doctest: +SKIP
        >>> encoder.encode_queries(["what causes high blood pressure"]).nnz  # doctest: +SKIP
        14
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        *,
        name: str = "",
        max_length: int | None = None,
        batch_size: int = 32,
        max_batch_tokens: int = 4096,
        top_k: int | None = None,
        mask_special_tokens: bool = True,
        device: str | None = None,
        backend: Backend = "torch",
        threads: int | None = None,
    ) -> None:
        if top_k is not None and top_k < 1:
            raise RagsiftError(f"SPLADE top_k must be >= 1 (or None to keep every term), "
                               f"got {top_k}")
        if max_length is not None and max_length < 2:
            raise RagsiftError(f"SPLADE max_length must be >= 2 tokens, got {max_length}")
        if backend != "torch":
            device = "cpu"
        self.device = torch.device(device or default_device())
        self.model = model.to(self.device).eval()
        self.backend = backend
        self.tokenizer = tokenizer
        self.name = name
        limit = model_max_length(model, tokenizer)
        self.max_length = min(max_length, limit) if max_length else limit
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.top_k = top_k
        self.mask_special_tokens = mask_special_tokens
        special = (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.bos_token_id,
                   tokenizer.eos_token_id)
        self._special_ids = torch.tensor(sorted({i for i in special if i is not None}),
                                         dtype=torch.long)
        example = {"input_ids": torch.ones((2, 16), dtype=torch.long),
                   "attention_mask": torch.ones((2, 16), dtype=torch.long),
                   "score_mask": torch.ones((2, 16), dtype=torch.long)}
        self._session = backend_session(self.model, example, "weights", backend, "splade",
                                        threads, graph=SpladePooling(self.model))

    @classmethod
    def from_pretrained(
        cls,
        name: str | os.PathLike[str],
        *,
        max_length: int | None = None,
        batch_size: int = 32,
        device: str | None = None,
        **kwargs,
    ) -> SpladeEncoder:
        """Load a masked-LM folder, a packaged model name (``splade-tiny``) or a hub id.

        Raises:
            RagsiftError: the folder holds no masked-LM head (e.g. a bi-encoder such as
                ``minilm-l6``), or no fast tokenizer.
        """
        from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

        folder = resolve_model(name)
        architectures = AutoConfig.from_pretrained(folder).architectures or []
        if architectures and not any(a.endswith(("ForMaskedLM", "ForPreTraining"))
                                     for a in architectures):
            raise RagsiftError(
                f"{folder}: a SPLADE model needs a masked-language-model head, but this model is "
                f"{', '.join(architectures)}; use a *ForMaskedLM checkpoint (e.g. splade-tiny), "
                f"or dense:MODEL for bi-encoders"
            )
        tokenizer = AutoTokenizer.from_pretrained(folder)
        if not tokenizer.is_fast:
            raise RagsiftError(f"{folder}: ragsift needs a fast (Rust) tokenizer (tokenizer.json)")
        model = AutoModelForMaskedLM.from_pretrained(folder)
        return cls(model, tokenizer, name=model_id(name), max_length=max_length,
                   batch_size=batch_size, device=device, **kwargs)

    @property
    def vocab_size(self) -> int:
        """The number of columns of the matrices :meth:`encode` returns."""
        return int(self.model.config.vocab_size)

    def encode_queries(self, queries: Sequence[str], **kwargs) -> sp.csr_matrix:
        """Term weights of queries, a CSR matrix ``(len(queries), vocab_size)``."""
        return self.encode(queries, **kwargs)

    def encode_documents(self, documents: Sequence[str | Document], **kwargs) -> sp.csr_matrix:
        """Term weights of documents (``title + " " + text`` for a :class:`Document`)."""
        texts = [d.full_text() if isinstance(d, Document) else d for d in documents]
        return self.encode(texts, **kwargs)

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> sp.csr_matrix:
        """Term weights of ``texts``: a float32 CSR matrix ``(len(texts), vocab_size)``.

        Texts are tokenized once, sorted by length and cut into batches of at most
        ``batch_size`` rows and ``max_batch_tokens`` padded tokens; rows come back in input
        order. Texts longer than :attr:`max_length` are truncated (their count is logged).
        """
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, not a single string")
        if not len(texts):
            return sp.csr_matrix((0, self.vocab_size), dtype=np.float32)
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_length,
                             add_special_tokens=True, return_attention_mask=False,
                             return_token_type_ids=False, verbose=False)["input_ids"]
        lengths = [len(row) for row in ids]
        at_limit = sum(n >= self.max_length for n in lengths)
        if at_limit:
            logger.info("%d of %d texts reached the %d-token limit and were truncated",
                        at_limit, len(texts), self.max_length)
        batches = length_sorted_batches(lengths, self.batch_size, self.max_batch_tokens)
        blocks = []
        with torch.inference_mode():
            for batch in tqdm(batches, desc="splade", unit="batch", disable=not show_progress):
                features = pad_features({"input_ids": [ids[i] for i in batch]},
                                        self.tokenizer.pad_token_id, self.tokenizer.padding_side)
                weights = self.term_weights(features).cpu().numpy()
                blocks.append(sp.csr_matrix(weights, dtype=np.float32))
        order = np.concatenate(batches)
        matrix = sp.vstack(blocks, format="csr", dtype=np.float32)
        return matrix[np.argsort(order)]

    def term_weights(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Dense term weights ``(batch, vocab_size)`` of one padded batch (``input_ids``,
        ``attention_mask``): ``w_j = log(1 + relu(max_{i in P} l_ij))``, then top-k pruned."""
        features = {k: v.to(self.device) for k, v in features.items()}
        keep = self.scored_positions(features["input_ids"], features["attention_mask"])
        if self._session is not None:
            weights = self._session({**features, "score_mask": keep.long()})
        else:
            weights = pool_logits(self.model(**features).logits, keep)
        if self.top_k is not None and self.top_k < weights.shape[1]:
            top = torch.topk(weights, self.top_k, dim=1)
            weights = torch.zeros_like(weights).scatter_(1, top.indices, top.values)
        return weights

    def scored_positions(self, input_ids: torch.Tensor,
                         attention_mask: torch.Tensor) -> torch.Tensor:
        """The positions ``P`` the max runs over: real tokens, minus special tokens when
        ``mask_special_tokens`` (a boolean tensor shaped like ``input_ids``)."""
        keep = attention_mask.bool()
        if self.mask_special_tokens and len(self._special_ids):
            keep &= ~torch.isin(input_ids, self._special_ids.to(input_ids.device))
        return keep

    def top_terms(self, text: str, n: int = 20) -> list[tuple[str, float]]:
        """The ``n`` heaviest vocabulary terms of ``text`` with their weights, heaviest first
        (to inspect what a model expands a text to).

        Example:
            >>> encoder.top_terms("tower in paris", 3)  # doctest: +SKIP
            [('paris', 2.48...), ('tower', 2.42...), ('france', 1.27...)]
        """
        row = self.encode([text])
        order = np.argsort(-row.data, kind="stable")[:n]
        tokens = self.tokenizer.convert_ids_to_tokens(row.indices[order].tolist())
        return [(t, float(w)) for t, w in zip(tokens, row.data[order])]
