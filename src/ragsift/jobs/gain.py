"""GainRAG gain labels: how much a passage helps a generator produce the gold answer.

For a question ``q``, gold answer ``y = y_1..y_T`` and passage ``p``, the generator's next-token
logits on the answer tokens are computed twice, with the passage in the prompt (``z+_t``) and
without it (``z-_t``), and combined contrastively::

    z_t = (1 + a) z+_t - a z-_t                    (a = alpha, 0.5 by default)
    PPL = exp( -(1/T) sum_t log softmax(z_t)[y_t] )
    gain = -log(PPL + 1)

so a passage that makes the gold answer likelier (lower perplexity) gets a higher label; the
labels are comparable across the passages of one question. With ``a = 0`` the label needs only
the log-probabilities of the gold tokens given the prompt with the passage. Prompts are the user
messages :data:`WITH_PASSAGE` / :data:`WITHOUT_PASSAGE`, under the model's chat template when it
has one (the answer is the assistant's reply), else followed by ``\\nAnswer:`` (the answer then
starts with a space); runs of spaces in the question and passage are collapsed to one
(:func:`collapse_spaces`).

Backends, behind one interface (:class:`BaseGainScorer`), chosen by :func:`load_gain_scorer`
with a spec like the generator's (:func:`ragsift.models.generation.generator.load_generator`):

- ``transformers:NAME`` -> :class:`GainScorer` (PyTorch; a GGUF model is dequantised; batched
  with left padding and explicit position ids, so a padded row gives the logits of the row
  alone);
- ``llama-cpp:NAME`` -> :class:`ragsift.jobs.gain_llama_cpp.LlamaCppGainScorer` (the GGUF run
  natively, quantised);
- ``openai:MODEL`` -> :class:`ragsift.jobs.gain_openai.OpenAIGainScorer` (the prompt log-probs of
  an OpenAI-compatible completions endpoint, ``echo`` + ``logprobs``; ``alpha`` 0 only, since
  the contrastive mix needs the whole next-token distribution, which that API does not return);
- ``NAME`` alone -> llama.cpp for a GGUF model when ``llama-cpp-python`` is installed, else
  transformers.

Example:
    >>> scorer = load_gain_scorer("smollm2-135m")                        # doctest: +SKIP
    >>> helpful, useless = scorer.gains("Where is the tower?", "Paris",
    ...                                 ["It is in Paris.", "Bananas."])  # doctest: +SKIP
    >>> bool(helpful > useless)                                           # doctest: +SKIP
    True
"""

from __future__ import annotations

import importlib.util
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ragsift.errors import RagsiftError
from ragsift.models.batching import length_sorted_batches, pad_features
from ragsift.models.causal_lm import (
    cut_to_tokens,
    left_padded_logits,
    load_causal_lm,
    user_prompt_ids,
)
from ragsift.models.hub import gguf_file_for, resolve_model

logger = logging.getLogger(__name__)

WITH_PASSAGE = "Context: {passage}\n\nAnswer the question in a few words.\nQuestion: {question}"
WITHOUT_PASSAGE = "Answer the question in a few words.\nQuestion: {question}"
BACKENDS = ("transformers", "llama-cpp", "openai")
_SPACE_RUN = re.compile(r"[^\S\n]{2,}")


def collapse_spaces(text: str) -> str:
    r"""``text`` with every run of two or more whitespace characters other than newlines
    (spaces, tabs, Unicode spaces such as U+2009) replaced by one space.

    Example:
        >>> collapse_spaces("the  8th Brigade (    1600 -\t\u20091670)\n\nNext")
        'the 8th Brigade ( 1600 - 1670)\n\nNext'
    """
    return _SPACE_RUN.sub(" ", text)


def gain_from_log_probs(log_probs: np.ndarray) -> float:
    """``-log(PPL + 1)`` with ``PPL = exp(-mean(log_probs))``, computed as
    ``-logaddexp(-mean(log_probs), 0)`` so that it cannot overflow.

    Example:
        >>> round(gain_from_log_probs(np.log([0.5, 0.5])), 6)  # PPL 2 -> -log 3
        -1.098612
    """
    return -float(np.logaddexp(-np.mean(log_probs), 0.0))


def contrastive_log_probs(with_passage: torch.Tensor, without: torch.Tensor,
                          target: Sequence[int], alpha: float) -> np.ndarray:
    """``log softmax((1 + a) z+_t - a z-_t)[y_t]`` for each answer position ``t`` (float64).

    Args:
        with_passage, without: ``(T, vocab)`` logits predicting the answer tokens, with and
            without the passage in the prompt.
        target: the ``T`` answer token ids ``y_t``.
        alpha: the contrastive weight ``a``.
    """
    mixed = (1 + alpha) * with_passage.double() - alpha * without.double()
    rows = torch.arange(len(target))
    return torch.log_softmax(mixed, dim=-1)[rows, torch.tensor(list(target))].numpy()


class BaseGainScorer(ABC):
    """Gain labels of a backend (see the module docstring).

    Subclasses give :meth:`cut` and :meth:`answer_log_probs`; the prompts and the label are
    written once here.

    Args:
        alpha: the contrastive weight ``a``.
        max_passage_tokens: passages are cut to this many tokens (words for a server whose
            tokenizer is not known here).
    """

    def __init__(self, alpha: float = 0.5, max_passage_tokens: int = 384) -> None:
        if alpha < 0:
            raise RagsiftError(f"gain alpha must be >= 0, got {alpha}")
        self.alpha = alpha
        self.max_passage_tokens = max_passage_tokens

    @abstractmethod
    def cut(self, text: str) -> str:
        """``text`` cut to ``max_passage_tokens`` tokens (unchanged when shorter)."""

    @abstractmethod
    def answer_log_probs(self, question: str, answer: str, passages: Sequence[str]
                         ) -> list[np.ndarray]:
        """For each passage, the ``T`` log-probabilities ``log softmax(z_t)[y_t]`` of the gold
        answer's tokens under the contrastive mix (see the module docstring), in order."""

    def message(self, question: str, passage: str | None) -> str:
        """The user message: :data:`WITH_PASSAGE` (the passage cut by :meth:`cut`), or
        :data:`WITHOUT_PASSAGE` when ``passage`` is None. Runs of whitespace in the question
        and passage become one space (:func:`collapse_spaces`): llama.cpp's tokenizer splits
        such runs otherwise than the Hugging Face tokenizer of the same model, so without this
        the backends would score different token sequences.
        """
        question = collapse_spaces(question)
        if passage is None:
            return WITHOUT_PASSAGE.format(question=question)
        return WITH_PASSAGE.format(passage=self.cut(collapse_spaces(passage)),
                                   question=question)

    def gains(self, question: str, answer: str, passages: Sequence[str]) -> np.ndarray:
        """Gain labels of ``passages`` for one question (float64, one per passage)."""
        return np.asarray([gain_from_log_probs(lp)
                           for lp in self.answer_log_probs(question, answer, passages)])


class LogitGainScorer(BaseGainScorer):
    """A backend that gives the whole next-token distribution (a local model): subclasses give
    :meth:`encode`, :meth:`answer_ids` and :meth:`answer_logits`; the contrastive mix is
    computed here for any ``alpha``."""

    @abstractmethod
    def encode(self, message: str) -> list[int]:
        """Prompt ids of a user ``message``, up to where the answer starts."""

    @abstractmethod
    def answer_ids(self, answer: str) -> list[int]:
        """Token ids of the gold answer as the model would write it after the prompt."""

    @abstractmethod
    def answer_logits(self, sequences: Sequence[tuple[list[int], list[int]]]
                      ) -> list[torch.Tensor]:
        """For each (prompt ids, answer ids): the ``(T, vocab)`` logits predicting the answer
        tokens."""

    def prompt_ids(self, question: str, passage: str | None) -> list[int]:
        """Token ids of the prompt of :meth:`message`, up to where the answer starts."""
        return self.encode(self.message(question, passage))

    def answer_log_probs(self, question: str, answer: str, passages: Sequence[str]
                         ) -> list[np.ndarray]:
        """See :meth:`BaseGainScorer.answer_log_probs`.

        Raises:
            RagsiftError: the answer has no token.
        """
        target = self.answer_ids(answer)
        if not target:
            raise RagsiftError(f"empty gold answer for question {question!r}")
        sequences = [(self.prompt_ids(question, None), target)]
        sequences += [(self.prompt_ids(question, p), target) for p in passages]
        without, *with_passages = self.answer_logits(sequences)
        return [contrastive_log_probs(logits, without, target, self.alpha)
                for logits in with_passages]


class GainScorer(LogitGainScorer):
    """The transformers backend: gain labels from a PyTorch causal LM.

    Args:
        model, tokenizer: a transformers causal LM and its tokenizer.
        alpha: the contrastive weight ``a``.
        max_passage_tokens: passages are cut to this many tokens.
        batch_size, max_batch_tokens: forward-pass batching.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, alpha: float = 0.5,
                 max_passage_tokens: int = 384, batch_size: int = 8,
                 max_batch_tokens: int = 8192) -> None:
        super().__init__(alpha, max_passage_tokens)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size, self.max_batch_tokens = batch_size, max_batch_tokens
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (tokenizer.eos_token_id or 0)

    @classmethod
    def from_pretrained(cls, name: str, **options: Any) -> GainScorer:
        """Load a causal LM folder, GGUF checkpoint, packaged name (``smollm2-135m``) or hub id."""
        model, tokenizer, _ = load_causal_lm(name)
        return cls(model, tokenizer, **options)

    def cut(self, text: str) -> str:
        """``text`` cut to ``max_passage_tokens`` tokens of the model's tokenizer."""
        return cut_to_tokens(self.tokenizer, text, self.max_passage_tokens)

    def encode(self, message: str) -> list[int]:
        """:func:`ragsift.models.causal_lm.user_prompt_ids` of ``message``."""
        return user_prompt_ids(self.tokenizer, message)

    def answer_ids(self, answer: str) -> list[int]:
        """Token ids of the gold answer as the model would write it after the prompt."""
        prefix = "" if getattr(self.tokenizer, "chat_template", None) else " "
        return self.tokenizer(prefix + answer, add_special_tokens=False)["input_ids"]

    def answer_logits(self, sequences: Sequence[tuple[list[int], list[int]]]
                      ) -> list[torch.Tensor]:
        """For each (prompt ids, answer ids): the ``(T, vocab)`` logits predicting the answer
        tokens (batches of similar length, left-padded)."""
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


def resolve_backend(spec: str) -> tuple[str, str]:
    """``(backend, name)`` of a scorer spec: the backend named by its prefix, else llama.cpp
    for a GGUF model when ``llama-cpp-python`` is installed, else transformers.

    Example:
        >>> resolve_backend("openai:my-model")
        ('openai', 'my-model')
    """
    backend, _, name = spec.partition(":")
    if backend in BACKENDS:
        return backend, name
    if not gguf_file_for(spec, resolve_model(spec)):
        return "transformers", spec
    if importlib.util.find_spec("llama_cpp") is None:
        logger.warning("%s is a GGUF model but llama-cpp-python is not installed "
                       "(pip install 'ragsift[llm]'); scoring with transformers", spec)
        return "transformers", spec
    return "llama-cpp", spec


def load_gain_scorer(spec: str, base_url: str = "", api_key_env: str = "OPENAI_API_KEY",
                     **options: Any) -> BaseGainScorer:
    """The gain scorer of ``spec`` (see the module docstring for the backends).

    Args:
        spec: ``[transformers:|llama-cpp:]NAME`` (a causal LM folder, GGUF folder, packaged
            name or hub id) or ``openai:MODEL`` (:func:`resolve_backend`).
        base_url, api_key_env: the OpenAI-compatible server and the environment variable of
            its key (``openai:`` only).
        options: ``alpha``, ``max_passage_tokens`` and the backend's own: ``batch_size``
            (transformers, openai), ``precision`` and ``n_threads`` (llama-cpp), ``tokenizer``
            (openai).

    Raises:
        MissingExtraError: the backend's package is not installed.
        RagsiftError: the model or server cannot be used (the message names it).
    """
    backend, name = resolve_backend(spec)
    if backend == "openai":
        from ragsift.jobs.gain_openai import OpenAIGainScorer

        return OpenAIGainScorer(name, base_url or None, api_key_env, **options)
    if backend == "llama-cpp":
        from ragsift.jobs.gain_llama_cpp import LlamaCppGainScorer

        return LlamaCppGainScorer.from_pretrained(name, **options)
    return GainScorer.from_pretrained(name, **options)
