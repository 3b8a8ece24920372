"""``ragsift serve --collection DIR --pipeline FILE``: /search answers what
``Collection.search_pipeline`` gives, and the config's pipeline key is checked."""

from __future__ import annotations

import dataclasses
import random

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from ragsift.collection import Collection  # noqa: E402
from ragsift.errors import DataFormatError  # noqa: E402
from ragsift.pipeline.config import load_pipeline  # noqa: E402
from ragsift.rerank import Reranker  # noqa: E402
from ragsift.serve.app import create_app  # noqa: E402
from ragsift.serve.config import ServeConfig  # noqa: E402
from tests.collection.conftest import random_document  # noqa: E402
from tests.serve.conftest import API_KEY, AUTH, running  # noqa: E402


@pytest.mark.parametrize("second_hop", [False, True])
def test_collection_search_runs_the_pipeline(tmp_path, tiny_cross_encoder, second_hop):
    rng = random.Random(5)
    col = Collection.create(tmp_path / "col", retriever="bm25")
    col.add([random_document(rng, f"d{i}") for i in range(40)])
    col.close()
    path = tmp_path / "pipeline.yaml"
    hop = f"hop_model: {tiny_cross_encoder}\nhop_weight: 1\n" if second_hop else ""
    path.write_text(f"rerank_model: {tiny_cross_encoder}\nrerank_top_n: 10\n"
                    f"final_fusion: convex\nfinal_weight: 0.6\nk: 10\n{hop}")
    config = ServeConfig(collection=str(tmp_path / "col"), pipeline=str(path), api_key=API_KEY)
    reference = Collection.open(tmp_path / "col")
    settings = dataclasses.replace(load_pipeline(path), k=8)
    reranker = Reranker.load(tiny_cross_encoder)
    expected = reference.search_pipeline("cell protein", settings, reranker,
                                         hop_reranker=reranker if second_hop else None)
    if second_hop:  # the hop changed the order the server must give
        without = dataclasses.replace(settings, hop_model=None)
        assert ([h.id for h in reference.search_pipeline("cell protein", without, reranker)]
                != [h.id for h in expected])
    plain = reference.search("cell protein", k=8)
    with running(create_app(config)) as url, httpx.Client(base_url=url, headers=AUTH,
                                                         timeout=60) as client:
        got = client.post("/search", json={"query": "cell protein", "k": 8}).json()["results"]
        assert [h["id"] for h in got] == [h.id for h in expected]
        assert [h["score"] for h in got] == pytest.approx([h.score for h in expected], rel=1e-5)
        assert [(h["id"], h["score"]) for h in got] != [(h.id, h.score) for h in plain]
        too_many = client.post("/search", json={"query": "cell", "k": 11})
        assert too_many.status_code == 422
        assert too_many.json()["detail"][0]["loc"] == ["body", "k"]


def test_a_pipeline_needs_a_collection(tmp_path):
    path = tmp_path / "serve.yaml"
    path.write_text("rerankers: {a: m}\npipeline: p.yaml\n")
    with pytest.raises(DataFormatError) as caught:
        ServeConfig.from_yaml(path)
    assert (caught.value.line, caught.value.field) == (2, "pipeline")
