"""/metrics: counts, latency and batch histograms in the Prometheus text format, read back with
prometheus_client's own parser and checked against hand counts."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from ragsift.serve.app import create_app  # noqa: E402
from ragsift.serve.config import ServeConfig  # noqa: E402
from ragsift.serve.metrics import LATENCY_BUCKETS, Metrics  # noqa: E402
from tests.serve.conftest import AUTH  # noqa: E402


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``(sample name, sorted labels) -> value`` for every sample of an exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def test_histograms_and_counters_match_hand_counts():
    metrics = Metrics()
    for seconds in (0.003, 0.02, 0.3):
        metrics.observe_request("/rerank", 200, seconds)
    metrics.observe_request("/rerank", 413, 0.001)
    observe = metrics.batch_observer("reranker:tiny")
    observe(3, 100)
    observe(1, 20)
    got = samples(metrics.render())
    assert got[key("ragsift_requests_total", endpoint="/rerank", status="200")] == 3
    assert got[key("ragsift_requests_total", endpoint="/rerank", status="413")] == 1
    # latencies 0.001, 0.003, 0.02, 0.3: at most 0.005 -> 2, 0.01 -> 2, 0.025 -> 3, 0.5 -> 4
    expected = {0.005: 2, 0.01: 2, 0.025: 3, 0.05: 3, 0.1: 3, 0.25: 3, 0.5: 4}
    for bound in LATENCY_BUCKETS:
        bucket = key("ragsift_request_seconds_bucket", endpoint="/rerank", le=str(bound))
        assert got[bucket] == expected.get(bound, 4), bound
    assert got[key("ragsift_request_seconds_count", endpoint="/rerank")] == 4
    assert got[key("ragsift_request_seconds_sum", endpoint="/rerank")] == pytest.approx(0.324)
    # batches of 3 and 1 requests
    for bound, count in (("1.0", 1), ("2.0", 1), ("4.0", 2), ("+Inf", 2)):
        assert got[key("ragsift_batch_size_bucket", model="reranker:tiny", le=bound)] == count
    assert got[key("ragsift_batch_size_sum", model="reranker:tiny")] == 4
    assert got[key("ragsift_batch_tokens_total", model="reranker:tiny")] == 120
    fresh = samples(Metrics().render())  # a registry per app: nothing carried over
    assert not any(name == "ragsift_requests_total" for name, _ in fresh)


def test_the_app_counts_routes_by_path_and_the_rest_as_other(index_dir):
    config = ServeConfig.from_dict({"index": {"path": str(index_dir)}, "api_key": "test-key"})
    with TestClient(create_app(config)) as client:
        assert client.post("/search", json={"query": "wolves", "k": 2},
                           headers=AUTH).status_code == 200
        assert client.post("/search", json={"query": "wolves"}).status_code == 401
        assert client.get("/no/such/path").status_code == 404
        response = client.get("/metrics")  # no key needed
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    assert got[key("ragsift_requests_total", endpoint="/search", status="200")] == 1
    assert got[key("ragsift_requests_total", endpoint="/search", status="401")] == 1
    assert got[key("ragsift_requests_total", endpoint="other", status="404")] == 1
    assert got[key("ragsift_batch_size_count", model="index:index")] == 1
