"""The generator of the RAG chain: a causal LM answering from numbered passages.

Prompt (the user message; the model's chat template wraps it when it has one)::

    Answer the question with a short answer, using the passages; cite them like [1].
    [1] title: text
    [2] ...
    Question: ...

With no passage the first line asks for an answer from the model's own knowledge. Decoding is
greedy, ``max_new_tokens`` at most, batched with left padding; the answer is the text up to the
first newline, with citation marks ``[n]`` removed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch

from ragsift.models.batching import length_sorted_batches
from ragsift.models.causal_lm import cut_to_tokens, load_causal_lm, user_prompt_ids
from ragsift.models.fingerprint import weights_fingerprint

WITH_PASSAGES = ("Answer the question with a short answer, using the passages; cite them like "
                 "[1].")
WITHOUT_PASSAGES = "Answer the question with a short answer."
# Query expansion by generation: HyDE writes a hypothetical passage (Gao et al., 2022), GAR an
# answer and a page title that are appended to the query (Mao et al., 2021).
EXPANSION_PROMPTS = {
    "hyde": "Write a short passage that answers the question.\nQuestion: {question}",
    "gar": "Answer the question in a few words, then give the title of a page about it.\n"
           "Question: {question}",
}
_CITATION = re.compile(r"\s*\[\d+\]")


class Generator:
    """Greedy, batched answers from a causal LM (see the module docstring)."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, max_new_tokens: int = 32,
                 batch_size: int = 8, max_passage_tokens: int = 256) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.max_passage_tokens = max_passage_tokens
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._fingerprint: str | None = None

    @classmethod
    def from_pretrained(cls, name: str, **options: Any) -> Generator:
        """Load a causal LM folder, GGUF folder, packaged name (``smollm2-135m``) or hub id."""
        model, tokenizer, _ = load_causal_lm(name)
        return cls(model, tokenizer, **options)

    def fingerprint(self) -> str:
        """A hash of the weights and ``max_new_tokens``: with the prompt's token ids, it
        determines a greedy answer. Computed once (it reads every parameter)."""
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint([self.model], self.max_new_tokens)
        return self._fingerprint

    def prompt(self, question: str, passages: Sequence[str]) -> list[int]:
        """Token ids of the prompt for ``question`` with ``passages`` (numbered from 1)."""
        lines = [WITH_PASSAGES if passages else WITHOUT_PASSAGES]
        lines += [f"[{i}] {cut_to_tokens(self.tokenizer, p, self.max_passage_tokens)}"
                  for i, p in enumerate(passages, 1)]
        lines.append(f"Question: {question}")
        return user_prompt_ids(self.tokenizer, "\n".join(lines))

    def generate(self, questions: Sequence[str], contexts: Sequence[Sequence[str]]
                 ) -> list[str]:
        """One answer per question, given its passages."""
        return self.answer([self.prompt(q, c) for q, c in zip(questions, contexts)])

    def answer(self, prompts: Sequence[Sequence[int]]) -> list[str]:
        """One answer per prompt of :meth:`prompt` (token ids): :meth:`complete`, then
        :func:`clean_answer`."""
        return [clean_answer(text) for text in self.complete(prompts)]

    def expand(self, questions: Sequence[str], kind: str, max_new_tokens: int = 64
               ) -> list[str]:
        """Query expansions (``kind`` ``hyde`` or ``gar``, see :data:`EXPANSION_PROMPTS`): the
        raw greedy continuation of each question's prompt, stripped."""
        if kind not in EXPANSION_PROMPTS:
            raise ValueError(f"unknown query expansion {kind!r}; use one of "
                             f"{', '.join(EXPANSION_PROMPTS)}")
        prompts = [user_prompt_ids(self.tokenizer, EXPANSION_PROMPTS[kind].format(question=q))
                   for q in questions]
        return [text.strip() for text in self.complete(prompts, max_new_tokens)]

    def complete(self, prompts: Sequence[Sequence[int]], max_new_tokens: int | None = None
                 ) -> list[str]:
        """The raw greedy continuation of each prompt (token ids), decoded without special
        tokens, in input order; batches of ``batch_size`` prompts of similar length; at most
        ``max_new_tokens`` (default: the generator's) new tokens.

        Any prompt works (e.g. :func:`ragsift.models.causal_lm.user_prompt_ids` of a message);
        :meth:`generate` is this on RAG prompts, followed by :func:`clean_answer`.
        """
        texts = [""] * len(prompts)
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id
        for batch in length_sorted_batches([len(p) for p in prompts], self.batch_size):
            width = max(len(prompts[i]) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, width - len(prompts[i]):] = torch.tensor(prompts[i])
                mask[row, width - len(prompts[i]):] = 1
            with torch.inference_mode():
                output = self.model.generate(
                    input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                    max_new_tokens=max_new_tokens or self.max_new_tokens, pad_token_id=pad)
            for row, i in enumerate(batch):
                texts[i] = self.tokenizer.decode(output[row, width:], skip_special_tokens=True)
        return texts


def clean_answer(text: str) -> str:
    """The first line of a generation, without citation marks or an ``Answer:`` prefix.

    Example:
        >>> clean_answer("Answer: Paris [1].\\nMore text")
        'Paris.'
    """
    first = text.strip().split("\n", 1)[0]
    first = re.sub(r"^(answer|a)\s*:\s*", "", first, flags=re.IGNORECASE)
    return _CITATION.sub("", first).strip()
