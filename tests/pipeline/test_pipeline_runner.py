"""A pipeline's run equals the one computed by hand from its components: the retrievers' own
runs fused by the RRF / convex formulas, the reranker's own pair scores, the final fusion."""

from __future__ import annotations

import pytest

from ragsift.data.beir import load_beir
from ragsift.pipeline.config import PipelineConfig
from ragsift.pipeline.runner import RetrievalPipeline
from ragsift.rerank import Reranker
from ragsift.retrieve.bm25 import BM25Retriever
from ragsift.retrieve.dense import DenseRetriever


def order(scores: dict[str, float]) -> list[str]:
    """Doc ids best first, ties by id (the order ragsift.types.ranked uses)."""
    return sorted(scores, key=lambda d: (-scores[d], d))


def by_rrf(runs: list[dict[str, float]], weights: list[float], k: float = 60.0):
    fused: dict[str, float] = {}
    for run, w in zip(runs, weights):
        for rank, doc in enumerate(order(run), start=1):
            fused[doc] = fused.get(doc, 0.0) + w / (k + rank)
    return fused


def minmax(scores: dict[str, float]) -> dict[str, float]:
    low, high = min(scores.values()), max(scores.values())
    return {d: (s - low) / (high - low) if high > low else 1.0 for d, s in scores.items()}


def best(scores: dict[str, float], n: int) -> dict[str, float]:
    return {d: scores[d] for d in order(scores)[:n]}


@pytest.fixture(scope="module")
def components(tmp_path_factory, tiny_model_dir, tiny_cross_encoder):
    """The BEIR data, each first-stage member's run (depth 100) and the reranker."""
    from tests.conftest import write_beir

    data = load_beir(write_beir(tmp_path_factory.mktemp("beir") / "tiny"))
    bm25 = BM25Retriever()
    dense = DenseRetriever(str(tiny_model_dir), cache_dir=False)
    runs = []
    for retriever in (bm25, dense):
        retriever.index(data.corpus)
        runs.append(retriever.search(data.queries, 100))
    return data, runs, Reranker.load(tiny_cross_encoder)


@pytest.mark.parametrize("final_fusion", ["none", "rrf", "convex"])
def test_hybrid_rerank_fusion_equals_the_hand_computation(components, tiny_model_dir,
                                                        tiny_cross_encoder, final_fusion):
    data, (bm25_run, dense_run), reranker = components
    w, top_n, k = 0.7, 4, 3
    config = PipelineConfig(first_stage=["bm25", f"dense:{tiny_model_dir}"],
                            first_stage_weights=[1.0, 2.0], rerank_model=str(tiny_cross_encoder),
                            rerank_top_n=top_n, final_fusion=final_fusion, final_weight=w, k=k)
    pipeline = RetrievalPipeline(config)
    pipeline.index(data.corpus)
    got = pipeline.search(data.queries)
    assert set(got) == set(data.queries)
    for qid, query in data.queries.items():
        first = best(by_rrf([bm25_run[qid], dense_run[qid]], [1.0, 2.0]), top_n)
        pairs = [(query, data.corpus[d].full_text()) for d in first]
        rerank = dict(zip(first, (float(s) for s in reranker.score(pairs))))
        if final_fusion == "none":
            final = rerank
        elif final_fusion == "rrf":
            final = by_rrf([rerank, first], [w, 1 - w])
        else:
            r, f = minmax(rerank), minmax(first)
            final = {d: w * r[d] + (1 - w) * f[d] for d in first}
        expected = best(final, k)
        assert list(got[qid]) == list(expected), qid
        assert list(got[qid].values()) == pytest.approx(list(expected.values()), rel=1e-5,
                                                        abs=1e-6)


def test_first_stage_alone_is_the_convex_fusion_cut_to_k(components, tiny_model_dir):
    data, (bm25_run, dense_run), _ = components
    config = PipelineConfig(first_stage=["bm25", f"dense:{tiny_model_dir}"],
                            first_stage_fusion="convex", first_stage_weights=[0.4, 0.6], k=5)
    pipeline = RetrievalPipeline(config)
    assert pipeline.reranker is None
    pipeline.index(data.corpus)
    got = pipeline.search(data.queries)
    for qid in data.queries:
        b, d = minmax(bm25_run[qid]), minmax(dense_run[qid])
        # a document one run misses gets that run's lowest normalised score
        fused = {doc: 0.4 * b.get(doc, min(b.values())) + 0.6 * d.get(doc, min(d.values()))
                 for doc in {*b, *d}}
        expected = best(fused, 5)
        assert list(got[qid]) == list(expected)
        assert list(got[qid].values()) == pytest.approx(list(expected.values()), abs=1e-9)
