"""LLM rerankers: a causal language model asked whether a passage answers a query.

The prompt follows a :class:`PromptTemplate` (:data:`TEMPLATES`: ``plain``, the question in the
model's chat template when it has one; ``qwen3``, Qwen3-Reranker's system prompt with
``<Instruct>``, ``<Query>`` and ``<Document>``) and ends where the model would answer. A prompt
is assembled from token ids: the template's prefix, the instruction, query and document
(tokenized together), then its suffix; a document too long for ``max_length`` loses its end,
never the instruction, the query or the suffix, so the answer is always read after the suffix.
The raw score is the log-odds of "yes" against "no" at that position:

``s = logsumexp_{t in YES} z_t - logsumexp_{t in NO} z_t``

over the next-token logits ``z`` and the single-token spellings of the answer words (``yes``,
``Yes``, `` yes``, ... and likewise for ``no``), so ``sigmoid(s)`` is the model's probability of
"yes" given that it answers yes or no. Batches are left-padded with explicit position ids, so a
padded prompt scores exactly as it does alone. GGUF checkpoints load through transformers'
``gguf_file=`` (extra ``[llm]``: gguf, accelerate).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ragsift.errors import DataFormatError, UsageError
from ragsift.models.batching import length_sorted_batches, pad_features
from ragsift.models.causal_lm import left_padded_logits, load_causal_lm
from ragsift.models.device import default_device
from ragsift.rerank.base import Reranker

_YES = ("yes", "Yes", "YES", " yes", " Yes")
_NO = ("no", "No", "NO", " no", " No")
_DOCUMENT = "\x00document\x00"  # stands for the document while a chat template is rendered


@dataclass(frozen=True)
class PromptTemplate:
    """How a (query, document) pair becomes a prompt.

    ``body`` holds ``{instruction}``, ``{query}`` and ``{document}`` (the query before the
    document, which only fixed text may follow); ``chat``: wrap ``body`` as a user message in
    the tokenizer's chat template (when it has one; else ``\nAnswer:`` is appended);
    ``prefix`` and ``suffix`` are written around it as they are (``suffix`` ends where the
    model answers). ``instruction`` is the default task instruction.
    ``special_tokens``: let the tokenizer add its own (BOS, [CLS]...) to a prompt that is not
    a chat.
    """

    body: str
    instruction: str
    prefix: str = ""
    suffix: str = ""
    chat: bool = False
    special_tokens: bool = False


#: Prompt layouts by name.
TEMPLATES: dict[str, PromptTemplate] = {
    "plain": PromptTemplate(
        body="Query: {query}\nPassage: {document}\n{instruction}",
        instruction="Does the passage answer the query? Answer yes or no.",
        chat=True, special_tokens=True),
    # the layout Qwen3-Reranker models were trained with
    "qwen3": PromptTemplate(
        prefix="<|im_start|>system\nJudge whether the Document meets the requirements based "
               "on the Query and the Instruct provided. Note that the answer can only be "
               '"yes" or "no".<|im_end|>\n<|im_start|>user\n',
        body="<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}",
        suffix="<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
        instruction="Given a web search query, retrieve relevant passages that answer the "
                    "query"),
}


def single_token_ids(tokenizer: Any, words: Sequence[str]) -> list[int]:
    """Ids of the spellings in ``words`` that are one token each (duplicates removed)."""
    ids = {tuple(tokenizer(w, add_special_tokens=False)["input_ids"]) for w in words}
    return sorted(i[0] for i in ids if len(i) == 1)


class CausalLMReranker(Reranker):
    """A causal LM judging relevance, behind the :class:`Reranker` API.

    Args:
        model, tokenizer: a transformers causal LM and its tokenizer.
        template: a :data:`TEMPLATES` name or a :class:`PromptTemplate`.
        instruction: the question asked about each pair (default: the template's).
        max_length: most tokens per prompt; longer passages are windowed by the base class,
            and a prompt never exceeds it (the document is cut, see the module docstring).

    Example:
        >>> reranker = Reranker.load("smollm2-135m")  # doctest: +SKIP
        >>> reranker.score([("capital of France?", "Paris is in France.")])  # doctest: +SKIP
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, *, max_length: int = 1024,
                 batch_size: int = 8, max_batch_tokens: int = 8192,
                 template: str | PromptTemplate = "plain", instruction: str | None = None,
                 device: str | None = None, backend: str = "torch", threads: int | None = None,
                 **options: Any) -> None:
        super().__init__(**options)
        if backend != "torch":
            raise UsageError(f"LLM rerankers run on the torch backend only, not {backend!r}; "
                             "use backend torch")
        if isinstance(template, str):
            if template not in TEMPLATES:
                raise UsageError(f"unknown LLM reranker template {template!r}; choose from "
                                 f"{sorted(TEMPLATES)}")
            template = TEMPLATES[template]
        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device(device or default_device())
        self.model = model.to(self.device).eval()
        self._tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size, self.max_batch_tokens = batch_size, max_batch_tokens
        self.template = template
        self.instruction = template.instruction if instruction is None else instruction
        self.yes_ids = single_token_ids(tokenizer, _YES)
        self.no_ids = single_token_ids(tokenizer, _NO)
        if not self.yes_ids or not self.no_ids:
            raise DataFormatError(getattr(tokenizer, "name_or_path", "") or "the tokenizer", None,
                                  "vocabulary", "no single-token spelling of 'yes' or of 'no', "
                                  "whose logits an LLM reranker compares; use another model")
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else tokenizer.eos_token_id or 0
        self._head, self._tail = self._frame()
        self._tail_ids = self._ids(self._tail)
        self._specials = (tokenizer.num_special_tokens_to_add(pair=False)
                          if template.special_tokens and not self._is_chat else 0)

    @classmethod
    def from_pretrained(cls, name: str | os.PathLike[str], *, gguf_file: str | None = None,
                        **options: Any) -> CausalLMReranker:
        """Load a causal LM folder, a GGUF checkpoint (folder with one ``.gguf`` file, or a
        packaged name such as ``smollm2-135m``) or a hub id."""
        model, tokenizer, folder = load_causal_lm(name, gguf_file)
        return cls(model, tokenizer, **options).with_saved_calibration(folder)

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def _is_chat(self) -> bool:
        return self.template.chat and bool(getattr(self._tokenizer, "chat_template", None))

    def _frame(self) -> tuple[str, str]:
        """The prompt's text before and after the document (chat wrapping included), the
        instruction filled in and ``{query}`` still to fill."""
        template = self.template
        message = template.body.replace("{instruction}", self.instruction).replace(
            "{document}", _DOCUMENT)
        if self._is_chat:
            message = self._tokenizer.apply_chat_template(
                [{"role": "user", "content": message}], tokenize=False,
                add_generation_prompt=True)
        elif template.chat:
            message += "\nAnswer:"
        before, after = (template.prefix + message + template.suffix).split(_DOCUMENT)
        return before, after

    def _ids(self, text: str) -> list[int]:
        return self._tokenizer(text, add_special_tokens=False)["input_ids"]

    def prompt(self, query: str, passage: str) -> str:
        """The full text fed to the model for one pair, up to where it answers (before any
        cut of the passage)."""
        return self._query_part(query) + passage + self._tail

    def _query_part(self, query: str) -> str:
        return self._head.replace("{query}", query)

    def passage_budget(self, query: str) -> int:
        return (self.max_length - self._specials - len(self._tail_ids)
                - len(self._ids(self._query_part(query))))

    def encode_prompts(self, pairs: Sequence[tuple[str, str]]) -> list[list[int]]:
        """Token ids of each pair's prompt, at most :attr:`max_length`: the text before the
        passage and the passage are tokenized together, the passage's end cut to fit, and
        the suffix's tokens follow (so the prompt always ends where the model answers)."""
        out = []
        room = self.max_length - self._specials - len(self._tail_ids)
        for query, passage in pairs:
            head = self._query_part(query)
            encoded = self._tokenizer(head + passage, add_special_tokens=self._specials > 0,
                                      return_offsets_mapping=True,
                                      return_special_tokens_mask=True, verbose=False)
            ids, special = encoded["input_ids"], encoded["special_tokens_mask"]
            lead = next((i for i, flag in enumerate(special) if not flag), len(ids))
            end = len(ids) - next((i for i, flag in enumerate(reversed(special)) if not flag),
                                  len(ids))
            fixed = sum(1 for start, _ in encoded["offset_mapping"][lead:end]
                        if start < len(head))
            if fixed > room:
                raise UsageError(f"query too long: {fixed} prompt tokens before the passage "
                                 f"and {len(self._tail_ids)} after exceed max_length "
                                 f"{self.max_length}; raise max_length or shorten the query")
            # specials the tokenizer adds (BOS, [CLS] / [SEP]) stay where it puts them
            out.append(ids[:lead] + ids[lead:min(end, lead + room)] + self._tail_ids
                       + ids[max(end, lead):])
        return out

    def log_odds(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``logsumexp z_yes - logsumexp z_no`` at the last position of a left-padded batch
        (differentiable: training uses it too)."""
        last = left_padded_logits(self.model, input_ids, attention_mask, keep_last=1)
        logits = last[:, -1].float()
        device = logits.device
        yes = torch.tensor(self.yes_ids, device=device)
        no = torch.tensor(self.no_ids, device=device)
        return torch.logsumexp(logits[:, yes], 1) - torch.logsumexp(logits[:, no], 1)

    def score_fitted(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        encoded = self.encode_prompts(pairs)
        out = np.zeros(len(pairs), dtype=np.float32)
        batches = length_sorted_batches([len(e) for e in encoded], self.batch_size,
                                        self.max_batch_tokens)
        with torch.inference_mode():
            for batch in batches:
                features = pad_features({"input_ids": [encoded[i] for i in batch]}, self.pad_id,
                                        padding_side="left")
                out[batch] = self.log_odds(features["input_ids"],
                                           features["attention_mask"]).float().cpu().numpy()
        return out


def is_causal_lm(config: dict, folder: Path) -> bool:
    """A transformers causal LM, or a folder holding a GGUF checkpoint."""
    architectures = config.get("architectures") or []
    return any(a.endswith("ForCausalLM") for a in architectures) or any(folder.glob("*.gguf"))
