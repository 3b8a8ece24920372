"""Positional-bias probe: does a model still find the evidence when it sits late in a long
document?

For each question with a supporting paragraph that contains the answer string, a long document
is built from that paragraph and ``filler`` paragraphs of *other* questions (unrelated text):
the answer paragraph goes at the ``begin``-ning, the ``middle`` or the ``end``. The question's
non-supporting paragraphs, put in the same slot of the same filler, are the distractors. For
each position, the model scores the answer document and its distractors; we report

- ``hit@1``: the answer document scores above every distractor,
- ``mrr``: mean of ``1 / rank`` of the answer document among ``1 + distractors``,
  (both are expectations under a random order of tied scores: a model that scores everything
  alike gets the chance level, not a perfect rank),
- ``score``: its mean score (comparable across positions of one model only).

A position-blind model (BM25 over the group) gives the same numbers at every position; a model
that truncates long documents loses the ``end``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ragsift.data.qa import QAExample

POSITIONS = ("begin", "middle", "end")
GroupScorer = Callable[[str, list[str]], np.ndarray]


@dataclass(frozen=True)
class Probe:
    """One question's documents: ``groups[position]`` is ``[answer document, distractors...]``."""

    question_id: str
    question: str
    groups: dict[str, list[str]]


def place(paragraph: str, filler: Sequence[str], position: str) -> str:
    """``paragraph`` inserted at ``position`` among ``filler`` paragraphs, joined by blank
    lines (``middle``: after the first ``len(filler) // 2`` filler paragraphs)."""
    slot = {"begin": 0, "middle": len(filler) // 2, "end": len(filler)}[position]
    return "\n\n".join([*filler[:slot], paragraph, *filler[slot:]])


def build_probes(examples: Sequence[QAExample], filler: int = 4, seed: int = 0) -> list[Probe]:
    """Probes for the ``examples`` whose supporting paragraphs contain the answer (others are
    skipped: e.g. yes/no questions); the filler of each comes, seeded, from other questions."""
    rng = random.Random(seed)
    probes = []
    for index, example in enumerate(examples):
        answer = example.answer.lower()
        evidence = [p for p in example.paragraphs if p.is_supporting and answer in p.text.lower()]
        distractors = [p.full_text() for p in example.paragraphs if not p.is_supporting]
        others = [i for i in range(len(examples)) if i != index]
        if not evidence or not distractors or not others or answer in ("yes", "no"):
            continue
        pool = [p.full_text() for i in rng.sample(others, min(filler, len(others)))
                for p in examples[i].paragraphs if answer not in p.text.lower()]
        chosen = rng.sample(pool, min(filler, len(pool)))
        groups = {position: [place(text, chosen, position)
                             for text in [evidence[0].full_text(), *distractors]]
                  for position in POSITIONS}
        probes.append(Probe(example.id, example.question, groups))
    return probes


def run_probe(probes: Sequence[Probe], score: GroupScorer) -> dict[str, dict[str, float]]:
    """``{position: {"hit@1", "mrr", "score", "questions"}}`` for a model scoring a query
    against a group of documents (see the module docstring)."""
    table: dict[str, dict[str, float]] = {}
    for position in POSITIONS:
        hits, reciprocal, scores = [], [], []
        for probe in probes:
            values = np.asarray(score(probe.question, probe.groups[position]), dtype=np.float64)
            above = int((values[1:] > values[0]).sum())
            ties = int((values[1:] == values[0]).sum())
            ranks = np.arange(1 + above, 2 + above + ties)  # equally likely (random tie-break)
            hits.append(float(above == 0) / (1 + ties))
            reciprocal.append(float(np.mean(1.0 / ranks)))
            scores.append(values[0])
        table[position] = {"hit@1": float(np.mean(hits)), "mrr": float(np.mean(reciprocal)),
                           "score": float(np.mean(scores)), "questions": len(probes)}
    return table


def bm25_scorer(**options) -> GroupScorer:
    """BM25 over the group itself (its statistics from the group's documents)."""
    from ragsift.retrieve import BM25Retriever
    from ragsift.types import Document

    def score(query: str, docs: list[str]) -> np.ndarray:
        bm25 = BM25Retriever(**options)
        bm25.index({str(i): Document(str(i), text) for i, text in enumerate(docs)})
        hits = bm25.search({"q": query}, k=len(docs))["q"]
        return np.array([hits.get(str(i), 0.0) for i in range(len(docs))])

    return score


def bi_encoder_scorer(encoder) -> GroupScorer:
    """Cosine (or the model's similarity) of a :class:`~ragsift.models.BiEncoder`'s vectors."""

    def score(query: str, docs: list[str]) -> np.ndarray:
        return encoder.encode_documents(docs) @ encoder.encode_queries([query])[0]

    return score


def reranker_scorer(reranker) -> GroupScorer:
    """Raw scores of any ragsift :class:`~ragsift.rerank.Reranker` (its long-document
    strategy applies)."""

    def score(query: str, docs: list[str]) -> np.ndarray:
        return reranker.score([(query, d) for d in docs])

    return score
