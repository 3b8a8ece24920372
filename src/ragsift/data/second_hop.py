"""Second-hop queries for multi-hop questions, and the training rows that teach a reranker them.

A multi-hop question (HotpotQA's "which river flows through the town this band comes from?")
needs two documents, and the second one (the town's page) shares few words with the question:
it is found through the first one (the band's page, which names the town). A second-hop
reranker therefore scores ``(hop query, document)`` pairs where the hop query is the question
followed by the first document::

    hop_query(q, d1, words) = q + " [SEP] " + title(d1) + ": " + the first `words` words of d1

and :func:`hop_training_examples` turns the qrels of questions with two or more relevant
documents into training rows for ``ragsift train reranker``: for each ordered pair ``(a, b)``
of a question's relevant documents, the hop query of ``a`` with ``b`` as the positive and the
question's candidates in a run (minus every relevant document) as the negatives.
:mod:`ragsift.pipeline.second_hop` applies such a model at search time.
"""

from __future__ import annotations

from itertools import permutations

from ragsift.data.beir import BeirDataset
from ragsift.data.training import TrainingExample
from ragsift.types import Document, Run, ranked

SEPARATOR = " [SEP] "


def hop_query(query: str, first: Document, words: int = 64) -> str:
    """The question followed by the first hop's title and its first ``words`` words.

    Example:
        >>> hop_query("where?", Document("d", "a b c", title="T"), words=2)
        'where? [SEP] T: a b'
    """
    head = " ".join(first.text.split()[:words])
    context = f"{first.title}: {head}" if first.title else head
    return f"{query}{SEPARATOR}{context}"


def hop_training_examples(data: BeirDataset, candidates: Run, depth: int = 30,
                          words: int = 64) -> list[TrainingExample]:
    """Training rows (one per ordered pair of relevant documents) for a second-hop reranker.

    Args:
        data: a BEIR split; only its queries with two or more relevant (> 0) documents in the
            corpus give rows.
        candidates: a run over those queries; each query's ``depth`` best documents that are
            not relevant are its negatives (queries absent from the run, or left without
            negatives, give no rows).
        words: words of the first document put into the hop query (:func:`hop_query`).

    Returns:
        rows with ``query`` = hop query of ``a``, ``pos`` = ``[b]``, ``neg`` = the negatives,
        and their ids (``pos_ids``, ``neg_ids``) for every ordered pair ``(a, b)``.
    """
    examples = []
    for qid, judged in data.qrels.items():
        relevant = [d for d, rel in judged.items() if rel > 0 and d in data.corpus]
        if len(relevant) < 2 or qid not in candidates or qid not in data.queries:
            continue
        negatives = [d for d, _ in ranked(candidates[qid], depth)
                     if d not in relevant and d in data.corpus]
        if not negatives:
            continue
        for first, second in permutations(relevant, 2):
            examples.append(TrainingExample(
                hop_query(data.queries[qid], data.corpus[first], words),
                pos=[data.corpus[second].full_text()],
                neg=[data.corpus[d].full_text() for d in negatives],
                query_id=qid, pos_ids=[second], neg_ids=negatives))
    return examples
