"""The server's Prometheus metrics, kept with prometheus_client in a registry of their own.

| metric | type | labels | what |
|---|---|---|---|
| ``ragsift_requests_total`` | counter | endpoint, status | HTTP requests |
| ``ragsift_request_seconds`` | histogram | endpoint | request latency, seconds |
| ``ragsift_batch_size`` | histogram | model | requests one micro-batch (one model call) served |
| ``ragsift_batch_tokens_total`` | counter | model | tokens run through each model |

A histogram exposes, per label value, ``_bucket{le="b"}`` (observations <= b, cumulative),
``_sum`` and ``_count``; a registry per app keeps two apps in one process apart.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
#: The media type of :meth:`Metrics.render`'s text.
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Request counts and latency by endpoint, micro-batch sizes and tokens by model.

    Thread-safe (batches are observed from worker threads).

    Example:
        >>> metrics = Metrics()
        >>> metrics.observe_request("/rerank", 200, 0.02)
        >>> 'ragsift_requests_total{endpoint="/rerank",status="200"} 1.0' in metrics.render()
        True
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("ragsift_requests", "HTTP requests by endpoint and status.",
                                ("endpoint", "status"), registry=self.registry)
        self.latency = Histogram("ragsift_request_seconds", "Request latency in seconds.",
                                 ("endpoint",), buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("ragsift_batch_size",
                                    "Requests served by one micro-batch (one model call).",
                                    ("model",), buckets=BATCH_BUCKETS, registry=self.registry)
        self.batch_tokens = Counter("ragsift_batch_tokens", "Tokens run through each model.",
                                    ("model",), registry=self.registry)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one request to ``endpoint`` that answered ``status`` after ``seconds``."""
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def batch_observer(self, model: str) -> Callable[[int, int], None]:
        """The ``on_batch(items, tokens)`` callback of ``model``'s batcher."""
        size, tokens_run = self.batch_size.labels(model), self.batch_tokens.labels(model)

        def observe(items: int, tokens: int) -> None:
            size.observe(items)
            tokens_run.inc(tokens)

        return observe

    def render(self) -> str:
        """Every metric in the Prometheus text exposition format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry).decode("utf-8")
