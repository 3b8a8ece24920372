"""The generator of the RAG chain: a language model answering from numbered passages.

The prompt is a chat (:class:`ragsift.models.generation.prompts.PromptFormat`, set from the RAG
config): few-shot examples as earlier user / assistant turns, then the user message of the question
with its selected passages (``[1] title: text`` lines, each cut to ``max_passage_tokens`` tokens);
the model's chat template renders it, or, for a model without one or with ``use_chat_template:
false``, the turns are written one after the other as ``message\nAnswer: answer`` blocks ending in
``message\nAnswer:`` (:func:`ragsift.models.generation.prompts.plain_chat`). Decoding is greedy, at
most ``max_new_tokens`` tokens, and ends before the first stop sequence (default a newline); the
answer is extracted from the raw text (``short`` by default:
:mod:`ragsift.models.generation.answers`).

:class:`TextGenerator` is the interface (``prompt``, ``answer``, ``expand``, ``complete``,
``encode``, ``fingerprint``); :func:`load_generator` picks a backend from a spec:

- ``transformers:NAME`` -> :class:`Generator` (PyTorch, batched with left padding; the one that
  gives logits, for gain labels and training);
- ``llama-cpp:NAME`` -> :class:`ragsift.models.generation.llama_cpp_generator.LlamaCppGenerator` (a
  GGUF file run natively by llama.cpp);
- ``openai:MODEL`` -> :class:`ragsift.models.generation.openai_generator.OpenAIGenerator` (chat
  completions of an OpenAI-compatible server);
- ``NAME`` alone -> llama.cpp for a GGUF model (such as the packaged ``smollm2-135m``) when
  ``llama-cpp-python`` is installed, else transformers.
"""

from __future__ import annotations

import importlib.util
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch

from ragsift.errors import UsageError
from ragsift.models.batching import length_sorted_batches
from ragsift.models.causal_lm import cut_to_tokens, load_causal_lm
from ragsift.models.fingerprint import weights_fingerprint
from ragsift.models.generation.prompts import Message, PromptFormat, cut_at_stop, plain_chat
from ragsift.models.hub import gguf_file_for, resolve_model

logger = logging.getLogger(__name__)
# Query expansion by generation: HyDE writes a hypothetical passage (Gao et al., 2022), GAR an
# answer and a page title that are appended to the query (Mao et al., 2021).
EXPANSION_PROMPTS = {
    "hyde": "Write a short passage that answers the question.\nQuestion: {question}",
    "gar": "Answer the question in a few words, then give the title of a page about it.\n"
           "Question: {question}",
}
BACKENDS = ("transformers", "llama-cpp", "openai")
# A backend's encoded prompt: token ids (local models) or the chat messages (remote servers).
# Either is JSON-serialisable, so it can key the answer cache of the RAG pipeline.
Prompt = list[int] | list[Message]


class TextGenerator(ABC):
    """Greedy answers and expansions from a language model (see the module docstring).

    Subclasses give :meth:`encode_chat`, :meth:`cut`, :meth:`complete` and
    :meth:`fingerprint`; the RAG prompt, answers and query expansions are built on them here.
    ``prompt_format`` (default :class:`ragsift.models.generation.prompts.PromptFormat`) holds the
    templates, few-shot examples, stop sequences and answer extraction.
    """

    def __init__(self, max_new_tokens: int = 32, batch_size: int = 8,
                 max_passage_tokens: int = 256, prompt_format: PromptFormat | None = None
                 ) -> None:
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.max_passage_tokens = max_passage_tokens
        self.prompt_format = prompt_format or PromptFormat()

    @abstractmethod
    def encode_chat(self, messages: Sequence[Message]) -> Prompt:
        """The prompt for a chat (``{"role", "content"}`` messages ending with the user's),
        ending where the model answers."""

    @abstractmethod
    def encode_text(self, text: str) -> Prompt:
        """The prompt for plain ``text``, continued as it is (no chat template)."""

    @abstractmethod
    def cut(self, text: str) -> str:
        """``text`` cut to its first ``max_passage_tokens`` tokens (unchanged when shorter)."""

    @abstractmethod
    def complete(self, prompts: Sequence[Prompt], max_new_tokens: int | None = None,
                 stop: Sequence[str] = ()) -> list[str]:
        """The raw greedy continuation of each prompt of :meth:`encode`, in input order; at
        most ``max_new_tokens`` (default: the generator's) new tokens, ending before the first
        of the ``stop`` strings (none by default)."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A hash of the model and ``max_new_tokens``: with a prompt and stop sequences, it
        determines a greedy answer (the key of the pipeline's answer cache)."""

    def encode(self, message: str) -> Prompt:
        """The prompt for a single user ``message``, ending where the model answers."""
        return self.encode_chat([{"role": "user", "content": message}])

    def prompt(self, question: str, passages: Sequence[str]) -> Prompt:
        """The prompt for ``question`` with ``passages`` (numbered from 1, each cut by
        :meth:`cut`), after the few-shot turns of ``prompt_format``: through the chat template
        or as plain text (``use_chat_template``)."""
        messages = self.prompt_format.messages(question, [self.cut(p) for p in passages])
        if self.prompt_format.use_chat_template:
            return self.encode_chat(messages)
        return self.encode_text(plain_chat(messages))

    def generate(self, questions: Sequence[str], contexts: Sequence[Sequence[str]]
                 ) -> list[str]:
        """One answer per question, given its passages."""
        return self.answer([self.prompt(q, c) for q, c in zip(questions, contexts)], questions)

    def answer(self, prompts: Sequence[Prompt], questions: Sequence[str] | None = None
               ) -> list[str]:
        """One answer per prompt of :meth:`prompt`: :meth:`complete` with the stop sequences
        of ``prompt_format``, then its answer extraction (which reads the question, when
        given, for yes/no questions)."""
        texts = self.complete(prompts, stop=self.prompt_format.stop)
        questions = questions if questions is not None else [""] * len(texts)
        return [self.prompt_format.extract(t, q) for t, q in zip(texts, questions)]

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
                 batch_size: int = 8, max_passage_tokens: int = 256,
                 prompt_format: PromptFormat | None = None) -> None:
        super().__init__(max_new_tokens, batch_size, max_passage_tokens, prompt_format)
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

    def encode_chat(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of ``messages`` under the tokenizer's chat template (with the generation
        prompt), or of :func:`ragsift.models.generation.prompts.plain_chat` when it has none; a
        single user message gives :func:`ragsift.models.causal_lm.user_prompt_ids`."""
        if getattr(self.tokenizer, "chat_template", None):
            return list(self.tokenizer.apply_chat_template(
                list(messages), tokenize=True, add_generation_prompt=True, return_dict=False))
        return self.encode_text(plain_chat(messages))

    def encode_text(self, text: str) -> list[int]:
        """Token ids of ``text`` with the tokenizer's special tokens (BOS)."""
        return self.tokenizer(text, add_special_tokens=True)["input_ids"]

    def cut(self, text: str) -> str:
        """``text`` cut to ``max_passage_tokens`` tokens of the model's tokenizer."""
        return cut_to_tokens(self.tokenizer, text, self.max_passage_tokens)

    def complete(self, prompts: Sequence[Sequence[int]], max_new_tokens: int | None = None,
                 stop: Sequence[str] = ()) -> list[str]:
        """The raw greedy continuation of each prompt (token ids), decoded without special
        tokens, in input order; batches of ``batch_size`` prompts of similar length; at most
        ``max_new_tokens`` (default: the generator's) new tokens, cut before the first of the
        ``stop`` strings (a row stops generating once it holds one).

        Any prompt works (e.g. :meth:`encode` of a message); :meth:`generate` is this on RAG
        prompts, followed by the answer extraction.
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
                    max_new_tokens=max_new_tokens or self.max_new_tokens, pad_token_id=pad,
                    stopping_criteria=[_StopStrings(self.tokenizer, stop, width)] if stop
                    else None)
            for row, i in enumerate(batch):
                texts[i] = cut_at_stop(self.tokenizer.decode(output[row, width:],
                                                             skip_special_tokens=True), stop)
        return texts


class _StopStrings:
    """A transformers stopping criterion: a row is done once its decoded new tokens (from
    position ``start``) contain one of ``stop`` (works with any tokenizer, unlike
    ``stop_strings``, which needs the strings' tokens in the vocabulary)."""

    def __init__(self, tokenizer: Any, stop: Sequence[str], start: int) -> None:
        self.tokenizer, self.stop, self.start = tokenizer, tuple(stop), start

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any
                 ) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.start:], skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stop) for t in texts],
                            device=input_ids.device)


def load_generator(spec: str, base_url: str = "", api_key_env: str = "OPENAI_API_KEY",
                   **options: Any) -> TextGenerator:
    """The generator of ``spec`` (see the module docstring for the backends).

    Args:
        spec: ``[transformers:|llama-cpp:]NAME`` (a causal LM folder, GGUF folder, packaged
            name or hub id) or ``openai:MODEL``.
        base_url: the OpenAI-compatible server (``openai:`` only; empty: api.openai.com).
        api_key_env: the environment variable holding its API key (``openai:`` only).
        options: ``max_new_tokens``, ``batch_size``, ``max_passage_tokens``,
            ``prompt_format``; backend-specific ones (llama.cpp: ``n_threads``, ``weights``;
            openai: ``timeout``, ``max_retries``, ``extra_body``).

    Raises:
        MissingExtraError: the backend's package is not installed.
        UsageError: ``weights`` other than ``native`` for a backend other than llama.cpp.
        RagsiftError: the model or server cannot be used (the message names it).
    """
    weights = options.pop("weights", "native")
    backend, _, name = spec.partition(":")
    if backend not in BACKENDS:
        backend, name = "auto", spec
    if backend == "openai":
        from ragsift.models.generation.openai_generator import OpenAIGenerator

        _check_native(weights, spec, backend)
        return OpenAIGenerator(name, base_url or None, api_key_env, **options)
    if backend == "auto":
        backend = "llama-cpp" if gguf_file_for(name, resolve_model(name)) else "transformers"
        if backend == "llama-cpp" and not _has_llama_cpp():
            logger.warning("%s is a GGUF model but llama-cpp-python is not installed "
                           "(pip install 'ragsift[llm]'); generating with transformers", name)
            backend = "transformers"
    if backend == "llama-cpp":
        from ragsift.models.generation.llama_cpp_generator import LlamaCppGenerator

        return LlamaCppGenerator.from_pretrained(name, weights=weights, **options)
    _check_native(weights, spec, backend)
    return Generator.from_pretrained(name, **options)


def _check_native(weights: str, spec: str, backend: str) -> None:
    """Raise :class:`UsageError` unless ``weights`` is ``native``: only llama.cpp converts."""
    if weights != "native":
        raise UsageError(f"llm_weights {weights!r}: only the llama-cpp backend converts "
                         f"weights, and {spec} runs on {backend}; use native")


def _has_llama_cpp() -> bool:
    """Whether ``llama_cpp`` can be imported (found without importing it)."""
    return importlib.util.find_spec("llama_cpp") is not None
