"""The generator's prompt: templates, few-shot examples, stop sequences and answer extraction.

Every part lives in the RAG config (:class:`ragsift.rag.pipeline.RagConfig`, keys of the same
names), so a user changes the prompt without touching code:

- ``prompt_template``: the user message for a question with passages; ``{passages}`` becomes
  the numbered passages (``[1] title: text``, one per line) and ``{question}`` the question.
  Literal braces are written ``{{`` and ``}}``;
- ``prompt_template_no_context``: the message when no passage is selected (``{question}``);
- ``few_shot``: worked examples, each ``[question, answer]`` or ``[question, answer,
  passage]``, given as earlier chat turns (user: the example rendered by the template with its
  passage, or by the no-context template; assistant: its answer), which teaches a small model
  the answer's length and form. A question without passages gets the examples without theirs
  (no-context template), so the examples always look like the question;
- ``use_chat_template``: true renders the turns with the model's chat template (a chat
  completion on a server); false (the default) writes them as plain text (:func:`plain_chat`,
  a plain completion on a server), which suits base models and, measured on HotpotQA, also the
  packaged SmolLM2-135M-Instruct, which then continues the few-shot pattern instead of
  chatting (chat-hosted models such as OpenAI's need true);
- ``stop``: the generation ends before the first of these strings (every backend honours them;
  the default, a newline, keeps the first line only);
- ``answer_extraction``: ``short`` or ``first-line`` (:mod:`ragsift.models.generation.answers`).

Example:
    >>> fmt = PromptFormat(few_shot=(("Who wrote Hamlet?", "William Shakespeare"),))
    >>> [m["role"] for m in fmt.messages("Where is it?", ["Eiffel Tower: in Paris."])]
    ['user', 'assistant', 'user']
    >>> try:
    ...     PromptFormat(prompt_template="{passages} {query}")
    ... except PromptError as exc:
    ...     print(exc.key, "|", str(exc)[:49])
    prompt_template | prompt_template: unknown placeholder {query}; use
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

from ragsift.errors import SettingError
from ragsift.models.generation.answers import EXTRACTIONS, extractor

DEFAULT_TEMPLATE = "{passages}\nQuestion: {question}"
DEFAULT_TEMPLATE_NO_CONTEXT = "Question: {question}"
# Made-up examples in HotpotQA's answer styles (place, person, yes/no, year), none taken from
# the data set; each answer is a span of its passage.
DEFAULT_FEW_SHOT: tuple[tuple[str, ...], ...] = (
    ("In which region of France is the port city of Le Havre?", "Normandy",
     "Le Havre: Le Havre is a port city in Normandy, France, on the English Channel."),
    ("Who commanded the first crewed Moon landing?", "Neil Armstrong",
     "Apollo 11: Apollo 11 was the first crewed Moon landing. Its commander was Neil "
     "Armstrong."),
    ("Are Rust and Go both programming languages?", "yes",
     "Rust: Rust is a programming language first released in 2015.\n[2] Go: Go is a "
     "programming language designed at Google."),
    ("In what year did construction of the Blue Ridge Parkway begin?", "1935",
     "Blue Ridge Parkway: Construction of the Blue Ridge Parkway began in 1935."),
)
DEFAULT_STOP: tuple[str, ...] = ("\n",)
PLACEHOLDERS = {"prompt_template": ("passages", "question"),
                "prompt_template_no_context": ("question",)}
Message = dict[str, str]


class PromptError(SettingError):
    """A prompt setting that cannot work; ``key`` is the config key at fault."""


@dataclass(frozen=True)
class PromptFormat:
    """The prompt settings of the module docstring, validated when made.

    Raises:
        PromptError: an unknown or missing placeholder, a malformed template, a few-shot
            example that is not ``[question, answer]`` or ``[question, answer, passage]``, an
            empty stop string or an unknown extraction; the message starts with the key.
    """

    prompt_template: str = DEFAULT_TEMPLATE
    prompt_template_no_context: str = DEFAULT_TEMPLATE_NO_CONTEXT
    few_shot: tuple[tuple[str, ...], ...] = DEFAULT_FEW_SHOT
    stop: tuple[str, ...] = DEFAULT_STOP
    answer_extraction: str = "short"
    use_chat_template: bool = False

    def __post_init__(self) -> None:
        for key, allowed in PLACEHOLDERS.items():
            _check_template(key, getattr(self, key), allowed)
        for i, example in enumerate(self.few_shot):
            if len(example) not in (2, 3) or not all(isinstance(x, str) for x in example):
                raise PromptError(f"few_shot[{i}]", "expected [question, answer] or "
                                  f"[question, answer, passage], got {list(example)!r}")
        for i, text in enumerate(self.stop):
            if not text:
                raise PromptError(f"stop[{i}]", "an empty stop string would stop at once")
        if self.answer_extraction not in EXTRACTIONS:
            raise PromptError("answer_extraction", f"unknown {self.answer_extraction!r}; use "
                              f"one of {', '.join(EXTRACTIONS)}")

    def message(self, question: str, passages: Sequence[str]) -> str:
        """The user message for ``question`` with ``passages`` (already cut), numbered from
        1; the no-context template when there is none."""
        if not passages:
            return self.prompt_template_no_context.format(question=question)
        numbered = "\n".join(f"[{i}] {p}" for i, p in enumerate(passages, 1))
        return self.prompt_template.format(passages=numbered, question=question)

    def messages(self, question: str, passages: Sequence[str]) -> list[Message]:
        """The chat: one user / assistant pair per few-shot example (with the example's
        passage only when ``passages`` is not empty), then the question's user message
        (:meth:`message`)."""
        chat: list[Message] = []
        for example_question, answer, *passage in self.few_shot:
            shown = passage if passages else []
            chat += [{"role": "user", "content": self.message(example_question, shown)},
                     {"role": "assistant", "content": answer}]
        return [*chat, {"role": "user", "content": self.message(question, passages)}]

    def extract(self, text: str, question: str = "") -> str:
        """The answer in the raw generation ``text`` (``answer_extraction``)."""
        return extractor(self.answer_extraction)(text, question)


def _check_template(key: str, template: str, allowed: tuple[str, ...]) -> None:
    """Raise :class:`PromptError` unless ``template`` uses each of ``allowed`` and nothing
    else."""
    names = " and ".join(f"{{{name}}}" for name in allowed)
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template)
                  if name is not None]
    except ValueError as exc:
        raise PromptError(key, f"malformed template ({exc}); write {{{{ and }}}} for literal "
                          "braces") from None
    for name in fields:
        if name not in allowed:
            shown = f"{{{name}}}" if name else "{}"
            raise PromptError(key, f"unknown placeholder {shown}; use {names} (write {{{{ and "
                              "}} for literal braces)")
    missing = [f"{{{name}}}" for name in allowed if name not in fields]
    if missing:
        raise PromptError(key, f"the template has no {' or '.join(missing)}")


def plain_chat(messages: Sequence[Message]) -> str:
    """A chat as plain text, for a model without a chat template: each user message followed
    by ``\\nAnswer:``, each assistant reply by a blank line.

    Example:
        >>> plain_chat([{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
        ...             {"role": "user", "content": "Q2"}])
        'Q1\\nAnswer: A1\\n\\nQ2\\nAnswer:'
    """
    parts = []
    for message in messages:
        if message["role"] == "assistant":
            parts.append(f" {message['content']}\n\n")
        else:
            parts.append(f"{message['content']}\nAnswer:")
    return "".join(parts)


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (without) the earliest occurrence of any of the ``stop`` strings.

    Example:
        >>> cut_at_stop("Paris.\\nIt is", ["\\n", "."])
        'Paris'
    """
    ends = [i for i in (text.find(s) for s in stop) if i >= 0]
    return text[:min(ends)] if ends else text
