"""``ragsift gain-label``: labels for every (question, paragraph) of a QA file, as the training
rows the reranker trainer reads (``{"query", "docs", "scores"}``, one per question, plus
``query_id`` and the ``supporting`` paragraph indices). Sharded and resumable
(:mod:`ragsift.jobs.sharded`).

Two kinds of label: GainRAG gains from a generator (any backend of
:func:`ragsift.jobs.gain.load_gain_scorer`: transformers, llama.cpp, an OpenAI-compatible
server), or the dataset's own annotation (1.0 for a supporting paragraph, 0.0 otherwise),
which trains the
relevance-supervised baseline a selector is compared with, in the same format and loss."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ragsift.data.qa import QAExample
from ragsift.jobs.gain import BaseGainScorer
from ragsift.jobs.sharded import JobResult, run_sharded

Labeller = Callable[[QAExample, list[str]], np.ndarray]


def supporting_labels(example: QAExample, docs: list[str]) -> np.ndarray:
    """1.0 for each supporting paragraph of ``example``, 0.0 for the others (``docs`` are the
    example's paragraphs, in order)."""
    return np.array([float(p.is_supporting) for p in example.paragraphs])


def gain_labeller(scorer: BaseGainScorer) -> Labeller:
    """GainRAG gains of each paragraph for the example's question and gold answer."""
    return lambda example, docs: scorer.gains(example.question, example.answer, docs)


def gain_label(examples: list[QAExample], labeller: Labeller, out: str | Path,
               shard_size: int = 16, show_progress: bool = True) -> JobResult:
    """Write one row of ``labeller``'s labels per question of ``examples`` to ``out``."""
    by_id = {example.id: example for example in examples}

    def work(shard: list[str]) -> list[str]:
        lines = []
        for qid in shard:
            example = by_id[qid]
            docs = [p.full_text() for p in example.paragraphs]
            labels = labeller(example, docs)
            lines.append(json.dumps({"query": example.question, "query_id": qid, "docs": docs,
                                     "scores": [round(float(g), 6) for g in labels],
                                     "supporting": sorted(example.supporting)},
                                    ensure_ascii=False))
        return lines

    return run_sharded([e.id for e in examples], work, out, shard_size, desc="gain-label",
                       show_progress=show_progress)
