"""The OpenAI-compatible backend of the RAG generator (``generator: openai:MODEL``).

Each prompt is a chat (few-shot turns and the user message), sent as one chat completion
(temperature 0, ``max_tokens`` = ``max_new_tokens``, ``stop`` = the stop sequences) to
``base_url`` (default api.openai.com), ``batch_size`` requests at a time; with
``use_chat_template: false`` it is plain text, sent as a (legacy) completion, which vLLM,
llama.cpp's servers and Ollama also serve. The API key is read
from the environment variable ``api_key_env`` (``OPENAI_API_KEY``); a server of one's own
(``llama_cpp.server``, vLLM, llama-server, Ollama) usually needs none. Passages are cut to
``max_passage_tokens`` whitespace-separated words: the server's tokenizer is not known here.

Before the first completion the server's model list (``GET /models``) is read once: a model
name it does not list is an error naming the models it has (servers that have no such list, or
whose list is empty, are taken at their word). Any failure (server unreachable, timeout,
unknown model, rejected key) is one :class:`ragsift.errors.RagsiftError` naming the URL and the
model.

Sampling settings beyond temperature, ``max_tokens`` and ``stop`` go in ``extra_body``, merged
into every request; :func:`server_options` reads them from the config's ``KEY=VALUE`` list.
llama-cpp-python's server applies ``repeat_penalty`` 1.1 unless told otherwise, so
``repeat_penalty=1.0`` gives the greedy answers of the in-process llama.cpp backend; ``seed``
and ``top_p`` are part of the OpenAI API; vLLM calls its penalty ``repetition_penalty``. A server
that rejects a field answers with an HTTP error, reported as above.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from ragsift.errors import MissingExtraError, RagsiftError, SettingError
from ragsift.models.generation.generator import TextGenerator
from ragsift.models.generation.prompts import Message, PromptFormat

OPENAI_URL = "https://api.openai.com/v1"


class OpenAIGenerator(TextGenerator):
    """Greedy chat completions of ``model`` on an OpenAI-compatible server (see the module
    docstring)."""

    def __init__(self, model: str, base_url: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", max_new_tokens: int = 32,
                 batch_size: int = 8, max_passage_tokens: int = 256, timeout: float = 120.0,
                 max_retries: int = 2, extra_body: Mapping[str, Any] | None = None,
                 prompt_format: PromptFormat | None = None) -> None:
        """Args:
            model: the server's model name.
            base_url: the API root (``http://127.0.0.1:8000/v1``); None: api.openai.com.
            api_key_env: the environment variable holding the API key; when it is unset a
                placeholder key is sent (a local server ignores it).
            timeout: seconds per request; ``max_retries``: retries of a failed request.
            extra_body: extra request fields (sampling settings, see the module docstring).

        Raises:
            MissingExtraError: the ``openai`` package is not installed.
            RagsiftError: no API key for api.openai.com, or an empty model name.
        """
        super().__init__(max_new_tokens, batch_size, max_passage_tokens, prompt_format)
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
        self._model_checked = False

    def fingerprint(self) -> str:
        """A hash of the URL, model name, ``max_new_tokens`` and ``extra_body``: a server may
        change the weights behind a name, which no hash here can see."""
        settings = ["openai", self.base_url, self.model, self.max_new_tokens, self.extra_body]
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:32]

    def encode_chat(self, messages: Sequence[Message]) -> list[Message]:
        """The messages themselves (the server applies its chat template)."""
        return [dict(m) for m in messages]

    def encode_text(self, text: str) -> str:
        """The text itself (sent as a plain completion)."""
        return text

    def cut(self, text: str) -> str:
        """``text`` cut to its first ``max_passage_tokens`` words (unchanged when shorter)."""
        words = text.split()
        return text if len(words) <= self.max_passage_tokens else \
            " ".join(words[:self.max_passage_tokens])

    def complete(self, prompts: Sequence[Sequence[Message] | str],
                 max_new_tokens: int | None = None, stop: Sequence[str] = ()) -> list[str]:
        """The greedy chat completion of each chat (:meth:`encode_chat`), or plain completion
        of each text (:meth:`encode_text`), in input order, ending before the first of the
        ``stop`` strings.

        Raises:
            RagsiftError: the server does not list the model, or a request failed (the message
                names the URL, model and cause).
        """
        self.check_model()
        limit = max_new_tokens or self.max_new_tokens
        with ThreadPoolExecutor(max_workers=max(1, self.batch_size)) as pool:
            return list(pool.map(lambda prompt: self._complete(prompt, limit, stop), prompts))

    def check_model(self) -> None:
        """Raise :class:`RagsiftError` when the server's model list lacks ``model`` (``NAME``
        also matches ``NAME:latest``, Ollama's tag); done once per generator."""
        if self._model_checked:
            return
        import openai

        with self.request_errors():
            try:
                served = [m.id for m in self.client.models.list()]
            except openai.NotFoundError:  # no model list on this server
                served = []
        if served and self.model not in served and f"{self.model}:latest" not in served:
            raise RagsiftError(f"{self.base_url}: the server has no model {self.model!r}; it "
                               f"serves {', '.join(map(repr, served))}")
        self._model_checked = True

    def _complete(self, prompt: Sequence[Message] | str, max_tokens: int,
                  stop: Sequence[str]) -> str:
        """One completion's text ("" when the server returns no content)."""
        options = {"model": self.model, "temperature": 0.0, "max_tokens": max_tokens,
                   "stop": list(stop) or None, "extra_body": self.extra_body or None}
        with self.request_errors():
            if isinstance(prompt, str):
                response = self.client.completions.create(prompt=prompt, **options)
            else:
                response = self.client.chat.completions.create(messages=list(prompt),
                                                               **options)
        if not response.choices:
            raise RagsiftError(f"{self.where()}: a response without choices")
        choice = response.choices[0]
        return (choice.text if isinstance(prompt, str) else choice.message.content) or ""

    def where(self) -> str:
        """``URL (model 'name')``, the start of every error message about this server."""
        return f"{self.base_url} (model {self.model!r})"

    @contextmanager
    def request_errors(self, needs: str = "") -> Iterator[None]:
        """Turn the ``openai`` client's exceptions into one-line :class:`RagsiftError`\\ s;
        ``needs`` (what the request asked the server for) is appended to an HTTP error."""
        import openai

        where = self.where()
        try:
            yield
        except openai.APITimeoutError:
            raise RagsiftError(f"{where}: no answer within {self.client.timeout} s") from None
        except openai.APIConnectionError as exc:
            raise RagsiftError(f"{where}: cannot reach the server: {exc.__cause__ or exc}"
                               ) from None
        except openai.NotFoundError as exc:
            raise RagsiftError(f"{where}: not found (a wrong model name or URL?): "
                               f"{_detail(exc)}{needs}") from None
        except openai.APIStatusError as exc:
            raise RagsiftError(f"{where}: HTTP {exc.status_code}: {_detail(exc)}{needs}"
                               ) from None


def server_options(items: Sequence[str], key: str = "server_options") -> dict[str, Any]:
    """Request fields from ``KEY=VALUE`` strings; a value is read as JSON when it parses
    (``1.0``, ``42``, ``true``, ``[1, 2]``) and kept as a string otherwise.

    Example:
        >>> server_options(["repeat_penalty=1.0", "seed=7", "mirostat_mode=0"])
        {'repeat_penalty': 1.0, 'seed': 7, 'mirostat_mode': 0}

    Raises:
        SettingError: an item without ``=`` or with an empty key, at ``key[i]`` (a config
            file's loader turns it into the file and line of that item).
    """
    out: dict[str, Any] = {}
    for i, item in enumerate(items):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SettingError(f"{key}[{i}]",
                               f"expected KEY=VALUE (e.g. repeat_penalty=1.0), got {item!r}")
        try:
            out[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[name.strip()] = value.strip()
    return out


def _detail(exc: Any) -> str:
    """The server's error message of an ``openai.APIStatusError`` (its body's ``message``)."""
    body = exc.body
    if isinstance(body, Mapping):
        body = body.get("error", body)
        if isinstance(body, Mapping):
            body = body.get("message", body)
    return str(body or exc.message)
