"""The llama.cpp backend of the RAG generator: a GGUF file run natively by ``llama-cpp-python``.

Prompts are token ids of the GGUF's own tokenizer: the chat rendered with the GGUF's chat template
(``tokenizer.chat_template``, the same Jinja formatter and tokenization that
``Llama.create_chat_completion`` and ``python -m llama_cpp.server`` use), or
:func:`ragsift.models.generation.prompts.plain_chat` after the BOS token when the file has no
template. Decoding is greedy (temperature 0, no repeat penalty), one prompt at a time from an empty
KV cache, so an answer depends only on its prompt; stop sequences are llama.cpp's own (the text ends
before the first). ``n_threads`` defaults to the CPU count; on a machine whose cores are busy with
other work, 1 thread is often several times faster (llama.cpp's threads wait for each other by
spinning). ``from_pretrained(name, weights=...)`` runs a copy of the GGUF in another tensor type
(``bf16``, ``q8_0``, ...; converted once and cached:
:mod:`ragsift.models.generation.gguf_convert`), often faster than the packaged Q4_1.

Example:
    >>> generator = LlamaCppGenerator.from_pretrained("smollm2-135m")  # doctest: +SKIP
    >>> generator.generate(["Where is it?"], [["The tower is in Paris."]])  # doctest: +SKIP
    ['The tower is in Paris.']
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragsift.errors import MissingExtraError, RagsiftError
from ragsift.models.generation.generator import TextGenerator
from ragsift.models.generation.gguf_convert import check_weights, converted_gguf, hash_file
from ragsift.models.generation.prompts import Message, PromptFormat, plain_chat
from ragsift.models.hub import gguf_file_for, resolve_model


class LlamaCppGenerator(TextGenerator):
    """Greedy answers of a GGUF model through llama.cpp (see the module docstring)."""

    def __init__(self, model_path: str | os.PathLike[str], max_new_tokens: int = 32,
                 batch_size: int = 8, max_passage_tokens: int = 256,
                 n_threads: int | None = None, n_ctx: int = 0,
                 prompt_format: PromptFormat | None = None, f32_kv_cache: bool = False) -> None:
        """Load ``model_path`` (a ``.gguf`` file); ``n_ctx`` 0 is the model's trained context.
        ``f32_kv_cache`` keeps keys and values in float32 (llama.cpp's default is float16).

        Raises:
            MissingExtraError: ``llama-cpp-python`` is not installed.
            RagsiftError: the file cannot be loaded.
        """
        super().__init__(max_new_tokens, batch_size, max_passage_tokens, prompt_format)
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError:
            raise MissingExtraError("llama_cpp", "llm") from None
        self.model_path = Path(model_path)
        threads = n_threads or os.cpu_count() or 1
        try:
            kv_type = {"type_k": llama_cpp.GGML_TYPE_F32,
                       "type_v": llama_cpp.GGML_TYPE_F32} if f32_kv_cache else {}
            self.llm = llama_cpp.Llama(model_path=str(self.model_path), n_ctx=n_ctx,
                                       n_threads=threads, n_threads_batch=threads,
                                       verbose=False, **kv_type)
        except (ValueError, RuntimeError) as exc:
            raise RagsiftError(f"{self.model_path}: llama.cpp cannot load it: {exc}") from None
        # free the model with its generator, or at exit before the interpreter tears down
        # the modules that Llama.__del__ needs
        weakref.finalize(self, self.llm.close)
        self._version = llama_cpp.__version__
        template = self.llm.metadata.get("tokenizer.chat_template")
        self._formatter = None if template is None else Jinja2ChatFormatter(
            template=template, eos_token=self._token_text(self.llm.token_eos()),
            bos_token=self._token_text(self.llm.token_bos()))
        self._fingerprint: str | None = None

    @classmethod
    def from_pretrained(cls, name: str, weights: str = "native", **options: Any
                        ) -> LlamaCppGenerator:
        """Load the GGUF of a folder, packaged name (``smollm2-135m``) or hub id (its only
        ``.gguf`` file, or the packaged one), converted first to ``weights`` (``native``, the
        file as it is, or ``f32``, ``bf16``, ``f16``, ``q8_0``: a copy made once and cached,
        :func:`ragsift.models.generation.gguf_convert.converted_gguf`).

        Raises:
            UsageError: unknown ``weights``.
            RagsiftError: the model has no ``.gguf`` file.
        """
        check_weights(weights)  # before resolving (and maybe downloading) the model
        folder = resolve_model(name)
        gguf = gguf_file_for(name, folder)
        if gguf is None:
            raise RagsiftError(f"{name}: no .gguf file in {folder}; the llama-cpp backend runs "
                               f"GGUF models (use transformers:{name} for this one)")
        return cls(converted_gguf(folder / gguf, weights), **options)

    def _token_text(self, token: int) -> str:
        """The text of special token ``token`` ("" for -1, a token the model lacks)."""
        return "" if token == -1 else self.llm._model.token_get_text(token)

    def fingerprint(self) -> str:
        """A hash of the GGUF file, the llama-cpp-python version and ``max_new_tokens``.
        Computed once (it reads the whole file)."""
        if self._fingerprint is None:
            prefix = repr(("llama.cpp", self._version, self.max_new_tokens)).encode()
            self._fingerprint = hash_file(self.model_path, prefix)[:32]
        return self._fingerprint

    def encode_chat(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of ``messages`` under the GGUF's chat template (see the module
        docstring)."""
        if self._formatter is None:
            return self.encode_text(plain_chat(messages))
        result = self._formatter(messages=list(messages))
        return self.llm.tokenize(result.prompt.encode(), add_bos=not result.added_special,
                                 special=True)

    def encode_text(self, text: str) -> list[int]:
        """Token ids of ``text`` after the BOS token."""
        return self.llm.tokenize(text.encode(), add_bos=True)

    def cut(self, text: str) -> str:
        """``text`` cut to ``max_passage_tokens`` tokens of the GGUF's tokenizer."""
        ids = self.llm.tokenize(text.encode(), add_bos=False)
        if len(ids) <= self.max_passage_tokens:
            return text
        return self.llm.detokenize(ids[:self.max_passage_tokens]).decode(errors="ignore")

    def complete(self, prompts: Sequence[Sequence[int]], max_new_tokens: int | None = None,
                 stop: Sequence[str] = ()) -> list[str]:
        """The raw greedy continuation of each prompt (token ids of :meth:`encode`), up to the
        end-of-generation token, ``max_new_tokens`` (default: the generator's) tokens or the
        first of the ``stop`` strings (excluded).

        Raises:
            RagsiftError: a prompt does not fit the context window with its new tokens.
        """
        limit = max_new_tokens or self.max_new_tokens
        texts = []
        for ids in prompts:
            self.llm.reset()  # no KV-cache reuse: an answer depends on its prompt alone
            try:
                output = self.llm.create_completion(list(ids), max_tokens=limit,
                                                    temperature=0.0, repeat_penalty=1.0,
                                                    stop=list(stop) or None)
            except ValueError as exc:
                raise RagsiftError(f"{self.model_path.name}: {exc} (prompt of {len(ids)} "
                                   f"tokens, {limit} new; n_ctx {self.llm.n_ctx()})") from None
            texts.append(output["choices"][0]["text"])
        return texts
