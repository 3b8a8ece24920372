"""Answer extraction: the short answer inside a generation, so that exact match means something.

Small models wrap an answer in a sentence ("The answer is Paris [1]."), add a second line or
a second sentence, and answer a yes/no question with "Yes, both are ...". Two extractions:

- ``first-line`` (:func:`first_line`): the first line, without citation marks ``[n]`` and an
  ``Answer:`` prefix (the chain's behaviour before short answers);
- ``short`` (:func:`short_answer`): ``first-line``, then leading phrases such as "The answer
  is" removed, cut at the end of the first sentence (a ``.``, ``!`` or ``?`` followed by a space
  or the end, unless it ends an initial, a dotted abbreviation such as "U.S." or a common one
  such as "St.", "Jr." or "Vol."),
  trailing punctuation dropped, and for a yes/no question (one that starts with an auxiliary
  verb such as "Is", "Are", "Did", "Can") an answer starting with "yes" or "no" reduced to that
  word.

Example:
    >>> short_answer("The answer is: St. Louis, Missouri [2]. It is a city.\\nMore")
    'St. Louis, Missouri'
    >>> short_answer("Yes, both are rivers.", question="Are the Nile and the Amazon rivers?")
    'yes'
"""

from __future__ import annotations

import re
from collections.abc import Callable

EXTRACTIONS = ("short", "first-line")
_CITATION = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_LABEL = re.compile(r"^(?:answer|a)\s*:\s*", re.IGNORECASE)
_LEAD = re.compile(r"^(?:the\s+(?:short\s+|final\s+)?answer\s+(?:to\s+the\s+question\s+)?"
                   r"is\s*:?\s*|answer\s*:\s*)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "mt", "ft", "no", "co",
                  "inc", "ltd", "gen", "col", "lt", "sgt", "prof", "rev", "vol", "pt", "ch",
                  "ed", "feat", "op", "fig"}
_YES_NO_QUESTION = re.compile(
    r"^(?:is|are|was|were|do|does|did|can|could|has|have|had|will|would|should|shall|may|"
    r"might|must)\b", re.IGNORECASE)
_YES_NO_ANSWER = re.compile(r"^(yes|no)\b", re.IGNORECASE)
_TRAILING = ".,;:!?"


def first_line(text: str, question: str = "") -> str:
    """The first non-empty line of ``text`` without citation marks and an ``Answer:`` label
    (``question`` is unused; it is there so every extraction has one signature).

    Example:
        >>> first_line("\\nAnswer: Paris [1].\\nMore text")
        'Paris.'
    """
    del question
    lines = [line for line in text.strip().splitlines() if line.strip()]
    line = _LABEL.sub("", lines[0].strip()) if lines else ""
    return _CITATION.sub("", line).strip()


def short_answer(text: str, question: str = "") -> str:
    """The short answer inside ``text`` (see the module docstring for the steps).

    Args:
        text: a raw generation.
        question: the question it answers (only its first word is read: yes/no questions).
    """
    answer = first_line(text)
    while True:  # "Answer: The answer is: X"
        shorter = _LEAD.sub("", answer, count=1).strip()
        if shorter == answer:
            break
        answer = shorter
    answer = _first_sentence(answer).rstrip(_TRAILING).strip()
    if _YES_NO_QUESTION.match(question.strip()):
        match = _YES_NO_ANSWER.match(answer)
        if match:
            return match.group(1).lower()
    return answer


def _first_sentence(text: str) -> str:
    """``text`` up to the end of its first sentence (see the module docstring)."""
    for match in _SENTENCE_END.finditer(text):
        words = text[:match.start()].split()
        last = words[-1].lower().lstrip("(\"'") if words else ""
        if match.group() == "." and (len(last) == 1 or "." in last or last in _ABBREVIATIONS):
            continue  # "J. K. Rowling", "C.J. Hunter", "U.S. Army", "St. Louis", "Vol. 2"
        return text[:match.end()]
    return text


def extractor(name: str) -> Callable[[str, str], str]:
    """The extraction function of ``name`` (one of :data:`EXTRACTIONS`).

    Raises:
        ValueError: an unknown name.
    """
    if name == "short":
        return short_answer
    if name == "first-line":
        return first_line
    raise ValueError(f"unknown answer extraction {name!r}; use one of {', '.join(EXTRACTIONS)}")
