"""The time budget of ``ragsift adapt`` (``--budget-minutes M``), and the document order.

Documents are taken in a seeded random order (:func:`document_order`), so that any prefix of it
is a random sample and capping the count never changes which documents come first.

With a budget of ``B = 60 M`` seconds, counted from the start of the command:

1. synthesis writes queries for the first ``p`` documents (``probe_docs``) and measures its
   speed, ``r`` seconds per document (model loading excluded);
2. it may run until ``synth_share * B`` seconds have passed: with ``t`` seconds spent when the
   probe ends, it takes ``n = p + floor((synth_share * B - t) / r)`` documents in all
   (:func:`documents_within`), never more than ``--docs`` or the corpus;
3. training stops at the first optimizer step that ends after ``B`` seconds
   (:class:`Deadline`); a cross-encoder, when asked for, gets the second half of the time the
   bi-encoder would otherwise have had.

Mining and teacher scoring are not capped: their cost grows with ``n``, which step 2 bounds.
"""

from __future__ import annotations

import math
import random
import time

from transformers import TrainerCallback

from ragsift.types import Corpus


def document_order(corpus: Corpus, seed: int) -> list[str]:
    """The ids of the documents with text, sorted, then shuffled with ``seed``.

    Example:
        >>> from ragsift.types import Document
        >>> corpus = {i: Document(i, f"text {i}") for i in "abcde"} | {"f": Document("f", " ")}
        >>> order = document_order(corpus, seed=0)
        >>> sorted(order), order == document_order(corpus, seed=0)
        (['a', 'b', 'c', 'd', 'e'], True)
    """
    ids = sorted(d for d, doc in corpus.items() if doc.full_text().strip())
    random.Random(seed).shuffle(ids)
    return ids


def documents_within(probe: int, seconds_per_doc: float, seconds_left: float,
                     most: int) -> int:
    """How many documents synthesis takes: the ``probe`` ones already done plus as many as
    ``seconds_left`` allows at ``seconds_per_doc`` each, at most ``most``.

    Example:
        >>> documents_within(16, 2.0, 101.0, 1000)   # 16 + floor(101 / 2)
        66
        >>> documents_within(16, 2.0, -5.0, 1000), documents_within(16, 2.0, 1e6, 40)
        (16, 40)
    """
    more = math.floor(max(seconds_left, 0.0) / max(seconds_per_doc, 1e-9))
    return min(most, probe + more)


class Deadline(TrainerCallback):
    """Stops training at the end of the first optimizer step finishing after ``at`` (a
    :func:`time.monotonic` time); the trainer then saves the model as after its last step."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.stopped_at: int | None = None

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102 (Trainer hook)
        if time.monotonic() >= self.at:
            control.should_training_stop = True
            self.stopped_at = state.global_step
        return control
