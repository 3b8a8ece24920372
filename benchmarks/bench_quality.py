"""Retrieval quality of ragsift against its peers on BEIR folders, in one run.

For each dataset: nDCG@10 and Recall@100 of
- ragsift ``bm25`` vs bm25s (same settings: Lucene BM25, k1=1.5, b=0.75, English stopwords,
  Snowball stemming),
- ragsift ``dense:minilm-l6`` vs sentence-transformers' ``encode`` of the same model
  (exact cosine search with numpy),
- ragsift hybrid (RRF k=60 over the top 100 of each; convex min-max) vs RRF of the peers' runs.

Usage:
    python -m benchmarks.bench_quality [--data DIR ...] [--split test] [--out FILE.json]
Default datasets: every BEIR folder under ../shared/datasets with the split (see common.py).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import add_dataset_arguments, datasets, report
from ragsift.data.beir import BeirDataset
from ragsift.evaluate import evaluate
from ragsift.retrieve import BM25Retriever, DenseRetriever
from ragsift.retrieve.fusion import convex, rrf
from ragsift.types import Run, top_k

METRICS = ("ndcg@10", "recall@100")


def bm25s_run(data: BeirDataset, k: int = 100) -> Run:
    """bm25s used the way its README shows, on ``title + " " + text``."""
    import bm25s
    import Stemmer

    ids = list(data.corpus)
    qids = list(data.queries)
    stemmer = Stemmer.Stemmer("english")
    model = bm25s.BM25()
    model.index(bm25s.tokenize([d.full_text() for d in data.corpus.values()], stopwords="en",
                               stemmer=stemmer, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize([data.queries[q] for q in qids], stopwords="en", stemmer=stemmer,
                            show_progress=False)
    docs, scores = model.retrieve(tokens, k=min(k, len(ids)), show_progress=False)
    return {q: {ids[j]: float(s) for j, s in zip(row, srow) if s > 0}
            for q, row, srow in zip(qids, docs, scores)}


def sentence_transformers_run(data: BeirDataset, model: str = "minilm-l6", k: int = 100) -> Run:
    """sentence-transformers ``encode`` (batch 32, normalised) and exact cosine search."""
    from sentence_transformers import SentenceTransformer

    from ragsift.models.hub import resolve_model

    ids = list(data.corpus)
    qids = list(data.queries)
    st = SentenceTransformer(str(resolve_model(model)), device="cpu")
    docs = st.encode([d.full_text() for d in data.corpus.values()], batch_size=32,
                     normalize_embeddings=True)
    queries = st.encode([data.queries[q] for q in qids], batch_size=32, normalize_embeddings=True)
    sims = queries @ docs.T
    return {q: {ids[j]: float(row[j]) for j in np.argsort(-row)[:k]} for q, row in zip(qids, sims)}


def ragsift_runs(data: BeirDataset, model: str = "minilm-l6", k: int = 100) -> dict[str, Run]:
    """ragsift's bm25, dense and both hybrids (fused from the same member runs)."""
    bm25 = BM25Retriever()
    bm25.index(data.corpus)
    dense = DenseRetriever(model, cache_dir=False)
    dense.index(data.corpus)
    runs = {"bm25": bm25.search(data.queries, k), "dense": dense.search(data.queries, k)}
    members = [runs["bm25"], runs["dense"]]
    runs["hybrid-rrf"] = top_k(rrf(members), k)
    runs["hybrid-convex"] = top_k(convex(members), k)
    return runs


def benchmark(name: str, data: BeirDataset) -> dict:
    start = time.perf_counter()
    ours = ragsift_runs(data)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    peers = {"bm25": bm25s_run(data), "dense": sentence_transformers_run(data)}
    peers["hybrid-rrf"] = top_k(rrf([peers["bm25"], peers["dense"]]), 100)
    peers_s = time.perf_counter() - start
    score = lambda run: evaluate(data.qrels, run, METRICS).mean  # noqa: E731
    return {
        "dataset": name, "documents": len(data.corpus), "queries": len(data.queries),
        "ragsift": {label: score(run) for label, run in ours.items()},
        "peers": {label: score(run) for label, run in peers.items()},
        "seconds": {"ragsift": ours_s, "peers": peers_s},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataset_arguments(parser)
    args = parser.parse_args()
    results = [benchmark(name, data) for name, data in datasets(args)]
    rows = []
    for r in results:
        for label in ("bm25", "dense", "hybrid-rrf"):
            ours, peer = r["ragsift"][label]["ndcg@10"], r["peers"][label]["ndcg@10"]
            rows.append([r["dataset"], label, ours, peer, ours - peer,
                         r["ragsift"][label]["recall@100"], r["peers"][label]["recall@100"]])
        rows.append([r["dataset"], "hybrid-convex", r["ragsift"]["hybrid-convex"]["ndcg@10"],
                     "-", "-", r["ragsift"]["hybrid-convex"]["recall@100"], "-"])
    report(results, ["dataset", "run", "ragsift ndcg@10", "peer ndcg@10", "diff",
                     "ragsift R@100", "peer R@100"], rows, args.out)


if __name__ == "__main__":
    main()
