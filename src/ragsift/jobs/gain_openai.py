"""The OpenAI-compatible backend of the gain labels (``openai:MODEL``): prompt log-probs.

For each passage, one request to the completions endpoint scores the prompt followed by the
gold answer: ``echo=True`` (return the prompt's tokens), ``logprobs=0`` (with the log-prob of
each token given the ones before it), ``max_tokens=1`` (the least a server generates; that token
is dropped). The answer's tokens are the last tokens of the echo whose texts join into the
answer; their log-probs are ``log p(y_t | prompt, y_<t)``, so the label is the gain of
:mod:`ragsift.jobs.gain` with ``alpha`` 0. A larger ``alpha`` is refused: the contrastive mix
``(1 + a) z+ - a z-`` is renormalised over the whole vocabulary, and the API returns only the
log-probs of the prompt's own tokens (and a few top alternatives).

The completions endpoint takes text, so the prompt is rendered here: with ``tokenizer`` (a
local model name: its chat template, and passages cut to its tokens, as the transformers and
llama.cpp backends do) or, without one, as ``message + "\\nAnswer:"`` with passages cut to
``max_passage_tokens`` words.

What servers return (checked): ``python -m llama_cpp.server`` (llama-cpp-python 0.3) gives
prompt log-probs when its model is loaded with ``logits_all`` (its default) and answers HTTP 500
otherwise; it computes them in Python, sorting the vocabulary once per prompt token (tens of
seconds for a 200-token prompt on 2 busy cores). Its log-prob of token ``i`` is read from the
logits at position ``i - 1`` only when the prompt starts with the BOS token (SmolLM2's
``<|im_start|>`` is its BOS, so chat prompts are aligned); a prompt without it comes back
shifted by one, which no client can repair. vLLM gives them with ``echo`` too; api.openai.com's
chat models do not offer the completions endpoint.

Before the first request the model is looked up in the server's ``/models`` list
(:meth:`ragsift.models.generation.openai_generator.OpenAIGenerator.check_model`), so a wrong name
fails at once; every failure is one :class:`ragsift.errors.RagsiftError` naming the URL and model.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ragsift.errors import RagsiftError
from ragsift.jobs.gain import BaseGainScorer
from ragsift.models.causal_lm import cut_to_tokens
from ragsift.models.generation.openai_generator import OpenAIGenerator
from ragsift.models.hub import gguf_file_for, resolve_model


class OpenAIGainScorer(BaseGainScorer):
    """Gain labels (``alpha`` 0) from the prompt log-probs of an OpenAI-compatible server (see
    the module docstring).

    Args:
        model: the server's model name.
        base_url: the API root (``http://127.0.0.1:8000/v1``); None: api.openai.com.
        api_key_env: the environment variable holding the API key (a local server needs none).
        alpha: must be 0.
        max_passage_tokens: passages are cut to this many tokens of ``tokenizer`` (words
            without one).
        batch_size: requests in flight at once.
        tokenizer: a local model name (folder, GGUF folder, packaged name, hub id) whose
            tokenizer and chat template render the prompts; None: plain prompts.
        timeout, max_retries: per request.

    Raises:
        RagsiftError: ``alpha`` is not 0, the server cannot be reached, or it does not serve
            ``model``.
    """

    def __init__(self, model: str, base_url: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", alpha: float = 0.0,
                 max_passage_tokens: int = 384, batch_size: int = 8,
                 tokenizer: str | None = None, timeout: float = 600.0,
                 max_retries: int = 2) -> None:
        super().__init__(alpha, max_passage_tokens)
        if alpha != 0:
            raise RagsiftError(
                f"openai:{model} gain labels need alpha 0 (--alpha 0), not {alpha}: the "
                f"contrastive mix needs the whole next-token distribution, and an "
                f"OpenAI-compatible server returns only the log-probs of the prompt's tokens; "
                f"use llama-cpp: or transformers: for alpha > 0")
        self.server = OpenAIGenerator(model, base_url, api_key_env, batch_size=batch_size,
                                      max_passage_tokens=max_passage_tokens, timeout=timeout,
                                      max_retries=max_retries)
        self.tokenizer = None if tokenizer is None else _load_tokenizer(tokenizer)
        self._chat = bool(getattr(self.tokenizer, "chat_template", None))
        self.server.check_model()

    def cut(self, text: str) -> str:
        """``text`` cut to ``max_passage_tokens`` tokens of ``tokenizer`` (words without
        one)."""
        if self.tokenizer is None:
            return self.server.cut(text)
        return cut_to_tokens(self.tokenizer, text, self.max_passage_tokens)

    def prompt_text(self, message: str) -> tuple[str, str]:
        """``(prompt, answer prefix)``: the rendered prompt of a user ``message``, and what
        goes before the answer (nothing after a chat template's assistant turn, a space
        after ``Answer:``)."""
        if self._chat:
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": message}], tokenize=False,
                add_generation_prompt=True), ""
        return f"{message}\nAnswer:", " "

    def answer_log_probs(self, question: str, answer: str, passages: Sequence[str]
                         ) -> list[np.ndarray]:
        """See :meth:`ragsift.jobs.gain.BaseGainScorer.answer_log_probs` (``alpha`` 0: the
        plain log-probs of the answer's tokens given the prompt with the passage).

        Raises:
            RagsiftError: a request failed, or the server returned no prompt log-probs.
        """
        if not answer.strip():
            raise RagsiftError(f"empty gold answer for question {question!r}")
        texts = [self.prompt_text(self.message(question, p)) for p in passages]
        with ThreadPoolExecutor(max_workers=max(1, self.server.batch_size)) as pool:
            return list(pool.map(lambda text: self._score(text[0], text[1] + answer), texts))

    def _score(self, prompt: str, answer: str) -> np.ndarray:
        """The log-probs of the tokens of ``answer`` after ``prompt`` (see the module
        docstring)."""
        needs = ("; gain labels need the log-probs of the prompt's tokens (completions with "
                 "echo=True and logprobs), which this server does not give")
        with self.server.request_errors(needs):
            response = self.server.client.completions.create(
                model=self.server.model, prompt=prompt + answer, echo=True, logprobs=0,
                max_tokens=1, temperature=0.0)
        logprobs = response.choices[0].logprobs if response.choices else None
        if logprobs is None or not logprobs.tokens or logprobs.token_logprobs is None:
            raise RagsiftError(f"{self.server.where()}: the response has no prompt "
                               f"log-probs{needs}")
        generated = response.usage.completion_tokens if response.usage else 0
        end = len(logprobs.tokens) - generated
        values = echoed_answer(logprobs.tokens[:end], logprobs.token_logprobs[:end], answer)
        if values is None:
            raise RagsiftError(f"{self.server.where()}: the echoed prompt does not end with the "
                               f"answer {answer!r} as whole tokens with log-probs (it ends "
                               f"with {logprobs.tokens[max(0, end - 3):end]})")
        return values


def echoed_answer(tokens: Sequence[str], log_probs: Sequence[float | None], answer: str
                  ) -> np.ndarray | None:
    """The log-probs of the last tokens of an echo whose texts join into ``answer``, or None
    when no such tokens exist (the server's tokens straddle the answer's start) or one of
    them has no log-prob.

    Example:
        >>> echoed_answer(["Q", ":", " Par", "is"], [None, -0.5, -2.0, -0.1], " Paris")
        array([-2. , -0.1])
        >>> echoed_answer(["Q:", "Par", "is"], [None, -2.0, -0.1], " Paris") is None
        True
    """
    start, text = len(tokens), ""
    while len(text) < len(answer) and start > 0:
        start -= 1
        text = tokens[start] + text
    values = log_probs[start:]
    if text != answer or any(v is None for v in values):
        return None
    return np.asarray(values, dtype=np.float64)


def _load_tokenizer(name: str) -> Any:
    """The transformers tokenizer of a local model name (a GGUF model's from its file)."""
    from transformers import AutoTokenizer

    folder = resolve_model(name)
    gguf = gguf_file_for(name, folder)
    return AutoTokenizer.from_pretrained(folder, **({"gguf_file": gguf} if gguf else {}))
