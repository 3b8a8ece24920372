"""``ragsift gain-label``: GainRAG labels for every (question, paragraph) of a QA file, as the
training rows the reranker trainer reads (``{"query", "docs", "scores"}``, one per question,
``scores`` = gain labels, plus ``query_id`` and the ``supporting`` paragraph indices).
Sharded and resumable (:mod:`ragsift.jobs.sharded`)."""

from __future__ import annotations

import json
from pathlib import Path

from ragsift.data.qa import QAExample
from ragsift.jobs.sharded import JobResult, run_sharded
from ragsift.rag.gain import GainScorer


def gain_label(examples: list[QAExample], scorer: GainScorer, out: str | Path,
               shard_size: int = 16, show_progress: bool = True) -> JobResult:
    """Write one row of gain labels per question of ``examples`` to ``out``."""
    by_id = {example.id: example for example in examples}

    def work(shard: list[str]) -> list[str]:
        lines = []
        for qid in shard:
            example = by_id[qid]
            docs = [p.full_text() for p in example.paragraphs]
            gains = scorer.gains(example.question, example.answer, docs)
            lines.append(json.dumps({"query": example.question, "query_id": qid, "docs": docs,
                                     "scores": [round(float(g), 6) for g in gains],
                                     "supporting": sorted(example.supporting)},
                                    ensure_ascii=False))
        return lines

    return run_sharded([e.id for e in examples], work, out, shard_size, desc="gain-label",
                       show_progress=show_progress)
