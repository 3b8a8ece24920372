"""Teacher labelling: score every query's candidates with a teacher and write training rows.

For each query of the split that the run holds, the candidates are the run's top ``k``
documents. The row is a group when the qrels name relevant documents for the query
(``pos`` = the relevant documents, scored whether or not the run retrieved them; ``neg`` = the
other candidates; ``pos_scores``/``neg_scores`` = raw teacher scores; ``query_id``/``pos_ids``/
``neg_ids``), and a scored list (``docs``/``scores``/``doc_ids``) otherwise. Rows follow the
sorted query ids; documents keep the run's order. The job is sharded and resumable
(:mod:`ragsift.jobs.sharded`).
"""

from __future__ import annotations

import json
from pathlib import Path

from ragsift.data.beir import BeirDataset
from ragsift.jobs.backends import Lazy, ShardBackend, resolve
from ragsift.jobs.sharded import JobResult, run_sharded
from ragsift.jobs.teacher import Teacher
from ragsift.types import Run, ranked


def label_run(data: BeirDataset, run: Run, teacher: Teacher | Lazy[Teacher], out: str | Path,
              k: int = 50, shard_size: int = 64, show_progress: bool = True,
              backend: ShardBackend | None = None) -> JobResult:
    """Write teacher-labelled rows for the queries of ``data`` found in ``run`` to ``out``
    (shards run on ``backend``; a :class:`Lazy` teacher loads once per worker)."""
    qids = sorted(q for q in run if q in data.queries)

    def text(doc_id: str) -> str:
        return data.corpus[doc_id].full_text()

    def work(shard: list[str]) -> list[str]:
        plans = []
        pairs: list[tuple[str, str]] = []
        for qid in shard:
            relevant = [d for d, rel in data.qrels.get(qid, {}).items()
                        if rel > 0 and d in data.corpus]
            candidates = [d for d, _ in ranked(run[qid], k) if d in data.corpus]
            others = [d for d in candidates if d not in relevant]
            docs = relevant + others
            plans.append((qid, relevant, others, len(pairs)))
            pairs.extend((data.queries[qid], text(d)) for d in docs)
        scores = resolve(teacher).score(pairs).tolist()
        lines = []
        for qid, relevant, others, start in plans:
            row_scores = scores[start:start + len(relevant) + len(others)]
            query = data.queries[qid]
            if relevant:
                row = {"query": query, "pos": [text(d) for d in relevant],
                       "neg": [text(d) for d in others],
                       "pos_scores": row_scores[:len(relevant)],
                       "neg_scores": row_scores[len(relevant):], "query_id": qid,
                       "pos_ids": relevant, "neg_ids": others}
            else:
                row = {"query": query, "docs": [text(d) for d in others],
                       "scores": row_scores, "query_id": qid, "doc_ids": others}
            lines.append(json.dumps(row, ensure_ascii=False))
        return lines

    return run_sharded(qids, work, out, shard_size, desc="label", show_progress=show_progress,
                       backend=backend)
