"""``ragsift serve`` end to end: a real uvicorn server on loopback, driven by the real Cohere and
OpenAI clients and by httpx, checked against the library's own scores and vectors."""

from __future__ import annotations

import argparse
import base64
import json
import threading
from collections.abc import Iterator

import numpy as np
import pytest

pytest.importorskip("fastapi")
cohere = pytest.importorskip("cohere")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from ragsift.cli import serve as serve_cli  # noqa: E402
from ragsift.errors import DataFormatError, UsageError  # noqa: E402
from ragsift.serve.app import create_app  # noqa: E402
from ragsift.serve.config import ServeConfig  # noqa: E402
from tests.conftest import DOCS, write_beir  # noqa: E402
from tests.serve.conftest import API_KEY, AUTH, TOPICS, running  # noqa: E402

TEXTS = [text for _, text in DOCS.values()]
QUERY = "which animals sleep a lot"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve_cli.register(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])


@pytest.fixture(scope="module")
def url(tmp_path_factory, serve_config) -> Iterator[str]:
    """The server started from a YAML config through the CLI's parser, on a free port."""
    config_file = tmp_path_factory.mktemp("config") / "serve.yaml"
    config_file.write_text(json.dumps(serve_config))  # JSON is YAML
    with running(create_app(serve_cli.config_from_args(parse("--config", str(config_file))))) \
            as base_url:
        yield base_url


@pytest.fixture(scope="module")
def reranker(tiny_cross_encoder):
    from ragsift.rerank import Reranker

    return Reranker.load(tiny_cross_encoder)


@pytest.fixture(scope="module")
def encoder(tiny_model_dir):
    from ragsift.models.bi_encoder import BiEncoder

    return BiEncoder.from_pretrained(tiny_model_dir, device="cpu")


def post(url: str, path: str, body: dict, headers: dict | None = None) -> httpx.Response:
    return httpx.post(url + path, json=body, headers=AUTH if headers is None else headers,
                      timeout=30)


def tei(url: str, query: str = QUERY, texts: list[str] = TEXTS, **options) -> list[dict]:
    response = post(url, "/rerank", {"query": query, "texts": texts, **options})
    assert response.status_code == 200, response.text
    return response.json()


def batches(url: str) -> int:
    """Micro-batches the reranker has run, read from /metrics."""
    text = httpx.get(url + "/metrics").text
    prefix = 'ragsift_batch_size_count{model="reranker:tiny"} '
    return int(float(next(line for line in text.splitlines() if line.startswith(prefix))
                     .removeprefix(prefix)))  # prometheus_client writes counts as floats


def test_cohere_client_rerank(url, reranker):
    client = cohere.ClientV2(api_key=API_KEY, base_url=url)
    response = client.rerank(model="tiny", query=QUERY, documents=TEXTS, top_n=3,
                             request_options={"additional_body_parameters":
                                              {"return_documents": True}})
    expected = reranker.score([(QUERY, t) for t in TEXTS], calibrated=True)
    got = [(r.index, r.relevance_score) for r in response.results]
    assert len(got) == 3
    for index, score in got:
        assert abs(score - expected[index]) < 1e-5
    assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
    left_out = np.delete(expected, [i for i, _ in got])
    assert min(s for _, s in got) >= left_out.max() - 1e-5
    assert [r.document["text"] for r in response.results] == [TEXTS[i] for i, _ in got]
    assert response.meta.api_version.version == "2"


def test_cohere_document_objects(url):
    body = {"model": "tiny", "query": QUERY, "documents": [{"text": t} for t in TEXTS[:3]]}
    response = post(url, "/v2/rerank", body).json()
    assert sorted(r["index"] for r in response["results"]) == [0, 1, 2]
    assert all("document" not in r for r in response["results"])


def test_openai_client_embeddings(url, encoder):
    client = openai.OpenAI(base_url=url + "/v1", api_key=API_KEY)
    expected = encoder.encode(TEXTS)
    floats = client.embeddings.create(model="tiny-embed", input=TEXTS, encoding_format="float")
    assert np.allclose([d.embedding for d in floats.data], expected, atol=1e-5)
    assert [d.index for d in floats.data] == list(range(len(TEXTS)))
    assert floats.usage.prompt_tokens == sum(
        len(ids) for ids in encoder.tokenizer(TEXTS)["input_ids"])

    cut = expected[:, :16] / np.linalg.norm(expected[:, :16], axis=1, keepdims=True)
    decoded = client.embeddings.create(model="tiny-embed", input=TEXTS, dimensions=16)
    assert np.allclose([d.embedding for d in decoded.data], cut, atol=1e-5)  # client decodes
    raw = client.embeddings.create(model="tiny-embed", input=TEXTS[0], dimensions=16,
                                   encoding_format="base64")
    vector = np.frombuffer(base64.b64decode(raw.data[0].embedding), dtype="<f4")
    assert np.allclose(vector, cut[0], atol=1e-5)


def test_tei_rerank_raw_and_probabilities(url, reranker):
    pairs = [(QUERY, t) for t in TEXTS]
    for raw_scores, expected in ((True, reranker.score(pairs)),
                                 (False, reranker.score(pairs, calibrated=True))):
        ranks = tei(url, raw_scores=raw_scores, return_text=True)
        assert [r["score"] for r in ranks] == sorted((r["score"] for r in ranks), reverse=True)
        for r in ranks:
            assert abs(r["score"] - expected[r["index"]]) < 1e-5
            assert r["text"] == TEXTS[r["index"]]
    long_text = " ".join(["wolves"] * 300)  # 300 tokens, over the model's 128
    assert len(tei(url, texts=[long_text], truncate=True)) == 1


def test_search_bm25_with_text_and_filter(url, index_dir):
    from ragsift.retrieve import Retriever

    expected = Retriever.load(index_dir).search({"q": "where do wolves hunt"}, k=3)["q"]
    hits = post(url, "/search", {"query": "where do wolves hunt", "k": 3}).json()["results"]
    assert [h["id"] for h in hits] == list(expected)
    assert [h["score"] for h in hits] == pytest.approx(list(expected.values()))
    assert hits[0]["text"] == DOCS[hits[0]["id"]][1]
    filtered = post(url, "/search", {"query": "programming language readability wolves",
                                     "k": 5, "filter": {"topic": "animals"}}).json()["results"]
    assert filtered and all(TOPICS[h["id"]] == "animals" for h in filtered)


def test_search_dense_shares_the_embedder(tmp_path, tiny_model_dir):
    from fastapi.testclient import TestClient

    from ragsift.data.beir import load_corpus
    from ragsift.models.bi_encoder import BiEncoder
    from ragsift.retrieve import DenseRetriever

    beir = write_beir(tmp_path / "beir")
    dense = DenseRetriever(BiEncoder.from_pretrained(tiny_model_dir, device="cpu"),
                           cache_dir=False)
    dense.index(load_corpus(beir))
    dense.save(tmp_path / "dense")
    config = ServeConfig.from_dict({
        "embedders": {"e": {"model": str(tiny_model_dir), "options": {"device": "cpu"}}},
        "index": {"path": str(tmp_path / "dense"), "embedder": "e"},
    })
    with TestClient(create_app(config)) as client:
        app_services = client.app.state.services
        assert app_services.index.model.encoder is app_services.embedders["e"].model
        hits = client.post("/search", json={"query": "tower in paris", "k": 4}).json()
        expected = dense.search({"q": "tower in paris"}, k=4)["q"]
        assert [h["id"] for h in hits["results"]] == list(expected)
        assert all("text" not in h for h in hits["results"])
        refused = client.post("/search", json={"query": "x", "filter": {"topic": "animals"}})
        assert refused.status_code == 422 and "filter" in refused.text
        assert client.get("/health").json()["models"] == [
            {"name": "e", "type": "embedder"}, {"name": "dense", "type": "index"}]


def test_errors_leave_the_server_up(url):
    cases = [
        (413, "/rerank", {"query": QUERY, "texts": ["a"] * 21}, AUTH, "21 documents"),
        (413, "/rerank", {"query": QUERY, "texts": [" ".join(["word"] * 400)] * 6}, AUTH,
         "tokens"),
        (413, "/v1/embeddings", {"model": "tiny-embed", "input": ["a"] * 21}, AUTH, "documents"),
        (422, "/rerank", {"texts": ["a"]}, AUTH, "query"),
        (422, "/v2/rerank", {"model": "tiny", "query": "q", "documents": "a", "top_n": 0},
         AUTH, "top_n"),
        (422, "/v1/embeddings", {"model": "tiny-embed", "input": "a", "dimensions": 999},
         AUTH, "dimensions"),
        (422, "/v1/embeddings", {"model": "tiny-embed", "input": [1, 2]}, AUTH, "input"),
        (404, "/v2/rerank", {"model": "nope", "query": "q", "documents": ["a"]}, AUTH, "nope"),
        (404, "/v1/embeddings", {"model": "/etc/passwd", "input": "a"}, AUTH, "embedder"),
        (401, "/rerank", {"query": QUERY, "texts": ["a"]}, {}, "API key"),
        (401, "/search", {"query": QUERY}, {"Authorization": "Bearer wrong"}, "API key"),
    ]
    for status, path, body, headers, named in cases:
        response = post(url, path, body, headers)
        assert response.status_code == status, (path, body, response.text)
        assert named in response.text
        assert len(tei(url, texts=TEXTS[:2])) == 2  # still serving
    metrics = httpx.get(url + "/metrics").text
    assert 'ragsift_requests_total{endpoint="/rerank",status="413"} 2' in metrics
    assert 'ragsift_request_seconds_count{endpoint="/rerank"}' in metrics


def test_concurrent_requests_share_batches(url):
    queries = [f"query number {i} about {TEXTS[i % len(TEXTS)][:20]}" for i in range(16)]
    alone = [tei(url, q, raw_scores=True) for q in queries]
    before = batches(url)
    together: list = [None] * len(queries)
    barrier = threading.Barrier(len(queries))

    def send(i: int) -> None:
        barrier.wait()
        together[i] = tei(url, queries[i], raw_scores=True)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(queries))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert batches(url) - before < len(queries)
    for solo, shared in zip(alone, together):
        shared_scores = {r["index"]: r["score"] for r in shared}
        assert np.allclose([r["score"] for r in solo],
                           [shared_scores[r["index"]] for r in solo], atol=1e-5)


def test_config_rejects_unknown_keys_and_reads_env(tmp_path, monkeypatch):
    (tmp_path / "bad.yaml").write_text("limits:\n  max_docs: 3\n")
    with pytest.raises(DataFormatError, match="limits.max_docs"):
        ServeConfig.from_yaml(tmp_path / "bad.yaml")
    with pytest.raises(DataFormatError, match="rerankers.r.modle"):
        ServeConfig.from_dict({"rerankers": {"r": {"modle": "x"}}})
    with pytest.raises(DataFormatError, match="index.embedder"):
        ServeConfig.from_dict({"index": {"path": "i", "embedder": "missing"}})
    with pytest.raises(DataFormatError, match="max_wait_ms"):
        ServeConfig.from_dict({"limits": {"max_wait_ms": -1}})
    monkeypatch.setenv("RAGSIFT_API_KEY", "from-env")
    assert ServeConfig().api_key == "from-env"
    assert ServeConfig.from_dict({"rerankers": None, "api_key": None}).api_key == "from-env"
    assert ServeConfig.from_dict({"api_key": "from-file"}).api_key == "from-file"


def test_cli_flags_complete_the_config(tmp_path, tiny_cross_encoder):
    (tmp_path / "serve.yaml").write_text("index: {path: old, corpus: c.jsonl}\n"
                                         "limits: {max_documents: 5}\n")
    config = serve_cli.config_from_args(parse(
        "--config", str(tmp_path / "serve.yaml"), "--reranker", str(tiny_cross_encoder),
        "--embedder", "minilm-l6", "--index", "new"))
    assert config.rerankers["one-label"].model == str(tiny_cross_encoder)
    assert config.embedders["minilm-l6"].model == "minilm-l6"
    assert (config.index.path, config.index.corpus) == ("new", "c.jsonl")
    assert config.limits.max_documents == 5
    with pytest.raises(UsageError, match="nothing to serve"):
        serve_cli.config_from_args(parse())
