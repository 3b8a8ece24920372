"""Slow: a BM25 + MiniLM RRF pipeline on SciFact (a slice with ``RAGSIFT_SLOW_QUERIES`` /
``RAGSIFT_SLOW_DOCS``) scores the nDCG@10 of its components' runs fused by hand, and beats
both components on the full split."""

from __future__ import annotations

import os

import pytest

from ragsift.evaluate import evaluate
from ragsift.pipeline.config import PipelineConfig
from ragsift.pipeline.runner import RetrievalPipeline
from ragsift.retrieve.bm25 import BM25Retriever
from ragsift.retrieve.dense import DenseRetriever
from tests.conftest import shared_dataset
from tests.pipeline.test_pipeline_runner import best, by_rrf
from tests.test_end_to_end import sliced

pytestmark = pytest.mark.slow


def test_bm25_minilm_rrf_pipeline_equals_its_components_fused():
    data = sliced(shared_dataset("scifact"))
    pipeline = RetrievalPipeline(PipelineConfig(first_stage=["bm25", "dense:minilm-l6"], k=100))
    pipeline.index(data.corpus)
    got = pipeline.search(data.queries)
    runs = {}
    for name, retriever in (("bm25", BM25Retriever()), ("dense", DenseRetriever("minilm-l6"))):
        retriever.index(data.corpus)
        runs[name] = retriever.search(data.queries, 100)
    by_hand = {qid: best(by_rrf([runs["bm25"][qid], runs["dense"][qid]], [1.0, 1.0]), 100)
               for qid in data.queries}
    ndcg = {name: evaluate(data.qrels, run, ["ndcg@10"]).mean["ndcg@10"]
            for name, run in {**runs, "by-hand": by_hand, "pipeline": got}.items()}
    print(len(data.corpus), len(data.queries), ndcg)
    assert ndcg["pipeline"] == pytest.approx(ndcg["by-hand"], abs=1e-9)
    if not os.environ.get("RAGSIFT_SLOW_QUERIES"):
        assert ndcg["pipeline"] > max(ndcg["bm25"], ndcg["dense"])
