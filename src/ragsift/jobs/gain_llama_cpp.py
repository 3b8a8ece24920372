"""The llama.cpp backend of the gain labels: a GGUF model run by llama.cpp.

Prompts and passage cuts are those of
:class:`ragsift.models.generation.llama_cpp_generator.LlamaCppGenerator` (the GGUF's own tokenizer
and chat template, the same ids as the transformers path's tokenizer), whose loaded model this
scorer evaluates. For each (prompt, answer) the KV cache is cleared, the prompt is evaluated in one
batch and the answer's tokens one at a time; after each step the logits of the last position
(``llama_get_logits_ith(ctx, -1)``, the whole vocabulary) predict the next answer token. So the
scorer needs no ``logits_all`` buffer of ``n_ctx x vocab`` floats, and any ``alpha`` works (see
:mod:`ragsift.jobs.gain`).

Precision (``precision``):

- ``"f32"`` (default): the GGUF is converted once to float32 weights (llama.cpp's own
  dequantisation, ``llama_model_quantize`` to ``ALL_F32``; cached under
  ``$RAGSIFT_CACHE_DIR/gguf-f32/<file hash>/`` by
  :func:`ragsift.models.generation.gguf_convert.converted_gguf`), the KV cache is float32 too
  (not llama.cpp's float16 default), and llama.cpp computes in float32: the weights and
  arithmetic of the transformers path, which dequantises the same GGUF, up to the order of
  float additions.
- ``"native"``: the quantised file as it is. llama.cpp then rounds the activations to 8 bits
  in every quantised matrix product, which moves gold-token log-probs further and can swap
  near-tied passages.
- ``"bf16"``, ``"f16"``, ``"q8_0"``: a copy in that tensor type (converted once, cached like
  f32; :mod:`ragsift.models.generation.gguf_convert`), float16 KV cache: faster than f32 and
  the packaged Q4_1 on some CPUs (bf16 on AVX512_BF16), further from transformers than f32.

The agreement of f32 and native with transformers is measured in docs/training.md ("gain-label").

Example:
    >>> scorer = LlamaCppGainScorer.from_pretrained("smollm2-135m")  # doctest: +SKIP
    >>> scorer.gains("Where is the tower?", "Paris", ["It is in Paris."])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from ragsift.errors import RagsiftError
from ragsift.jobs.gain import LogitGainScorer
from ragsift.models.generation.gguf_convert import WEIGHTS, Weights
from ragsift.models.generation.llama_cpp_generator import LlamaCppGenerator

logger = logging.getLogger(__name__)
Precision = Weights  # the tensor types of :func:`converted_gguf`; f32 also keeps a float32 KV cache
PRECISIONS: tuple[str, ...] = WEIGHTS


class LlamaCppGainScorer(LogitGainScorer):
    """Gain labels from a GGUF model through llama.cpp (see the module docstring).

    Args:
        generator: the loaded model (its ``max_passage_tokens`` is set to the scorer's).
        alpha: the contrastive weight ``a``.
        max_passage_tokens: passages are cut to this many tokens of the GGUF's tokenizer.
    """

    def __init__(self, generator: LlamaCppGenerator, alpha: float = 0.5,
                 max_passage_tokens: int = 384) -> None:
        super().__init__(alpha, max_passage_tokens)
        self.generator = generator
        generator.max_passage_tokens = max_passage_tokens
        self.llm = generator.llm
        self._chat = self.llm.metadata.get("tokenizer.chat_template") is not None

    @classmethod
    def from_pretrained(cls, name: str, alpha: float = 0.5, max_passage_tokens: int = 384,
                        precision: Precision = "f32", n_threads: int | None = None
                        ) -> LlamaCppGainScorer:
        """Load the GGUF of a folder, packaged name (``smollm2-135m``) or hub id, in
        ``precision`` (see the module docstring); ``n_threads`` default: the CPU count.

        Raises:
            MissingExtraError: ``llama-cpp-python`` is not installed.
            RagsiftError: an unknown precision, no ``.gguf`` file, or a file that cannot be
                loaded.
        """
        if precision not in PRECISIONS:
            raise RagsiftError(f"llama-cpp gain precision {precision!r}: use one of "
                               f"{', '.join(PRECISIONS)}")
        generator = LlamaCppGenerator.from_pretrained(
            name, weights=precision, max_passage_tokens=max_passage_tokens,
            n_threads=n_threads, f32_kv_cache=precision == "f32")
        return cls(generator, alpha, max_passage_tokens)

    def cut(self, text: str) -> str:
        """``text`` cut to ``max_passage_tokens`` tokens of the GGUF's tokenizer."""
        return self.generator.cut(text)

    def encode(self, message: str) -> list[int]:
        """Prompt ids of ``message`` under the GGUF's chat template."""
        return self.generator.encode(message)

    def answer_ids(self, answer: str) -> list[int]:
        """Token ids of the gold answer after the prompt: the answer itself after a chat
        template's assistant turn, else with a leading space (after ``Answer:``)."""
        text = answer if self._chat else f" {answer}"
        return self.llm.tokenize(text.encode(), add_bos=False)

    def answer_logits(self, sequences: Sequence[tuple[list[int], list[int]]]
                      ) -> list[torch.Tensor]:
        """For each (prompt ids, answer ids): the ``(T, vocab)`` float32 logits predicting the
        answer tokens.

        Raises:
            RagsiftError: a sequence does not fit the context window.
        """
        return [self._sequence_logits(prompt, answer) for prompt, answer in sequences]

    def _sequence_logits(self, prompt: list[int], answer: list[int]) -> torch.Tensor:
        """The logits predicting ``answer`` after ``prompt`` (see the module docstring)."""
        import llama_cpp

        if len(prompt) + len(answer) > self.llm.n_ctx():
            raise RagsiftError(f"{self.generator.model_path.name}: a prompt of {len(prompt)} "
                               f"tokens and an answer of {len(answer)} do not fit n_ctx "
                               f"{self.llm.n_ctx()}; lower max_passage_tokens")
        vocab = self.llm.n_vocab()
        rows = np.empty((len(answer), vocab), dtype=np.float32)
        self.llm.reset()
        steps = [prompt] + [[token] for token in answer[:-1]]
        for row, tokens in enumerate(steps):
            self.llm.eval(tokens)
            logits = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
            rows[row] = np.ctypeslib.as_array(logits, shape=(vocab,))
        return torch.from_numpy(rows)
