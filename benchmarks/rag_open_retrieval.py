"""Open retrieval for the RAG chain: supporting-passage recall when each question searches a
whole collection, against ranking each question's own 10 paragraphs (the closed setting).

One run:

- builds (or tops up, with ``--collection``) a hybrid collection (BM25 + ``--embedder``) of a
  BEIR corpus (default ``../shared/datasets/hotpotqa-beir``: the 5,913 paragraphs of the 600
  HotpotQA questions);
- for the questions of a QA file (default ``../shared/datasets/hotpotqa/test.jsonl``), runs
  :meth:`ragsift.rag.pipeline.Pipeline.open_retrieval` with each side of the collection
  (``bm25``, ``dense``, ``hybrid``) and reports supporting recall@1/2/5/20 (the share of a
  question's 2 supporting paragraphs among the first k passages, averaged) and the mean search
  time per question;
- for reference, the closed setting: BM25 over each question's own 10 paragraphs (2 of which
  are supporting), as ``ragsift rag`` ranks them without ``--collection``.

Usage:
    python -m benchmarks.rag_open_retrieval [--questions FILE] [--corpus DIR] [--limit N]
        [--collection DIR] [--embedder minilm-l6] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import environment, report
from ragsift.collection import AddResult, Collection, load_sources
from ragsift.data.qa import load_qa
from ragsift.rag.metrics import supporting_recall
from ragsift.rag.pipeline import Pipeline, RagConfig, retrieval_scores

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
KS = (1, 2, 5, 20)


def recalls(rankings: list[list[int]], examples: list) -> dict[str, float]:
    """Mean supporting recall@k of ``rankings`` (passage indices, best first), out of each
    question's gold passages (retrieved or not)."""
    return {f"recall@{k}": float(np.mean([
        supporting_recall(r, e.supporting, k, e.extra.get("gold_supporting"))
        for r, e in zip(rankings, examples)])) for k in KS}


def build_collection(folder: Path, corpus: Path, embedder: str) -> AddResult:
    """Create the hybrid collection (BM25 + ``embedder``) in ``folder``, or open the one there,
    and add the documents of the BEIR ``corpus`` folder (a rerun skips what is already there);
    returns what the add did (``added``, ``unchanged``)."""
    col = Collection.create(folder, retriever="hybrid", embedder=embedder, exist_ok=True,
                            show_progress=True)
    try:
        return col.add(load_sources([corpus]))
    finally:
        col.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=Path, default=SHARED / "hotpotqa" / "test.jsonl")
    parser.add_argument("--corpus", type=Path, default=SHARED / "hotpotqa-beir")
    parser.add_argument("--collection", type=Path, default=None,
                        help="build or top up this collection (default: a temp folder)")
    parser.add_argument("--embedder", default="minilm-l6")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    examples = load_qa(args.questions)[:args.limit]
    folder = args.collection or Path(tempfile.mkdtemp()) / "collection"
    results = []
    start = time.perf_counter()
    added = build_collection(folder, args.corpus, args.embedder)
    results.append({"run": f"feed the collection ({added.added} added, {added.unchanged} "
                           "unchanged)", "seconds": time.perf_counter() - start})

    closed = retrieval_scores("bm25", examples)
    rankings = [np.argsort(-s, kind="stable").tolist() for s in closed]
    results.append({"run": "closed: bm25 over each question's 10 paragraphs",
                    **recalls(rankings, examples)})
    for side in ("bm25", "dense", "hybrid"):
        pipeline = Pipeline(RagConfig(collection=str(folder), collection_retriever=side,
                                      candidates=max(KS)))
        start = time.perf_counter()
        retrieved = pipeline.open_retrieval(examples)
        seconds = time.perf_counter() - start
        rankings = [list(range(len(e.paragraphs))) for e in retrieved]
        results.append({"run": f"open: {side} over the collection",
                        "ms_per_question": 1000 * seconds / len(examples),
                        **recalls(rankings, retrieved)})
    headers = ["run", *(f"recall@{k}" for k in KS), "ms/question"]
    rows = [[r["run"], *(f"{r[f'recall@{k}']:.4f}" if f"recall@{k}" in r else "-" for k in KS),
             f"{r['ms_per_question']:.1f}" if "ms_per_question" in r
             else (f"{r['seconds']:.1f} s" if "seconds" in r else "-")] for r in results]
    report(results, headers, rows, args.out, environment=environment(["bm25s", "faiss-cpu"]),
           questions=len(examples), corpus=str(args.corpus))


if __name__ == "__main__":
    main()
