"""``Collection.search_pipeline``: the collection's own hits, reranked and fused by hand."""

from __future__ import annotations

import random

import pytest

from ragsift.collection import Collection
from ragsift.pipeline.config import PipelineConfig
from ragsift.rerank import Reranker
from tests.collection.conftest import random_document


def minmax(values: list[float]) -> list[float]:
    low, high = min(values), max(values)
    return [(v - low) / (high - low) if high > low else 1.0 for v in values]


@pytest.mark.parametrize("final_fusion", ["none", "convex"])
def test_search_pipeline_reranks_and_fuses_the_collections_hits(tmp_path,
                                                                tiny_cross_encoder,
                                                                final_fusion):
    rng = random.Random(0)
    col = Collection.create(tmp_path / "c", retriever="bm25")
    col.add([random_document(rng, f"d{i}") for i in range(30)])
    reranker = Reranker.load(tiny_cross_encoder)
    config = PipelineConfig(rerank_model=str(tiny_cross_encoder), rerank_top_n=8,
                            final_fusion=final_fusion, final_weight=0.25, k=3)
    query = "cell protein"
    hits = col.search_pipeline(query, config, reranker)
    candidates = col.search(query, k=8)
    assert len(candidates) == 8
    rerank = [float(s) for s in reranker.score(
        [(query, f"{h.title} {h.text}" if h.title else h.text) for h in candidates])]
    if final_fusion == "none":
        final = rerank
    else:
        first = [h.score for h in candidates]
        final = [0.25 * r + 0.75 * f for r, f in zip(minmax(rerank), minmax(first))]
    expected = sorted(zip(final, (h.id for h in candidates)), key=lambda p: (-p[0], p[1]))[:3]
    assert [h.id for h in hits] == [doc_id for _, doc_id in expected]
    assert [h.score for h in hits] == pytest.approx([s for s, _ in expected], rel=1e-5,
                                                    abs=1e-6)
    texts = {h.id: h.text for h in candidates}
    assert all(h.text == texts[h.id] for h in hits)
