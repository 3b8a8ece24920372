"""GainRAG gain labels: how much a passage helps a generator produce the gold answer.

For a question ``q``, gold answer ``y = y_1..y_T`` and passage ``p``, the generator's next-token
logits on the answer tokens are computed twice, with the passage in the prompt (``z+_t``) and
without it (``z-_t``), and combined contrastively::

    z_t = (1 + a) z+_t - a z-_t                    (a = alpha, 0.5 by default)
    PPL = exp( -(1/T) sum_t log softmax(z_t)[y_t] )
    gain = -log(PPL + 1)

so a passage that makes the gold answer likelier (lower perplexity) gets a higher label; the
labels are comparable across the passages of one question. Prompts use the generator's chat
template when it has one (the answer is the assistant's reply), else ``Context/Question/Answer``
lines. Batches are left-padded with explicit position ids, so a padded row gives the same
logits as the row alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ragsift.models.batching import length_sorted_batches, pad_features
from ragsift.models.causal_lm import (
    cut_to_tokens,
    left_padded_logits,
    load_causal_lm,
    user_prompt_ids,
)

WITH_PASSAGE = "Context: {passage}\n\nAnswer the question in a few words.\nQuestion: {question}"
WITHOUT_PASSAGE = "Answer the question in a few words.\nQuestion: {question}"


class GainScorer:
    """Computes gain labels with a causal LM (see the module docstring).

    Args:
        model, tokenizer: a transformers causal LM and its tokenizer.
        alpha: the contrastive weight ``a``.
        max_passage_tokens: passages are cut to this many tokens.
        batch_size, max_batch_tokens: forward-pass batching.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, alpha: float = 0.5,
                 max_passage_tokens: int = 384, batch_size: int = 8,
                 max_batch_tokens: int = 8192) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.alpha = alpha
        self.max_passage_tokens = max_passage_tokens
        self.batch_size, self.max_batch_tokens = batch_size, max_batch_tokens
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (tokenizer.eos_token_id or 0)

    @classmethod
    def from_pretrained(cls, name: str, **options: Any) -> GainScorer:
        """Load a causal LM folder, GGUF checkpoint, packaged name (``smollm2-135m``) or hub id."""
        model, tokenizer, _ = load_causal_lm(name)
        return cls(model, tokenizer, **options)

    def prompt_ids(self, question: str, passage: str | None) -> list[int]:
        """Token ids of the prompt up to where the answer starts."""
        if passage is None:
            return user_prompt_ids(self.tokenizer, WITHOUT_PASSAGE.format(question=question))
        passage = cut_to_tokens(self.tokenizer, passage, self.max_passage_tokens)
        return user_prompt_ids(self.tokenizer,
                               WITH_PASSAGE.format(passage=passage, question=question))

    def answer_ids(self, answer: str) -> list[int]:
        """Token ids of the gold answer as the model would write it after the prompt."""
        prefix = "" if getattr(self.tokenizer, "chat_template", None) else " "
        return self.tokenizer(prefix + answer, add_special_tokens=False)["input_ids"]

    def answer_logits(self, sequences: Sequence[tuple[list[int], list[int]]]) -> list[torch.Tensor]:
        """For each (prompt ids, answer ids): the ``(T, vocab)`` logits predicting the answer
        tokens."""
        full = [prompt + answer for prompt, answer in sequences]
        out: list[torch.Tensor] = [torch.empty(0)] * len(full)
        batches = length_sorted_batches([len(s) for s in full], self.batch_size,
                                        self.max_batch_tokens)
        with torch.inference_mode():
            for batch in batches:
                features = pad_features({"input_ids": [full[i] for i in batch]}, self.pad_id,
                                        padding_side="left")
                keep = max(len(sequences[i][1]) for i in batch) + 1
                logits = left_padded_logits(self.model, features["input_ids"],
                                            features["attention_mask"], keep_last=keep)
                for row, i in enumerate(batch):
                    length = len(sequences[i][1])
                    # the answer's t-th token is predicted at position -(length + 1) + t
                    out[i] = logits[row, -length - 1:-1].float().cpu()
        return out

    def gains(self, question: str, answer: str, passages: Sequence[str]) -> np.ndarray:
        """Gain labels of ``passages`` for one question (float64, one per passage)."""
        answer_ids = self.answer_ids(answer)
        if not answer_ids:
            raise ValueError(f"empty gold answer for question {question!r}")
        sequences = [(self.prompt_ids(question, None), answer_ids)]
        sequences += [(self.prompt_ids(question, p), answer_ids) for p in passages]
        logits = self.answer_logits(sequences)
        without = logits[0]
        target = torch.tensor(answer_ids)
        labels = []
        for with_passage in logits[1:]:
            mixed = (1 + self.alpha) * with_passage - self.alpha * without
            nll = -torch.log_softmax(mixed, dim=-1)[torch.arange(len(target)), target].mean()
            labels.append(-math.log(math.exp(float(nll)) + 1))
        return np.asarray(labels)
