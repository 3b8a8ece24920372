"""LLM rerankers: a causal language model asked whether a passage answers a query.

The prompt (the model's chat template when it has one) ends where the model would answer; the
raw score is the log-odds of "yes" against "no" at that position:

``s = logsumexp_{t in YES} z_t - logsumexp_{t in NO} z_t``

over the next-token logits ``z`` and the single-token spellings of the answer words (``yes``,
``Yes``, `` yes``, ... and likewise for ``no``), so ``sigmoid(s)`` is the model's probability of
"yes" given that it answers yes or no. Batches are left-padded with explicit position ids, so a
padded prompt scores exactly as it does alone. GGUF checkpoints load through transformers'
``gguf_file=`` (extra ``[llm]``: gguf, accelerate).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ragsift.models.batching import length_sorted_batches, pad_features
from ragsift.models.bi_encoder import default_device
from ragsift.models.causal_lm import left_padded_logits, load_causal_lm
from ragsift.rerank.base import Reranker

DEFAULT_TEMPLATE = "Query: {query}\nPassage: {passage}\n{instruction}"
DEFAULT_INSTRUCTION = "Does the passage answer the query? Answer yes or no."
_YES = ("yes", "Yes", "YES", " yes", " Yes")
_NO = ("no", "No", "NO", " no", " No")


def single_token_ids(tokenizer: Any, words: Sequence[str]) -> list[int]:
    """Ids of the spellings in ``words`` that are one token each (duplicates removed)."""
    ids = {tuple(tokenizer(w, add_special_tokens=False)["input_ids"]) for w in words}
    return sorted(i[0] for i in ids if len(i) == 1)


class CausalLMReranker(Reranker):
    """A causal LM judging relevance, behind the :class:`Reranker` API.

    Args:
        model, tokenizer: a transformers causal LM and its tokenizer.
        template: the user message, with ``{query}``, ``{passage}`` and ``{instruction}``.
        instruction: the question asked about each pair.
        max_length: most tokens per prompt; longer passages are windowed by the base class.

    Example:
        >>> reranker = Reranker.load("smollm2-135m")  # doctest: +SKIP
        >>> reranker.score([("capital of France?", "Paris is in France.")])  # doctest: +SKIP
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, *, max_length: int = 1024,
                 batch_size: int = 8, max_batch_tokens: int = 8192,
                 template: str = DEFAULT_TEMPLATE, instruction: str = DEFAULT_INSTRUCTION,
                 device: str | None = None, backend: str = "torch", threads: int | None = None,
                 **options: Any) -> None:
        super().__init__(**options)
        if backend != "torch":
            raise ValueError(f"LLM rerankers run on the torch backend only, not {backend!r}")
        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device(device or default_device())
        self.model = model.to(self.device).eval()
        self._tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size, self.max_batch_tokens = batch_size, max_batch_tokens
        self.template, self.instruction = template, instruction
        self.yes_ids = single_token_ids(tokenizer, _YES)
        self.no_ids = single_token_ids(tokenizer, _NO)
        if not self.yes_ids or not self.no_ids:
            raise ValueError("the tokenizer has no single-token spelling of 'yes' or of 'no'")
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else tokenizer.eos_token_id or 0

    @classmethod
    def from_pretrained(cls, name: str | os.PathLike[str], *, gguf_file: str | None = None,
                        **options: Any) -> CausalLMReranker:
        """Load a causal LM folder, a GGUF checkpoint (folder with one ``.gguf`` file, or a
        packaged name such as ``smollm2-135m``) or a hub id."""
        model, tokenizer, folder = load_causal_lm(name, gguf_file)
        return cls(model, tokenizer, **options).with_saved_calibration(folder)

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    def prompt(self, query: str, passage: str) -> str:
        """The full text fed to the model for one pair, up to where it answers."""
        message = self.template.format(query=query, passage=passage,
                                       instruction=self.instruction)
        if getattr(self._tokenizer, "chat_template", None):
            return self._tokenizer.apply_chat_template(
                [{"role": "user", "content": message}], tokenize=False,
                add_generation_prompt=True)
        return f"{message}\nAnswer:"

    def _encode(self, texts: list[str]) -> list[list[int]]:
        # A chat template already holds the special tokens; a plain prompt gets the tokenizer's.
        specials = not getattr(self._tokenizer, "chat_template", None)
        return self._tokenizer(texts, add_special_tokens=specials,
                               return_attention_mask=False)["input_ids"]

    def passage_budget(self, query: str) -> int:
        return self.max_length - len(self._encode([self.prompt(query, "")])[0])

    def encode_prompts(self, pairs: Sequence[tuple[str, str]]) -> list[list[int]]:
        """Token ids of each pair's prompt, the passage cut to fit :attr:`max_length`."""
        ids = []
        for query, passage in pairs:
            budget = self.passage_budget(query)
            tokens = self._tokenizer(passage, add_special_tokens=False,
                                     return_offsets_mapping=True)["offset_mapping"]
            if len(tokens) > budget:
                passage = passage[:tokens[max(budget, 1) - 1][1]]
            ids.append(self._encode([self.prompt(query, passage)])[0])
        return ids

    def log_odds(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``logsumexp z_yes - logsumexp z_no`` at the last position of a left-padded batch
        (differentiable: training uses it too)."""
        last = left_padded_logits(self.model, input_ids, attention_mask, keep_last=1)
        logits = last[:, -1].float()
        device = logits.device
        yes = torch.tensor(self.yes_ids, device=device)
        no = torch.tensor(self.no_ids, device=device)
        return torch.logsumexp(logits[:, yes], 1) - torch.logsumexp(logits[:, no], 1)

    def score_fitted(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        encoded = self._encode([self.prompt(q, p) for q, p in pairs])
        out = np.zeros(len(pairs), dtype=np.float32)
        batches = length_sorted_batches([len(e) for e in encoded], self.batch_size,
                                        self.max_batch_tokens)
        with torch.inference_mode():
            for batch in batches:
                features = pad_features({"input_ids": [encoded[i] for i in batch]}, self.pad_id,
                                        padding_side="left")
                out[batch] = self.log_odds(features["input_ids"],
                                           features["attention_mask"]).float().cpu().numpy()
        return out


def is_causal_lm(config: dict, folder: Path) -> bool:
    """A transformers causal LM, or a folder holding a GGUF checkpoint."""
    architectures = config.get("architectures") or []
    return any(a.endswith("ForCausalLM") for a in architectures) or any(folder.glob("*.gguf"))
