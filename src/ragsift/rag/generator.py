"""The generator of the RAG chain: a language model answering from numbered passages.

Prompt (the user message; the model's chat template wraps it when it has one)::

    Answer the question with a short answer, using the passages; cite them like [1].
    [1] title: text
    [2] ...
    Question: ...

With no passage the first line asks for an answer from the model's own knowledge. Decoding is
greedy, ``max_new_tokens`` at most; the answer is the text up to the first newline, with
citation marks ``[n]`` removed.

:class:`TextGenerator` is the interface (``prompt``, ``answer``, ``expand``, ``complete``,
``fingerprint``); :func:`load_generator` picks a backend from a spec:

- ``transformers:NAME`` -> :class:`Generator` (PyTorch, batched with left padding; the one that
  gives logits, for gain labels and training);
- ``llama-cpp:NAME`` -> :class:`ragsift.rag.llama_cpp_generator.LlamaCppGenerator` (a GGUF file
  run natively by llama.cpp);
- ``openai:MODEL`` -> :class:`ragsift.rag.openai_generator.OpenAIGenerator` (chat completions of
  an OpenAI-compatible server);
- ``NAME`` alone -> llama.cpp for a GGUF model (such as the packaged ``smollm2-135m``) when
  ``llama-cpp-python`` is installed, else transformers.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch

from ragsift.models.batching import length_sorted_batches
from ragsift.models.causal_lm import cut_to_tokens, load_causal_lm, user_prompt_ids
from ragsift.models.fingerprint import weights_fingerprint
from ragsift.models.hub import gguf_file_for, resolve_model

logger = logging.getLogger(__name__)
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
BACKENDS = ("transformers", "llama-cpp", "openai")
_CITATION = re.compile(r"\s*\[\d+\]")
# A backend's encoded prompt: token ids (local models) or the user message (remote servers).
# Either is JSON-serialisable, so it can key the answer cache of the RAG pipeline.
Prompt = list[int] | str


class TextGenerator(ABC):
    """Greedy answers and expansions from a language model (see the module docstring).

    Subclasses give :meth:`encode`, :meth:`cut`, :meth:`complete` and :meth:`fingerprint`;
    the RAG prompt, answers and query expansions are built on them here.
    """

    def __init__(self, max_new_tokens: int = 32, batch_size: int = 8,
                 max_passage_tokens: int = 256) -> None:
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.max_passage_tokens = max_passage_tokens

    @abstractmethod
    def encode(self, message: str) -> Prompt:
        """The prompt for a user ``message``, ending where the model answers."""

    @abstractmethod
    def cut(self, text: str) -> str:
        """``text`` cut to its first ``max_passage_tokens`` tokens (unchanged when shorter)."""

    @abstractmethod
    def complete(self, prompts: Sequence[Prompt], max_new_tokens: int | None = None
                 ) -> list[str]:
        """The raw greedy continuation of each prompt of :meth:`encode`, in input order; at
        most ``max_new_tokens`` (default: the generator's) new tokens."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A hash of the model and ``max_new_tokens``: with a prompt, it determines a greedy
        answer (the key of the pipeline's answer cache)."""

    def prompt(self, question: str, passages: Sequence[str]) -> Prompt:
        """The prompt for ``question`` with ``passages`` (numbered from 1, each cut by
        :meth:`cut`)."""
        lines = [WITH_PASSAGES if passages else WITHOUT_PASSAGES]
        lines += [f"[{i}] {self.cut(p)}" for i, p in enumerate(passages, 1)]
        lines.append(f"Question: {question}")
        return self.encode("\n".join(lines))

    def generate(self, questions: Sequence[str], contexts: Sequence[Sequence[str]]
                 ) -> list[str]:
        """One answer per question, given its passages."""
        return self.answer([self.prompt(q, c) for q, c in zip(questions, contexts)])

    def answer(self, prompts: Sequence[Prompt]) -> list[str]:
        """One answer per prompt of :meth:`prompt`: :meth:`complete`, then
        :func:`clean_answer`."""
        return [clean_answer(text) for text in self.complete(prompts)]

    def expand(self, questions: Sequence[str], kind: str, max_new_tokens: int = 64
               ) -> list[str]:
        """Query expansions (``kind`` ``hyde`` or ``gar``, see :data:`EXPANSION_PROMPTS`): the
        raw greedy continuation of each question's prompt, stripped."""
        if kind not in EXPANSION_PROMPTS:
            raise ValueError(f"unknown query expansion {kind!r}; use one of "
                             f"{', '.join(EXPANSION_PROMPTS)}")
        prompts = [self.encode(EXPANSION_PROMPTS[kind].format(question=q)) for q in questions]
        return [text.strip() for text in self.complete(prompts, max_new_tokens)]


class Generator(TextGenerator):
    """The transformers backend: greedy answers of a PyTorch causal LM, batched with left
    padding (prompts are token ids of the model's tokenizer and chat template)."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, max_new_tokens: int = 32,
                 batch_size: int = 8, max_passage_tokens: int = 256) -> None:
        super().__init__(max_new_tokens, batch_size, max_passage_tokens)
        self.model = model.eval()
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._fingerprint: str | None = None

    @classmethod
    def from_pretrained(cls, name: str, **options: Any) -> Generator:
        """Load a causal LM folder, GGUF folder, packaged name (``smollm2-135m``) or hub id."""
        model, tokenizer, _ = load_causal_lm(name)
        return cls(model, tokenizer, **options)

    def fingerprint(self) -> str:
        """A hash of the weights and ``max_new_tokens``. Computed once (it reads every
        parameter)."""
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint([self.model], self.max_new_tokens)
        return self._fingerprint

    def encode(self, message: str) -> list[int]:
        """Token ids of ``message`` (:func:`ragsift.models.causal_lm.user_prompt_ids`)."""
        return user_prompt_ids(self.tokenizer, message)

    def cut(self, text: str) -> str:
        """``text`` cut to ``max_passage_tokens`` tokens of the model's tokenizer."""
        return cut_to_tokens(self.tokenizer, text, self.max_passage_tokens)

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


def load_generator(spec: str, base_url: str = "", api_key_env: str = "OPENAI_API_KEY",
                   **options: Any) -> TextGenerator:
    """The generator of ``spec`` (see the module docstring for the backends).

    Args:
        spec: ``[transformers:|llama-cpp:]NAME`` (a causal LM folder, GGUF folder, packaged
            name or hub id) or ``openai:MODEL``.
        base_url: the OpenAI-compatible server (``openai:`` only; empty: api.openai.com).
        api_key_env: the environment variable holding its API key (``openai:`` only).
        options: ``max_new_tokens``, ``batch_size``, ``max_passage_tokens``.

    Raises:
        MissingExtraError: the backend's package is not installed.
        RagsiftError: the model or server cannot be used (the message names it).
    """
    backend, _, name = spec.partition(":")
    if backend not in BACKENDS:
        backend, name = "auto", spec
    if backend == "openai":
        from ragsift.rag.openai_generator import OpenAIGenerator

        return OpenAIGenerator(name, base_url or None, api_key_env, **options)
    if backend == "auto":
        backend = "llama-cpp" if gguf_file_for(name, resolve_model(name)) else "transformers"
        if backend == "llama-cpp" and not _has_llama_cpp():
            logger.warning("%s is a GGUF model but llama-cpp-python is not installed "
                           "(pip install 'ragsift[llm]'); generating with transformers", name)
            backend = "transformers"
    if backend == "llama-cpp":
        from ragsift.rag.llama_cpp_generator import LlamaCppGenerator

        return LlamaCppGenerator.from_pretrained(name, **options)
    return Generator.from_pretrained(name, **options)


def _has_llama_cpp() -> bool:
    """Whether ``llama_cpp`` can be imported (found without importing it)."""
    return importlib.util.find_spec("llama_cpp") is not None


def clean_answer(text: str) -> str:
    """The first line of a generation, without citation marks or an ``Answer:`` prefix.

    Example:
        >>> clean_answer("Answer: Paris [1].\\nMore text")
        'Paris.'
    """
    first = text.strip().split("\n", 1)[0]
    first = re.sub(r"^(answer|a)\s*:\s*", "", first, flags=re.IGNORECASE)
    return _CITATION.sub("", first).strip()
