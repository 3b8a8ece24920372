"""Slow end-to-end checks on real models and ../shared/datasets (skipped when absent).

They compare ragsift with its peers (bm25s, sentence-transformers) on the same slice, in the same
run. ``.ci/run`` runs them on small slices: ``RAGSIFT_SLOW_QUERIES`` queries and a corpus of their
judged documents plus ``RAGSIFT_SLOW_DOCS`` others (unset: the full test split).
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

from ragsift.data.beir import BeirDataset, load_beir
from ragsift.evaluate import evaluate
from ragsift.retrieve import BM25Retriever, DenseRetriever, HybridRetriever
from ragsift.types import top_k
from tests.conftest import shared_dataset

pytestmark = pytest.mark.slow


def sliced(folder) -> BeirDataset:
    data = load_beir(folder, "test")
    n_queries = int(os.environ.get("RAGSIFT_SLOW_QUERIES", "0"))
    n_docs = int(os.environ.get("RAGSIFT_SLOW_DOCS", "0"))
    if not n_queries:
        return data
    rng = random.Random(0)
    qids = sorted(rng.sample(sorted(data.queries), min(n_queries, len(data.queries))))
    judged = {d for q in qids for d in data.qrels[q]}
    others = [d for d in data.corpus if d not in judged]
    keep = judged | set(rng.sample(others, min(n_docs, len(others))))
    corpus = {d: doc for d, doc in data.corpus.items() if d in keep}
    return BeirDataset(corpus, {q: data.queries[q] for q in qids},
                       {q: data.qrels[q] for q in qids}, data.folder, data.split)


@pytest.mark.parametrize("name", ["scifact", "hotpotqa-beir"])
def test_quality_parity_with_peers(name):
    import bm25s
    import Stemmer
    from sentence_transformers import SentenceTransformer

    from ragsift.models.hub import resolve_model

    data = sliced(shared_dataset(name))
    ids = list(data.corpus)
    texts = [d.full_text() for d in data.corpus.values()]
    qids = list(data.queries)

    bm25 = BM25Retriever()
    bm25.index(data.corpus)
    ours_bm25 = bm25.search(data.queries, 100)
    stemmer = Stemmer.Stemmer("english")
    peer = bm25s.BM25()
    peer.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
               show_progress=False)
    docs, scores = peer.retrieve(
        bm25s.tokenize([data.queries[q] for q in qids], stopwords="en", stemmer=stemmer,
                       show_progress=False), k=min(100, len(ids)), show_progress=False)
    peer_bm25 = {q: {ids[j]: float(s) for j, s in zip(row, srow) if s > 0}
                 for q, row, srow in zip(qids, docs, scores)}

    dense = DenseRetriever("minilm-l6", cache_dir=False)
    dense.index(data.corpus)
    ours_dense = dense.search(data.queries, 100)
    st = SentenceTransformer(str(resolve_model("minilm-l6")), device="cpu")
    doc_vectors = st.encode(texts, batch_size=32, normalize_embeddings=True)
    query_vectors = st.encode([data.queries[q] for q in qids], normalize_embeddings=True)
    sims = query_vectors @ doc_vectors.T
    peer_dense = {q: {ids[j]: float(row[j]) for j in np.argsort(-row)[:100]}
                  for q, row in zip(qids, sims)}

    fused = top_k(HybridRetriever([bm25, dense]).fuse([ours_bm25, ours_dense]), 100)
    ndcg = {label: evaluate(data.qrels, run, ["ndcg@10"]).mean["ndcg@10"] for label, run in
            [("bm25", ours_bm25), ("bm25s", peer_bm25), ("dense", ours_dense),
             ("st", peer_dense), ("hybrid", fused)]}
    print(name, len(data.corpus), len(data.queries), ndcg)
    assert abs(ndcg["bm25"] - ndcg["bm25s"]) <= 0.005
    assert abs(ndcg["dense"] - ndcg["st"]) <= 0.005
    if not os.environ.get("RAGSIFT_SLOW_QUERIES"):  # full split: the bar
        assert ndcg["hybrid"] > max(ndcg["bm25"], ndcg["dense"])


def test_demo_runs_end_to_end_with_minilm(capsys):
    from ragsift.cli.main import main

    queries = int(os.environ.get("RAGSIFT_SLOW_QUERIES", "300"))
    documents = max(int(os.environ.get("RAGSIFT_SLOW_DOCS", "1000")), queries)
    assert main(["demo", "--queries", str(queries), "--documents", str(documents)]) == 0
    out = capsys.readouterr().out
    assert "hybrid-rrf" in out and "dense:minilm-l6" in out
