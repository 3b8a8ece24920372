"""The pipeline's optional last stage: a second hop for multi-hop questions.

For each query of a ranked run (the pipeline's output), with ``d1`` its best document, ``D``
the documents at ranks 2 .. ``hop_depth``, ``w`` = ``hop_weight`` and ``c`` = ``hop_rrf_k``:

1. a second-hop reranker scores ``(hop_query(q, d1), d)`` for every ``d`` in ``D``
   (:func:`ragsift.data.second_hop.hop_query`: the question followed by ``d1``), which ranks
   ``D`` by how well each document completes ``d1`` as the answer's second half;
2. ``D`` is re-ordered by ``s(d) = (1 - w) / (c + rank_run(d)) + w / (c + rank_hop(d))`` (ranks
   from 1 within ``D``; ties keep the run's order); ``d1`` stays first and the documents below
   ``hop_depth`` keep their places;
3. the scores the run had, position by position, are handed to the new order, so the scores
   keep their scale (and thresholds set on them) while following the new ranking. Positions
   whose scores tie in the run (RRF gives such ties) stay tied, and whatever ranks the run
   next (a TREC file, trec_eval) orders them by its own tie rule, not by the hop.

A ``d1`` that is wrong costs little: the run's own order keeps half the vote.
"""

from __future__ import annotations

import logging
import time

from ragsift.data.second_hop import hop_query
from ragsift.rerank import Reranker
from ragsift.types import Corpus, Queries, Run, ranked

logger = logging.getLogger(__name__)


def second_hop(run: Run, queries: Queries, corpus: Corpus, reranker: Reranker,
               depth: int = 30, weight: float = 0.5, rrf_k: float = 5.0,
               words: int = 64) -> Run:
    """``run`` with ranks 2 .. ``depth`` of each query re-ordered by the second hop (steps 1-3
    of the module docstring).

    Args:
        run: a ranked run whose documents are all in ``corpus``.
        queries: the text of each of the run's queries.
        reranker: the second-hop model (trained on
            :func:`ragsift.data.second_hop.hop_training_examples` rows).
        depth, weight, rrf_k, words: ``hop_depth``, ``hop_weight``, ``hop_rrf_k`` and
            ``hop_context_words`` of :class:`~ragsift.pipeline.config.PipelineConfig`.

    Returns:
        a run over the same documents with the same scores per position.
    """
    orders = {qid: ranked(docs) for qid, docs in run.items()}
    pairs, owners = [], []
    for qid, order in orders.items():
        if len(order) < 3:
            continue
        query = hop_query(queries[qid], corpus[order[0][0]], words)
        for doc_id, _ in order[1:depth]:
            pairs.append((query, corpus[doc_id].full_text()))
            owners.append((qid, doc_id))
    start = time.perf_counter()
    pair_scores = reranker.score(pairs)
    logger.info("second hop: %d pairs of %d queries scored in %.1fs", len(pairs),
                len({qid for qid, _ in owners}), time.perf_counter() - start)
    scores: dict[str, dict[str, float]] = {}
    for (qid, doc_id), score in zip(owners, pair_scores, strict=True):
        scores.setdefault(qid, {})[doc_id] = float(score)
    out: Run = {}
    for qid, order in orders.items():
        if qid not in scores:
            out[qid] = dict(order)
            continue
        middle = [doc_id for doc_id, _ in order[1:depth]]
        hop_rank = {d: i for i, (d, _) in enumerate(ranked(scores[qid]), start=1)}
        fused = {d: (1 - weight) / (rrf_k + i) + weight / (rrf_k + hop_rank[d])
                 for i, d in enumerate(middle, start=1)}
        middle.sort(key=lambda d: -fused[d])  # stable: ties keep the run's order
        new_order = [order[0][0], *middle, *(d for d, _ in order[depth:])]
        out[qid] = {d: score for d, (_, score) in zip(new_order, order, strict=True)}
    return out
