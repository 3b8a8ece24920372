"""Slow end-to-end checks on real models and ../shared/datasets (skipped when absent).

They compare ragsift with its peers (bm25s, sentence-transformers) on the same slice, in the same
run. ``.ci/run`` runs them on small slices: ``RAGSIFT_SLOW_QUERIES`` queries and a corpus of their
judged documents plus ``RAGSIFT_SLOW_DOCS`` others (unset: the full test split).
"""

from __future__ import annotations

import os

import pytest

from ragsift.data.beir import BeirDataset, load_beir
from ragsift.evaluate import evaluate
from tests.conftest import shared_dataset

pytestmark = pytest.mark.slow


def sliced(folder) -> BeirDataset:
    """The test split, or the slice that RAGSIFT_SLOW_QUERIES / RAGSIFT_SLOW_DOCS ask for."""
    from benchmarks.common import slice_dataset

    n_queries = int(os.environ.get("RAGSIFT_SLOW_QUERIES", "0")) or None
    n_docs = int(os.environ.get("RAGSIFT_SLOW_DOCS", "0")) or None
    return slice_dataset(load_beir(folder, "test"), n_queries, n_docs if n_queries else None)


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
