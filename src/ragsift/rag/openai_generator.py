"""The OpenAI-compatible backend of the RAG generator (``generator: openai:MODEL``).

Each prompt is the user message, sent as one chat completion (temperature 0, ``max_tokens``
= ``max_new_tokens``) to ``base_url`` (default api.openai.com), ``batch_size`` requests at a
time. The API key is read from the environment variable ``api_key_env`` (``OPENAI_API_KEY``);
a server of one's own (``llama_cpp.server``, vLLM, llama-server, Ollama) usually needs none.
Passages are cut to ``max_passage_tokens`` whitespace-separated words: the server's tokenizer
is not known here.

Any failure (server unreachable, timeout, unknown model, rejected key) is one
:class:`ragsift.errors.RagsiftError` naming the URL and the model.

Sampling settings that are not part of the OpenAI API (e.g. llama-cpp-python's server applies
``repeat_penalty`` 1.1 unless told otherwise) go in ``extra_body``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ragsift.errors import MissingExtraError, RagsiftError
from ragsift.rag.generator import TextGenerator

OPENAI_URL = "https://api.openai.com/v1"


class OpenAIGenerator(TextGenerator):
    """Greedy chat completions of ``model`` on an OpenAI-compatible server (see the module
    docstring)."""

    def __init__(self, model: str, base_url: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", max_new_tokens: int = 32,
                 batch_size: int = 8, max_passage_tokens: int = 256, timeout: float = 120.0,
                 max_retries: int = 2, extra_body: Mapping[str, Any] | None = None) -> None:
        """Args:
            model: the server's model name.
            base_url: the API root (``http://127.0.0.1:8000/v1``); None: api.openai.com.
            api_key_env: the environment variable holding the API key; when it is unset a
                placeholder key is sent (a local server ignores it).
            timeout: seconds per request; ``max_retries``: retries of a failed request.
            extra_body: extra request fields (server-specific sampling settings).

        Raises:
            MissingExtraError: the ``openai`` package is not installed.
            RagsiftError: no API key for api.openai.com, or an empty model name.
        """
        super().__init__(max_new_tokens, batch_size, max_passage_tokens)
        try:
            import openai
        except ImportError:
            raise MissingExtraError("openai", "llm") from None
        if not model:
            raise RagsiftError("generator openai:MODEL needs a model name after 'openai:'")
        self.model = model
        self.base_url = (base_url or OPENAI_URL).rstrip("/")
        key = os.environ.get(api_key_env, "")
        if not key and base_url is None:
            raise RagsiftError(f"generator openai:{model} on {self.base_url} needs an API key "
                               f"in the environment variable {api_key_env}")
        self.client = openai.OpenAI(base_url=self.base_url, api_key=key or "not-needed",
                                    timeout=timeout, max_retries=max_retries)
        self.extra_body = dict(extra_body or {})

    def fingerprint(self) -> str:
        """A hash of the URL, model name, ``max_new_tokens`` and ``extra_body``: a server may
        change the weights behind a name, which no hash here can see."""
        settings = ["openai", self.base_url, self.model, self.max_new_tokens, self.extra_body]
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:32]

    def encode(self, message: str) -> str:
        """The user message itself (the server applies its chat template)."""
        return message

    def cut(self, text: str) -> str:
        """``text`` cut to its first ``max_passage_tokens`` words (unchanged when shorter)."""
        words = text.split()
        return text if len(words) <= self.max_passage_tokens else \
            " ".join(words[:self.max_passage_tokens])

    def complete(self, prompts: Sequence[str], max_new_tokens: int | None = None) -> list[str]:
        """The greedy chat completion of each user message, in input order.

        Raises:
            RagsiftError: a request failed (the message names the URL, model and cause).
        """
        limit = max_new_tokens or self.max_new_tokens
        with ThreadPoolExecutor(max_workers=max(1, self.batch_size)) as pool:
            return list(pool.map(lambda message: self._chat(message, limit), prompts))

    def _chat(self, message: str, max_tokens: int) -> str:
        """One chat completion's text ("" when the server returns no content)."""
        import openai

        try:
            response = self.client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": message}],
                temperature=0.0, max_tokens=max_tokens, extra_body=self.extra_body or None)
        except openai.APITimeoutError:
            raise RagsiftError(f"{self.base_url} (model {self.model!r}): no answer within "
                               f"{self.client.timeout} s") from None
        except openai.APIConnectionError as exc:
            raise RagsiftError(f"{self.base_url} (model {self.model!r}): cannot reach the "
                               f"server: {exc.__cause__ or exc}") from None
        except openai.NotFoundError as exc:
            raise RagsiftError(f"{self.base_url} (model {self.model!r}): not found (a wrong "
                               f"model name or URL?): {_detail(exc)}") from None
        except openai.APIStatusError as exc:
            raise RagsiftError(f"{self.base_url} (model {self.model!r}): HTTP "
                               f"{exc.status_code}: {_detail(exc)}") from None
        if not response.choices:
            raise RagsiftError(f"{self.base_url} (model {self.model!r}): a response without "
                               f"choices")
        return response.choices[0].message.content or ""


def _detail(exc: Any) -> str:
    """The server's error message of an ``openai.APIStatusError`` (its body's ``message``)."""
    body = exc.body
    if isinstance(body, Mapping):
        body = body.get("error", body)
        if isinstance(body, Mapping):
            body = body.get("message", body)
    return str(body or exc.message)
