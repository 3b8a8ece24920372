"""A bi-encoder on transformers: texts -> vectors, reading and writing the sentence-transformers
layout, with query/document prompts, MRL truncation and length-sorted token-budget batching.

The embedding of a text ``t`` with prompt ``p`` is
``e = normalize?(dense?(pool(transformer(p + t))))[:truncate_dim]`` (re-normalised after
truncation when the model normalises), so that for a sentence-transformers folder it equals
``SentenceTransformer(folder).encode(t, prompt=p)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ragsift.atomic import atomic_dir
from ragsift.errors import DataFormatError, UsageError
from ragsift.models.batching import length_sorted_batches, model_max_length, pad_features
from ragsift.models.device import default_device
from ragsift.models.dropout import attention_dropout_for
from ragsift.models.fingerprint import weights_fingerprint
from ragsift.models.hub import gguf_file_for, model_id, resolve_model
from ragsift.models.onnx import Backend, backend_session
from ragsift.models.pooling import PoolingMode, pool
from ragsift.models.st_layout import SentenceTransformerLayout
from ragsift.types import Document

logger = logging.getLogger(__name__)

_QUERY_PROMPT_KEYS = ("query",)
_DOCUMENT_PROMPT_KEYS = ("document", "passage", "corpus", "doc")


class BiEncoder:
    """Encode queries and documents into vectors with any transformers encoder.

    Args:
        model: a transformers model whose output has ``last_hidden_state``.
        tokenizer: its fast tokenizer.
        layout: pooling, normalisation, dense layers, prompts and max length.
        name: the identifier recorded in index manifests.
        truncate_dim: keep the first ``truncate_dim`` dimensions (Matryoshka models).
        batch_size: most texts in a forward pass.
        max_batch_tokens: most padded tokens in a forward pass.
        backend: ``torch``, ``onnx`` (fused fp32 graph) or ``onnx-int8`` (int8 weights); see
            :mod:`ragsift.models.onnx`. threads: CPU threads.

    Example:
        >>> encoder = BiEncoder.from_pretrained("minilm-l6")  # doctest: +SKIP
        >>> encoder.encode_queries(["what is bm25?"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        layout: SentenceTransformerLayout,
        *,
        name: str = "",
        truncate_dim: int | None = None,
        batch_size: int = 32,
        max_batch_tokens: int = 16384,
        device: str | None = None,
        backend: Backend = "torch",
        threads: int | None = None,
    ) -> None:
        self.device = torch.device(device or default_device())
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.layout = layout
        self.name = name
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        if layout.max_seq_length is None:  # no sentence_bert_config.json: the model's own limit
            layout.max_seq_length = model_max_length(model, tokenizer)
        full = self._full_dim()
        if truncate_dim is not None and not 0 < truncate_dim <= full:
            raise UsageError(f"truncate_dim (--truncate-dim) must be in 1..{full} for this "
                             f"model, got {truncate_dim}")
        self.truncate_dim = truncate_dim
        self._fingerprint: str | None = None
        self._truncation_said = False
        self.backend = backend
        example = {"input_ids": torch.tensor([[tokenizer.cls_token_id or 0, 5, 6]]),
                   "attention_mask": torch.ones(1, 3, dtype=torch.long)}
        self._session = backend_session(self.model, example, "last_hidden_state", backend,
                                        "bi-encoder", threads)

    @classmethod
    def from_pretrained(
        cls,
        name: str | os.PathLike[str],
        *,
        truncate_dim: int | None = None,
        max_length: int | None = None,
        pooling: PoolingMode | None = None,
        normalize: bool | None = None,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        device: str | None = None,
        torch_dtype: torch.dtype | None = None,
        attention_dropout: float | None = None,
        **kwargs,
    ) -> BiEncoder:
        """Load a sentence-transformers folder, a plain transformers folder, a packaged model
        name (``minilm-l6``) or a hub id. Explicit arguments override the folder's settings;
        ``attention_dropout`` replaces the model's (for training, see
        :mod:`ragsift.models.dropout`)."""
        from transformers import AutoModel, AutoTokenizer

        folder = resolve_model(name)
        layout = SentenceTransformerLayout.read(folder)
        overrides = {
            "max_seq_length": max_length, "pooling": pooling, "normalize": normalize,
        }
        layout = replace(layout, **{k: v for k, v in overrides.items() if v is not None})
        prompts = dict(layout.prompts)
        if query_prompt is not None:
            prompts["query"] = query_prompt
        if document_prompt is not None:
            prompts["document"] = document_prompt
        layout.prompts = prompts
        gguf = gguf_file_for(name, layout.transformer_dir)
        extra = {"gguf_file": gguf} if gguf else {}
        tokenizer = AutoTokenizer.from_pretrained(layout.transformer_dir, **extra)
        if not tokenizer.is_fast:
            raise DataFormatError(folder, None, "tokenizer.json",
                                  "ragsift needs a fast (Rust) tokenizer")
        if tokenizer.pad_token_id is None:  # decoder LMs: pad with end-of-sequence
            tokenizer.pad_token = tokenizer.eos_token
        model_kwargs: dict[str, Any] = {"dtype": torch_dtype} if torch_dtype is not None else {}
        model_kwargs.update(attention_dropout_for(layout.transformer_dir, attention_dropout,
                                                  **extra))
        model = AutoModel.from_pretrained(layout.transformer_dir, **model_kwargs, **extra)
        return cls(model, tokenizer, layout, name=model_id(name), truncate_dim=truncate_dim,
                   device=device, **kwargs)

    @property
    def max_length(self) -> int:
        """Most tokens per text, special tokens included; longer texts are truncated."""
        return int(self.layout.max_seq_length)

    @property
    def dim(self) -> int:
        """The size of the vectors :meth:`encode` returns."""
        return self.truncate_dim or self._full_dim()

    @property
    def similarity(self) -> str:
        """``cosine`` or ``dot``: how this model's vectors are meant to be compared."""
        return self.layout.similarity

    def _full_dim(self) -> int:
        if self.layout.dense:
            return self.layout.dense[-1].linear.out_features
        return int(self.model.config.hidden_size)

    def fingerprint(self) -> str:
        """A hash of everything that determines the vectors: weights, pooling, prompts, sizes.

        Computed once (it reads every parameter) and reused; keys the embedding cache.
        """
        if self._fingerprint is None:
            layout = self.layout
            settings = (self.name, layout.pooling, layout.normalize, layout.include_prompt,
                        layout.max_seq_length, layout.do_lower_case, sorted(layout.prompts.items()),
                        self.truncate_dim, self.backend)
            modules = [self.model] + [layer.linear for layer in layout.dense]
            self._fingerprint = weights_fingerprint(modules, settings)
        return self._fingerprint

    def _prompt(self, keys: Sequence[str]) -> str:
        return next((self.layout.prompts[k] for k in keys if k in self.layout.prompts), "")

    def prompt_for(self, kind: str) -> str:
        """The model's prompt for ``"query"`` or ``"document"`` texts (``""`` if none)."""
        return self._prompt(_QUERY_PROMPT_KEYS if kind == "query" else _DOCUMENT_PROMPT_KEYS)

    def tokenize(self, texts: Sequence[str], prompt: str = "",
                 max_length: int | None = None) -> tuple[dict[str, torch.Tensor], int]:
        """A padded batch of ``prompt + text`` (cut at ``max_length``, at most
        :attr:`max_length`) and the prompt length to pass to :meth:`embed`."""
        ids, prompt_length = self._token_ids(texts, prompt,
                                             min(max_length or self.max_length, self.max_length))
        features = pad_features({"input_ids": ids}, self.tokenizer.pad_token_id,
                                self.tokenizer.padding_side)
        return features, prompt_length

    def _token_ids(self, texts: Sequence[str], prompt: str, limit: int
                   ) -> tuple[list[list[int]], int]:
        """Ids of ``prompt + text`` (lower-cased when the model says so) cut at ``limit``, and
        the number of leading prompt tokens to leave out of pooling."""
        if self.layout.do_lower_case:
            texts, prompt = [t.lower() for t in texts], prompt.lower()
        ids = self.tokenizer([prompt + t for t in texts], truncation=True, max_length=limit,
                             add_special_tokens=True, return_attention_mask=False,
                             return_token_type_ids=False, verbose=False)["input_ids"]
        return ids, self._prompt_length(prompt)

    def encode_queries(self, queries: Sequence[str], **kwargs) -> np.ndarray:
        """Encode queries with the model's query prompt (if it has one)."""
        return self.encode(queries, prompt=self._prompt(_QUERY_PROMPT_KEYS), **kwargs)

    def encode_documents(self, documents: Sequence[str | Document], **kwargs) -> np.ndarray:
        """Encode documents (``title + " " + text`` for a :class:`Document`, as BEIR does)."""
        texts = [d.full_text() if isinstance(d, Document) else d for d in documents]
        return self.encode(texts, prompt=self._prompt(_DOCUMENT_PROMPT_KEYS), **kwargs)

    def encode(
        self,
        texts: Sequence[str],
        *,
        prompt: str = "",
        show_progress: bool = False,
        normalize: bool | None = None,
    ) -> np.ndarray:
        """Embed ``texts``; returns a float32 array of shape ``(len(texts), dim)``.

        Texts are tokenized once, sorted by token length and cut into batches of at most
        ``batch_size`` rows and ``max_batch_tokens`` padded tokens; rows come back in input order.
        Texts longer than :attr:`max_length` are truncated, and their count is logged (at info
        level on the encoder's first call that truncates, at debug level after).
        """
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, not a single string")
        normalize = self.layout.normalize if normalize is None else normalize
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        encodings, prompt_length = self._token_ids(texts, prompt, self.max_length)
        lengths = [len(ids) for ids in encodings]
        at_limit = sum(n >= self.max_length for n in lengths)
        if at_limit:  # said once at info level; a job encoding many small lists repeats it
            logger.log(logging.DEBUG if self._truncation_said else logging.INFO,
                       "%d of %d texts reached the %d-token limit and were truncated%s",
                       at_limit, len(texts), self.max_length,
                       "" if self._truncation_said else " (later counts at debug level, -v)")
            self._truncation_said = True
        batches = length_sorted_batches(lengths, self.batch_size, self.max_batch_tokens)
        with torch.inference_mode():
            for batch in tqdm(batches, desc="encode", unit="batch", disable=not show_progress):
                features = pad_features({"input_ids": [encodings[i] for i in batch]},
                                        self.tokenizer.pad_token_id, self.tokenizer.padding_side)
                out[batch] = self.embed(features, prompt_length, normalize).cpu().numpy()
        return out

    def _prompt_length(self, prompt: str) -> int:
        if not prompt or self.layout.include_prompt:
            return 0
        # Prompt tokens are masked out of pooling; the final special token is not part of them.
        return len(self.tokenizer(prompt, add_special_tokens=True)["input_ids"]) - 1

    def embed(self, features: dict[str, torch.Tensor], prompt_length: int = 0,
              normalize: bool | None = None) -> torch.Tensor:
        """Vectors of one padded batch (``input_ids``, ``attention_mask``), differentiable on
        the torch backend; the first ``prompt_length`` tokens are left out of pooling."""
        normalize = self.layout.normalize if normalize is None else normalize
        if self._session is not None:
            hidden = self._session(features)
        else:
            device = next(self.model.parameters()).device  # the trainer may have moved it
            features = {k: v.to(device) for k, v in features.items()}
            hidden = self.model(**features).last_hidden_state
        mask = features["attention_mask"].to(hidden.device)
        if prompt_length:
            mask = mask.clone()
            mask[:, :prompt_length] = 0
        vectors = pool(hidden, mask, self.layout.pooling).float()
        for layer in self.layout.dense:
            vectors = layer(vectors)
        if self.truncate_dim is not None:
            vectors = vectors[:, : self.truncate_dim]
        if normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return vectors

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save in the sentence-transformers layout, atomically; returns the folder.

        The folder loads with ``SentenceTransformer(path)``, ``AutoModel.from_pretrained(path)``
        and :meth:`from_pretrained`.
        """
        path = Path(path)
        with atomic_dir(path) as tmp:
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            self.layout.write(tmp, dim=int(self.model.config.hidden_size))
        return path
