"""The positional-bias probe on hand-made questions: document layout, a position-blind model
and a model that reads only the start of a document."""

from __future__ import annotations

import numpy as np
import pytest

from ragsift.data.qa import Paragraph, QAExample
from ragsift.rag.position_probe import (
    POSITIONS,
    bm25_scorer,
    build_probes,
    place,
    run_probe,
)


def example(i: int, topic: str, answer: str) -> QAExample:
    return QAExample(
        id=f"q{i}", question=f"Which city hosts the {topic} festival?", answer=answer,
        paragraphs=[Paragraph(f"{topic} festival", f"The {topic} festival is held in {answer}.",
                              True),
                    Paragraph(f"{topic} history", f"The history of {topic} music is long.",
                              False),
                    Paragraph(f"{topic} bands", f"Many {topic} bands tour every summer.",
                              False)])


EXAMPLES = [example(0, "jazz", "Montreux"), example(1, "folk", "Cambridge"),
            example(2, "rock", "Roskilde"), example(3, "opera", "Verona")]


def test_place_puts_the_paragraph_at_each_slot():
    filler = ["f1", "f2", "f3", "f4"]
    assert place("A", filler, "begin") == "A\n\nf1\n\nf2\n\nf3\n\nf4"
    assert place("A", filler, "middle") == "f1\n\nf2\n\nA\n\nf3\n\nf4"
    assert place("A", filler, "end") == "f1\n\nf2\n\nf3\n\nf4\n\nA"


def test_probes_share_filler_and_skip_questions_without_the_answer_in_evidence():
    no_answer = QAExample("q9", "Is jazz old?", "yes", EXAMPLES[0].paragraphs)
    probes = build_probes([*EXAMPLES, no_answer], filler=2, seed=1)
    assert [p.question_id for p in probes] == ["q0", "q1", "q2", "q3"]
    probe = probes[0]
    for position in POSITIONS:
        group = probe.groups[position]
        assert len(group) == 3 and "Montreux" in group[0]
        assert not any("Montreux" in d for d in group[1:])
        assert not any("jazz" in d.split("\n\n")[0] for d in group) or position == "begin"
    # the filler around the answer paragraph is that of its distractors, from other questions
    answer_filler = probe.groups["end"][0].split("\n\n")[:-1]
    assert answer_filler == probe.groups["end"][1].split("\n\n")[:-1]
    assert len(answer_filler) == 2 and not any("jazz" in f for f in answer_filler)


def test_bm25_is_position_blind_and_a_prefix_reader_is_not():
    probes = build_probes(EXAMPLES, filler=3, seed=0)
    bm25 = run_probe(probes, bm25_scorer())
    assert bm25["begin"] == bm25["middle"] == bm25["end"]
    assert bm25["begin"]["hit@1"] == 1.0

    def first_words(query: str, docs: list[str]) -> np.ndarray:
        """Counts query words in the first 12 words of each document only."""
        words = set(query.lower().rstrip("?").split())
        return np.array([sum(w.strip(".:") in words for w in d.lower().split()[:12])
                         for d in docs], dtype=float)

    reader = run_probe(probes, first_words)
    assert reader["begin"]["hit@1"] == 1.0
    assert reader["end"]["score"] < reader["begin"]["score"]
    assert reader["end"]["mrr"] < reader["begin"]["mrr"]
    ranks = [1 / reader[p]["mrr"] for p in POSITIONS]
    assert ranks == pytest.approx(sorted(ranks))  # worse the later the evidence sits


def test_ties_count_at_chance_level():
    probes = build_probes(EXAMPLES, filler=2, seed=0)
    flat = run_probe(probes, lambda query, docs: np.zeros(len(docs)))
    for position in POSITIONS:  # 1 answer document + 2 distractors, all tied
        assert flat[position]["hit@1"] == pytest.approx(1 / 3)
        assert flat[position]["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
