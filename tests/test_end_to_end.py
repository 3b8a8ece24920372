"""Slow end-to-end checks on real models and ../shared/datasets (skipped when absent).

They compare ragsift with its peers (bm25s, sentence-transformers) on the same slice, in the same
run. ``.ci/run`` runs them on small slices: ``RAGSIFT_SLOW_QUERIES`` queries and a corpus of their
judged documents plus ``RAGSIFT_SLOW_DOCS`` others (unset: the full test split).
"""

from __future__ import annotations

import os
import random

import pytest

from ragsift.data.beir import BeirDataset, load_beir
from ragsift.evaluate import evaluate
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
    from benchmarks.bench_quality import bm25s_run, ragsift_runs, sentence_transformers_run

    data = sliced(shared_dataset(name))
    runs = ragsift_runs(data)
    runs["bm25s"] = bm25s_run(data)
    runs["st"] = sentence_transformers_run(data)
    ndcg = {label: evaluate(data.qrels, run, ["ndcg@10"]).mean["ndcg@10"]
            for label, run in runs.items()}
    print(name, len(data.corpus), len(data.queries), ndcg)
    assert abs(ndcg["bm25"] - ndcg["bm25s"]) <= 0.005
    assert abs(ndcg["dense"] - ndcg["st"]) <= 0.005
    if not os.environ.get("RAGSIFT_SLOW_QUERIES"):  # full split: the bar
        assert ndcg["hybrid-rrf"] > max(ndcg["bm25"], ndcg["dense"])


def test_demo_runs_end_to_end_with_minilm(capsys):
    from ragsift.cli.main import main

    queries = int(os.environ.get("RAGSIFT_SLOW_QUERIES", "300"))
    documents = max(int(os.environ.get("RAGSIFT_SLOW_DOCS", "1000")), queries)
    assert main(["demo", "--queries", str(queries), "--documents", str(documents)]) == 0
    out = capsys.readouterr().out
    assert "hybrid-rrf" in out and "dense:minilm-l6" in out
