"""Bad requests cannot hurt good ones (issue 27): a request the model fails on fails alone,
non-JSON values (lone surrogates, NaN) are 422s naming the field, oversized bodies are refused
before parsing with bounded memory, and a dead model worker answers 503 instead of hanging."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from ragsift.serve.app import create_app  # noqa: E402
from ragsift.serve.config import ServeConfig  # noqa: E402
from tests.conftest import write_beir  # noqa: E402
from tests.serve.conftest import running  # noqa: E402

BODY_LIMIT = 65536
JSON = {"content-type": "application/json"}
GOOD = {
    "/search": {"query": "cell biology", "k": 3},
    "/v2/rerank": {"model": "tiny", "query": "cell biology", "documents": ["cells", "wolves"]},
    "/rerank": {"query": "cell biology", "texts": ["cells", "wolves", "paris"]},
    "/v1/embeddings": {"model": "tiny-embed", "input": ["cells", "wolves"]},
}
# raw JSON bodies that JSON parsers accept but that no model or response can carry
BAD = {
    "/search": ['{"query": "x\\ud800y", "k": 3}', '{"query": "x", "k": NaN}'],
    "/v2/rerank": ['{"model": "tiny", "query": "q", "documents": ["a", "\\udfff"]}',
                   '{"model": "tiny", "query": "q", "documents": ["a"], "top_n": Infinity}'],
    "/rerank": ['{"query": "\\ud83d", "texts": ["a"]}', '{"query": "q", "texts": [NaN]}'],
    "/v1/embeddings": ['{"model": "tiny-embed", "input": "\\udc00"}',
                       '{"model": "tiny-embed", "input": "a", "dimensions": -Infinity}'],
}
BAD_FIELDS = {"/search": ["query", "k"], "/v2/rerank": ["documents", "top_n"],
              "/rerank": ["query", "texts"], "/v1/embeddings": ["input", "dimensions"]}


@pytest.fixture(scope="module")
def config(tmp_path_factory, tiny_model_dir, tiny_cross_encoder) -> ServeConfig:
    """The tiny reranker and embedder, and a dense index that shares the embedder."""
    from ragsift.data.beir import load_corpus
    from ragsift.models.bi_encoder import BiEncoder
    from ragsift.retrieve import DenseRetriever

    folder = tmp_path_factory.mktemp("dense")
    dense = DenseRetriever(BiEncoder.from_pretrained(tiny_model_dir, device="cpu"),
                           cache_dir=False)
    dense.index(load_corpus(write_beir(folder / "beir")))
    dense.save(folder / "dense")
    return ServeConfig.from_dict({
        "rerankers": {"tiny": str(tiny_cross_encoder)},
        "embedders": {"tiny-embed": {"model": str(tiny_model_dir),
                                     "options": {"device": "cpu"}}},
        "index": {"path": str(folder / "dense"), "embedder": "tiny-embed"},
        "limits": {"max_wait_ms": 50, "max_body_bytes": BODY_LIMIT},
    })


@pytest.fixture(scope="module")
def app(config) -> Any:
    return create_app(config)


@pytest.fixture(scope="module")
def url(app) -> Iterator[str]:
    with running(app) as base_url:
        yield base_url


def post(url: str, path: str, body: dict | str | bytes) -> httpx.Response:
    if isinstance(body, dict):
        return httpx.post(url + path, json=body, timeout=60)
    return httpx.post(url + path, content=body, headers=JSON, timeout=60)


def concurrently(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))

    def call(fn: Callable[[], Any]) -> Any:
        barrier.wait()
        return fn()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(call, calls))


def scores(path: str, answer: Any) -> list[float]:
    """The numbers of a successful answer of ``path``, in a fixed order."""
    if path == "/search":
        return [hit["score"] for hit in answer["results"]]
    if path == "/v2/rerank":
        return [r["relevance_score"] for r in sorted(answer["results"], key=lambda r: r["index"])]
    if path == "/rerank":
        return [r["score"] for r in sorted(answer, key=lambda r: r["index"])]
    return [x for d in answer["data"] for x in d["embedding"]]


def fields_named(response: httpx.Response) -> list[str]:
    """The body fields a 422 names."""
    assert response.status_code == 422, response.text
    return [error["loc"][1] for error in response.json()["detail"]]


def rss_bytes() -> int:
    """This process's resident memory (the server runs in it)."""
    status = Path("/proc/self/status")
    if not status.is_file():
        pytest.skip("needs /proc/self/status")
    line = next(x for x in status.read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


@pytest.mark.parametrize("path", list(GOOD))
def test_a_bad_request_does_not_fail_the_good_ones_batched_with_it(url, path):
    alone = scores(path, post(url, path, GOOD[path]).json())
    bodies: list[dict | str] = [GOOD[path]] * 7
    bodies.insert(3, BAD[path][0])
    bodies.append(BAD[path][1])
    responses = concurrently([lambda b=b: post(url, path, b) for b in bodies])
    for body, response in zip(bodies, responses):
        if isinstance(body, dict):
            assert response.status_code == 200, response.text
            assert np.allclose(scores(path, response.json()), alone, atol=1e-5)
    assert set(fields_named(responses[3])) == {BAD_FIELDS[path][0]}
    assert set(fields_named(responses[-1])) == {BAD_FIELDS[path][1]}


@pytest.mark.parametrize("path, body, field", [
    ("/search", '{"query": "a", "k": 3, "filter": {"topic": NaN}}', "filter"),
    ("/search", '{"query": "a", "filter": {"\\ud800": 1}}', "filter"),
    ("/search", '{"query": "a", "k": 1e400}', "k"),
    ("/v2/rerank", '{"model": "\\ud800", "query": "q", "documents": ["a"]}', "model"),
    ("/v2/rerank", '{"model": "tiny", "query": "q", "documents": [{"text": "\\ud800"}]}',
     "documents"),
    ("/v2/rerank", '{"model": "tiny", "query": "q", "documents": [], "max_tokens_per_doc": NaN}',
     "max_tokens_per_doc"),
    ("/rerank", '{"query": "q", "texts": ["a"], "raw_scores": NaN}', "raw_scores"),
    ("/v1/embeddings", '{"model": "tiny-embed", "input": ["a", "\\ud800"]}', "input"),
    ("/v1/embeddings", '{"model": "tiny-embed", "input": "a", "user": "\\udfff"}', "user"),
    ("/search", "[" * 5000 + "]" * 5000, None),
    ("/search", b'{"query": "\xff"}', None),
])
def test_bodies_that_are_not_plain_json_are_422s_naming_the_field(url, path, body, field):
    response = post(url, path, body)
    if field is None:
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body"]
    else:
        assert set(fields_named(response)) == {field}


def test_a_request_the_model_fails_on_fails_alone(app, url):
    """The model raises on one query of a batch: only that request fails (500 naming the
    model); the others of its batch are served."""
    batcher = app.state.services.index.batcher
    original, sizes = batcher.run_batch, []

    def run_batch(items: list[tuple[str, int]]) -> list:
        sizes.append(len(items))
        if any(query == "poison" for query, _ in items):
            raise RuntimeError("the model cannot take this query")
        return original(items)

    bodies = [GOOD["/search"]] * 7
    bodies.insert(4, {"query": "poison", "k": 3})
    batcher.run_batch = run_batch
    try:
        responses = concurrently([lambda b=b: post(url, "/search", b) for b in bodies])
    finally:
        batcher.run_batch = original
    assert [r.status_code for r in responses] == [200] * 4 + [500] + [200] * 3
    assert "index:dense" in responses[4].json()["detail"]
    assert max(sizes) > 1 and 1 in sizes  # batched together, then the poison alone


def test_oversized_bodies_are_refused_before_parsing_in_bounded_memory(url):
    """200 bodies 16 times the limit, half with a Content-Length and half chunked, all 413
    with a JSON detail, while good requests run beside them; memory stays put."""
    big = b'{"query": "q", "texts": ["' + b"word " * (BODY_LIMIT * 16 // 5) + b'"]}'

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 16384):
            yield big[start:start + 16384]

    def oversized(i: int) -> tuple[int, str]:
        response = client.post(url + "/rerank", content=big if i % 2 else chunks(),
                               headers=JSON)
        return response.status_code, response.json()["detail"]

    with ThreadPoolExecutor(4) as pool, httpx.Client(timeout=60) as client:
        list(pool.map(oversized, range(20)))  # warm up the threads' allocator arenas and
        list(pool.map(post, [url] * 4, ["/rerank"] * 4, [GOOD["/rerank"]] * 4))  # the model
        before = rss_bytes()
        refused, good = [], []
        for _ in range(4):
            good += [pool.submit(post, url, "/rerank", GOOD["/rerank"]) for _ in range(2)]
            refused += pool.map(oversized, range(50))
        good = [future.result().status_code for future in good]
    grown = rss_bytes() - before
    assert len(refused) == 200 and {status for status, _ in refused} == {413}
    assert all("limits.max_body_bytes" in detail for _, detail in refused)
    assert good == [200] * 8
    assert grown < 32 * 2**20, f"RSS grew {grown / 2**20:.0f} MiB over 200 oversized requests"


def test_a_dead_worker_answers_503_and_health_says_so(config):
    from fastapi.testclient import TestClient

    with TestClient(create_app(config)) as client:
        batcher = client.app.state.services.rerankers["tiny"].batcher

        def die(items: list) -> list:
            raise SystemExit("killed")

        batcher.run_batch = die
        first = client.post("/rerank", json=GOOD["/rerank"])
        later = client.post("/v2/rerank", json=GOOD["/v2/rerank"])
        health = client.get("/health")
        embedded = client.post("/v1/embeddings", json=GOOD["/v1/embeddings"])
    assert (first.status_code, later.status_code) == (503, 503)
    assert "reranker:tiny" in later.json()["detail"]
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    errors = {m["name"]: m.get("error") for m in health.json()["models"]}
    assert "SystemExit" in errors["tiny"] and errors["tiny-embed"] is None
    assert embedded.status_code == 200  # the other models still serve


def test_text_the_tokenizer_cannot_read_is_a_422_naming_the_fields(app, url):
    served = app.state.services.rerankers["tiny"]
    tokenizer = served.tokenizer

    class Unreadable:
        async def run(self, *_: Any) -> Any:
            raise TypeError("TextEncodeInput must be Union[TextInputSequence, ...]")

    served.tokenizer = Unreadable()
    try:
        response = post(url, "/rerank", GOOD["/rerank"])
    finally:
        served.tokenizer = tokenizer
    assert set(fields_named(response)) == {"query", "texts"}
    assert "tokenizer cannot read" in response.text


@pytest.mark.parametrize("path", ["/v2/rerank", "/rerank"])
def test_a_query_too_long_for_the_reranker_is_a_422_and_fails_alone(url, path):
    """The reranker refuses a query that leaves no room for a passage (a UsageError raised in
    the batch): that request answers 422 with the reason, the others of its batch 200."""
    long_query = " ".join(["wolves"] * 2000)
    bad = dict(GOOD[path], query=long_query)
    alone = scores(path, post(url, path, GOOD[path]).json())
    bodies = [GOOD[path]] * 3 + [bad] + [GOOD[path]] * 3
    responses = concurrently([lambda b=b: post(url, path, b) for b in bodies])
    assert [r.status_code for r in responses] == [200] * 3 + [422] + [200] * 3, \
        [r.text[:200] for r in responses]
    assert "query too long" in responses[3].json()["detail"][0]["msg"]
    for response in responses[:3] + responses[4:]:
        assert np.allclose(scores(path, response.json()), alone, atol=1e-5)
