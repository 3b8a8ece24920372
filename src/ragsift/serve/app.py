"""The HTTP server: reranking, embeddings and search behind Cohere-, TEI- and OpenAI-shaped APIs.

:func:`create_app` loads every model and the index named by a :class:`ServeConfig` (only
there: no request can name a path) and returns a FastAPI app with:

| endpoint             | API                | does                                            |
|----------------------|--------------------|-------------------------------------------------|
| ``POST /v2/rerank``  | Cohere v2 rerank   | probabilities of relevance, best first          |
| ``POST /rerank``     | TEI rerank         | probabilities, or raw scores with raw_scores    |
| ``POST /v1/embeddings`` | OpenAI embeddings | float or base64 vectors, MRL ``dimensions``    |
| ``POST /search``     | ragsift            | top k of the index, optional metadata filter    |
| ``GET /health``      |                    | status and loaded models                        |
| ``GET /metrics``     | Prometheus text    | requests, latency, micro-batch sizes            |

Each model runs in its own :class:`MicroBatcher` thread, so concurrent requests share forward
passes and the event loop never waits on a model; a request that makes its model fail fails
alone. Errors: 401 (missing or wrong Bearer key when one is configured), 404 (unknown model),
413 (a body over ``max_body_bytes``, refused before it is parsed, or more documents or tokens
than the limits), 422 (a malformed body; the detail names the field), 500 (the model failed on
this request), 503 (a model's worker has stopped; ``/health`` says 503 too).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hmac
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragsift.errors import RagsiftError
from ragsift.models.bi_encoder import BiEncoder
from ragsift.rerank import Reranker
from ragsift.retrieve.base import Retriever, read_manifest
from ragsift.serve.batcher import MicroBatcher, WorkerStopped
from ragsift.serve.config import Limits, ServeConfig
from ragsift.serve.guards import BodyLimit, http_error, validation_error
from ragsift.serve.loading import load_reranker
from ragsift.serve.schemas import (
    CohereRerankRequest,
    CohereRerankResponse,
    CohereRerankResult,
    Embedding,
    EmbeddingRequest,
    EmbeddingResponse,
    Health,
    ModelInfo,
    RerankDocument,
    SearchHit,
    SearchRequest,
    SearchResponse,
    TeiRank,
    TeiRerankRequest,
    Usage,
)
from ragsift.types import Document, ranked

logger = logging.getLogger(__name__)

Model = TypeVar("Model")
Result = TypeVar("Result")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
SEARCH_BATCH = 64  # queries per search batch: a search job costs 1 of this budget
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]
COHERE_META = {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}


# ---- metrics --------------------------------------------------------------------------------
def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Histogram:
    """A Prometheus histogram with one label: cumulative bucket counts, sum and count."""

    def __init__(self, name: str, help_text: str, label: str, buckets: Sequence[float]) -> None:
        self.name, self.help_text, self.label = name, help_text, label
        self.buckets = tuple(buckets)
        self.counts: dict[str, list[int]] = {}
        self.sums: Counter[str] = Counter()

    def observe(self, label: str, value: float) -> None:
        counts = self.counts.setdefault(label, [0] * (len(self.buckets) + 1))
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1
        counts[-1] += 1
        self.sums[label] += value

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} histogram"]
        for label, counts in sorted(self.counts.items()):
            key = f'{self.label}="{_label(label)}"'
            for bound, count in zip((*self.buckets, "+Inf"), counts):
                lines.append(f'{self.name}_bucket{{{key},le="{bound}"}} {count}')
            lines.append(f"{self.name}_sum{{{key}}} {self.sums[label]}")
            lines.append(f"{self.name}_count{{{key}}} {counts[-1]}")
        return lines


class Metrics:
    """Request counts by endpoint and status, request latency and micro-batch sizes, rendered in
    the Prometheus text format. Thread-safe (batches are observed from worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()
        self.latency = Histogram("ragsift_request_seconds", "Request latency in seconds.",
                                 "endpoint", LATENCY_BUCKETS)
        self.batch_size = Histogram("ragsift_batch_size",
                                    "Requests served by one micro-batch (one model call).",
                                    "model", BATCH_BUCKETS)
        self.batch_tokens: Counter[str] = Counter()

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[endpoint, status] += 1
            self.latency.observe(endpoint, seconds)

    def batch_observer(self, model: str) -> Callable[[int, int], None]:
        """The ``on_batch`` callback of ``model``'s batcher."""

        def observe(items: int, tokens: int) -> None:
            with self._lock:
                self.batch_size.observe(model, items)
                self.batch_tokens[model] += tokens

        return observe

    def render(self) -> str:
        with self._lock:
            lines = ["# HELP ragsift_requests_total HTTP requests by endpoint and status.",
                     "# TYPE ragsift_requests_total counter"]
            lines += [f'ragsift_requests_total{{endpoint="{_label(e)}",status="{s}"}} {n}'
                      for (e, s), n in sorted(self.requests.items())]
            lines += self.latency.render() + self.batch_size.render()
            lines += ["# HELP ragsift_batch_tokens_total Tokens run through each model.",
                      "# TYPE ragsift_batch_tokens_total counter"]
            lines += [f'ragsift_batch_tokens_total{{model="{_label(m)}"}} {n}'
                      for m, n in sorted(self.batch_tokens.items())]
        return "\n".join(lines) + "\n"


# ---- loaded models ----------------------------------------------------------------------------
class RequestTokenizer:
    """A private copy of a model's tokenizer for measuring and cutting requests.

    A fast tokenizer must not run in two threads while one of them changes its truncation
    settings, which model calls do; the model's own tokenizer stays with the model's lock.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = copy.deepcopy(tokenizer)
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., Result], *args: Any) -> Result:
        """``fn(tokenizer, *args)`` in a worker thread, one call at a time."""

        def call() -> Result:
            with self._lock:
                return fn(self._tokenizer, *args)

        return await asyncio.to_thread(call)


@dataclass
class Served(Generic[Model]):
    """A loaded model, the lock held while it runs (a dense index shares its embedder's), the
    batcher that runs it and, for rerankers and embedders, a tokenizer to measure requests."""

    name: str
    model: Model
    lock: threading.Lock
    batcher: MicroBatcher
    tokenizer: RequestTokenizer | None = None


@dataclass
class Services:
    """Everything the endpoints use, loaded once from the config."""

    limits: Limits
    rerankers: dict[str, Served[Reranker]] = field(default_factory=dict)
    embedders: dict[str, Served[BiEncoder]] = field(default_factory=dict)
    index: Served[Retriever] | None = None
    corpus: dict[str, Document] | None = None

    def served(self) -> list[tuple[str, Served]]:
        """Every loaded model with its type: ``reranker``, ``embedder`` or ``index``."""
        return ([("reranker", s) for s in self.rerankers.values()]
                + [("embedder", s) for s in self.embedders.values()]
                + ([("index", self.index)] if self.index else []))

    def batchers(self) -> list[MicroBatcher]:
        return [served.batcher for _, served in self.served()]


def exclusive(lock: threading.Lock, fn: Callable[..., Result]) -> Callable[..., Result]:
    """``fn`` called with ``lock`` held."""

    def call(*args: Any) -> Result:
        with lock:
            return fn(*args)

    return call


def per_request(fn: Callable[[list[Any]], np.ndarray]) -> Callable[[list[list[Any]]], list]:
    """Turn a function over one flat list into a batch function over per-request lists: one
    call on the concatenation, its rows split back by request."""

    def run(items: list[list[Any]]) -> list[np.ndarray]:
        out = fn([x for item in items for x in item])
        return np.split(out, np.cumsum([len(item) for item in items])[:-1])

    return run


def search_batch(retriever: Retriever) -> Callable[[list[tuple[str, int]]], list]:
    """A batch function over ``(query, depth)`` items: one ``search`` call for all queries,
    each cut to its depth; returns ``[(doc_id, score), ...]`` best first per item."""

    def run(items: list[tuple[str, int]]) -> list[list[tuple[str, float]]]:
        result = retriever.search({str(i): q for i, (q, _) in enumerate(items)},
                                  k=max(depth for _, depth in items))
        return [ranked(result[str(i)], depth) for i, (_, depth) in enumerate(items)]

    return run


def load_services(config: ServeConfig, metrics: Metrics) -> Services:
    """Load the models and index of ``config`` and start one batcher per model."""
    from ragsift.data.beir import load_corpus

    limits = config.limits
    services = Services(limits)

    def serve(kind: str, name: str, model: Any, batch_fn: Callable, max_tokens: int, *,
              tokenizer: Any = None, lock: threading.Lock | None = None) -> Served:
        lock = lock or threading.Lock()
        label = f"{kind}:{name}"
        batcher = MicroBatcher(label, exclusive(lock, batch_fn), max_batch_tokens=max_tokens,
                               max_wait_ms=limits.max_wait_ms,
                               on_batch=metrics.batch_observer(label))
        return Served(name, model, lock, batcher,
                      RequestTokenizer(tokenizer) if tokenizer is not None else None)

    for name, entry in config.rerankers.items():
        reranker = load_reranker(name, entry)
        services.rerankers[name] = serve("reranker", name, reranker,
                                         per_request(reranker.score), limits.max_batch_tokens,
                                         tokenizer=reranker.tokenizer)
    for name, entry in config.embedders.items():
        encoder = BiEncoder.from_pretrained(entry.model, **entry.options)
        services.embedders[name] = serve("embedder", name, encoder,
                                         per_request(encoder.encode), limits.max_batch_tokens,
                                         tokenizer=encoder.tokenizer)
    if config.index is not None:
        options, lock = {}, None
        if config.index.embedder:
            kind = read_manifest_kind(config.index.path)
            if kind != "dense":
                raise RagsiftError(f"index.embedder: {config.index.path} holds a {kind!r} "
                                   "index, which encodes no queries; remove index.embedder")
            shared = services.embedders[config.index.embedder]
            options["encoder"], lock = shared.model, shared.lock
        retriever = Retriever.load(config.index.path, **options)
        services.index = serve("index", Path(config.index.path).name, retriever,
                               search_batch(retriever), SEARCH_BATCH, lock=lock)
        if config.index.corpus:
            services.corpus = load_corpus(config.index.corpus)
    return services


def read_manifest_kind(path: str) -> str:
    """The retriever kind recorded in a saved index's manifest."""
    return str(read_manifest(Path(path))["retriever"])


# ---- request helpers --------------------------------------------------------------------------
def probabilities(reranker: Reranker, raw: np.ndarray) -> np.ndarray:
    """What ``reranker.score(pairs, calibrated=True)`` returns, from raw scores of the pairs."""
    if reranker.calibration is None:
        return reranker.uncalibrated_probability(raw)
    return reranker.calibration.apply(raw)


def fit_documents(tokenizer: Any, query: str, docs: list[str],
                  limit: int | None) -> tuple[list[str], int]:
    """``docs`` cut to ``limit`` tokens each (``None``: whole) and the tokens of all the
    (query, document) pairs the reranker will read."""
    if not docs:
        return [], 0
    query_tokens = len(tokenizer(query, add_special_tokens=False, verbose=False)["input_ids"])
    encoded = tokenizer(docs, add_special_tokens=False, return_offsets_mapping=limit is not None,
                        verbose=False)
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    cut, tokens = [], 0
    for i, (doc, ids) in enumerate(zip(docs, encoded["input_ids"])):
        if limit is not None and len(ids) > limit:
            doc = doc[: encoded["offset_mapping"][i][limit - 1][1]]
        cut.append(doc)
        tokens += query_tokens + min(len(ids), limit or len(ids)) + specials
    return cut, tokens


def count_tokens(tokenizer: Any, texts: list[str], max_length: int) -> int:
    """Tokens an encoder with ``max_length`` reads for ``texts`` (special tokens included)."""
    ids = tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]
    return sum(min(len(x), max_length) for x in ids)


def encode_vector(vector: np.ndarray, encoding: str) -> list[float] | str:
    """A vector as JSON floats, or base64 of its little-endian float32 bytes."""
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()


def invalid(fields: str | Sequence[str], message: str) -> HTTPException:
    """A 422 shaped like FastAPI's validation errors, naming the body field (or fields)."""
    names = [fields] if isinstance(fields, str) else fields
    return HTTPException(422, detail=[{"loc": ["body", name], "msg": message,
                                       "type": "value_error"} for name in names])


async def tokenize(served: Served, fields: Sequence[str], fn: Callable[..., Result],
                   *args: Any) -> Result:
    """``fn(tokenizer, *args)`` on ``served``'s request tokenizer; input it cannot read is a
    422 naming ``fields``."""
    try:
        return await served.tokenizer.run(fn, *args)
    except (TypeError, ValueError) as exc:
        raise invalid(fields, f"the model's tokenizer cannot read this input ({exc})") from exc


async def run_model(served: Served, item: Any, tokens: int) -> Any:
    """``item``'s result from ``served``'s batcher: a 503 once its worker has stopped, a 500
    naming the model when the model fails on this request (the log has the traceback)."""
    try:
        return await served.batcher.submit(item, tokens)
    except WorkerStopped as exc:
        raise HTTPException(503, f"{exc}; the server must be restarted") from exc
    except Exception as exc:
        raise HTTPException(500, f"{served.batcher.name} failed on this request "
                                 f"({type(exc).__name__}; the server log has details)") from exc


def best_first(scores: np.ndarray) -> list[int]:
    """Indices of ``scores``, highest first (ties in input order)."""
    return np.argsort(-scores, kind="stable").tolist()


def matches(doc: Document, wanted: dict[str, Any]) -> bool:
    """Whether each field of ``wanted`` (``title``, ``text`` or a metadata key) equals its
    value in ``doc``."""
    fields = {**doc.metadata, "title": doc.title, "text": doc.text}
    return all(key in fields and fields[key] == value for key, value in wanted.items())


def lookup(models: dict[str, Served], name: str | None, kind: str) -> Served:
    """The served model called ``name`` (``None``: the first), or a 404 listing the names."""
    if name is None:
        if not models:
            raise HTTPException(404, f"no {kind} is loaded")
        return next(iter(models.values()))
    if name not in models:
        raise HTTPException(404, f"no {kind} named {name!r}; served: {sorted(models)}")
    return models[name]


# ---- the app ----------------------------------------------------------------------------------
def create_app(config: ServeConfig) -> FastAPI:
    """Load everything ``config`` names and return the app (see the module docstring)."""
    metrics = Metrics()
    services = load_services(config, metrics)
    limits = services.limits

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        for batcher in services.batchers():
            batcher.close()

    app = FastAPI(title="ragsift", lifespan=lifespan)
    app.state.services = services
    app.state.metrics = metrics
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)  # inside `record`

    async def authorize(credentials: Credentials) -> None:
        if config.api_key is None:
            return
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), config.api_key.encode()):
            raise HTTPException(401, "missing or wrong API key (Authorization: Bearer KEY)",
                                headers={"WWW-Authenticate": "Bearer"})

    guarded = [Depends(authorize)]

    @app.middleware("http")
    async def record(request: Request, call_next: Callable) -> Response:
        start, status = time.perf_counter(), 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            path = request.url.path
            known = any(getattr(route, "path", None) == path for route in app.routes)
            metrics.observe_request(path if known else "other", status,
                                    time.perf_counter() - start)

    def check_size(documents: int, tokens: int = 0) -> None:
        if documents > limits.max_documents:
            raise HTTPException(413, f"{documents} documents; the limit is "
                                     f"{limits.max_documents} per request")
        if tokens > limits.max_tokens:
            raise HTTPException(413, f"{tokens} tokens; the limit is {limits.max_tokens} "
                                     "per request")

    async def raw_scores(served: Served[Reranker], query: str, docs: list[str],
                         limit: int | None, docs_field: str) -> np.ndarray:
        check_size(len(docs))
        docs, tokens = await tokenize(served, ("query", docs_field), fit_documents, query,
                                      docs, limit)
        check_size(len(docs), tokens)
        return await run_model(served, [(query, d) for d in docs], tokens)

    @app.post("/v2/rerank", response_model=CohereRerankResponse,
              response_model_exclude_none=True, dependencies=guarded)
    async def cohere_rerank(body: CohereRerankRequest) -> CohereRerankResponse:
        served = lookup(services.rerankers, body.model, "reranker")
        texts = [d if isinstance(d, str) else d.text for d in body.documents]
        scores = probabilities(served.model, await raw_scores(served, body.query, texts,
                                                              body.max_tokens_per_doc,
                                                              "documents"))
        results = [
            CohereRerankResult(index=i, relevance_score=float(scores[i]),
                               document=RerankDocument(text=texts[i])
                               if body.return_documents else None)
            for i in best_first(scores)[: body.top_n]
        ]
        return CohereRerankResponse(id=str(uuid.uuid4()), results=results, meta=COHERE_META)

    @app.post("/rerank", response_model=list[TeiRank], response_model_exclude_none=True,
              dependencies=guarded)
    async def tei_rerank(body: TeiRerankRequest) -> list[TeiRank]:
        served = lookup(services.rerankers, None, "reranker")
        limit = None
        if body.truncate:  # the model's own tokenizer: under its lock
            budget = exclusive(served.lock, served.model.passage_budget)
            limit = max(await asyncio.to_thread(budget, body.query), 1)
        scores = await raw_scores(served, body.query, body.texts, limit, "texts")
        if not body.raw_scores:
            scores = probabilities(served.model, scores)
        return [TeiRank(index=i, score=float(scores[i]),
                        text=body.texts[i] if body.return_text else None)
                for i in best_first(scores)]

    @app.post("/v1/embeddings", response_model=EmbeddingResponse, dependencies=guarded)
    async def embeddings(body: EmbeddingRequest) -> EmbeddingResponse:
        served = lookup(services.embedders, body.model, "embedder")
        encoder = served.model
        texts = [body.input] if isinstance(body.input, str) else body.input
        check_size(len(texts))
        if body.dimensions is not None and body.dimensions > encoder.dim:
            raise invalid("dimensions", f"{body.model} has {encoder.dim} dimensions; "
                                        f"asked for {body.dimensions}")
        tokens = await tokenize(served, ("input",), count_tokens, texts, encoder.max_length)
        check_size(len(texts), tokens)
        vectors = await run_model(served, texts, tokens)
        if body.dimensions is not None:
            vectors = vectors[:, : body.dimensions]
            if encoder.layout.normalize:
                norms = np.linalg.norm(vectors, axis=1, keepdims=True)
                vectors = vectors / np.maximum(norms, 1e-12)
        data = [Embedding(index=i, embedding=encode_vector(v, body.encoding_format))
                for i, v in enumerate(vectors)]
        return EmbeddingResponse(data=data, model=body.model,
                                 usage=Usage(prompt_tokens=tokens, total_tokens=tokens))

    if config.collection is not None:
        from ragsift.collection import Collection
        from ragsift.serve.collection_routes import add_collection_routes

        collection = Collection.open(config.collection)
        app.state.collection = collection
        add_collection_routes(app, collection, guarded, limits.max_documents)

    @app.post("/search", response_model=SearchResponse, response_model_exclude_none=True,
              dependencies=guarded)
    async def search(body: SearchRequest) -> SearchResponse:
        index, corpus = services.index, services.corpus
        if index is None:
            raise HTTPException(404, "no index is loaded (give --index or index: in the config)")
        if body.filter and corpus is None:
            raise invalid("filter", "this index has no document fields to filter on (the "
                                    "server config names no index.corpus)")
        check_size(body.k)
        total = index.model.num_documents
        depth = min(body.k * 10 if body.filter else body.k, total)
        while True:
            hits = await run_model(index, (body.query, depth), 1)
            if body.filter:
                hits = [(d, s) for d, s in hits if d in corpus and matches(corpus[d], body.filter)]
            if not body.filter or len(hits) >= body.k or depth >= total:
                break
            depth = min(depth * 4, total)
        results = []
        for doc_id, score in hits[: body.k]:
            doc = corpus.get(doc_id) if corpus is not None else None
            results.append(SearchHit(id=doc_id, score=score, title=doc.title if doc else None,
                                     text=doc.text if doc else None))
        return SearchResponse(results=results)

    @app.get("/health", response_model=Health, response_model_exclude_none=True)
    async def health(response: Response) -> Health:
        models = [ModelInfo(name=served.name, type=kind, error=served.batcher.stopped)
                  for kind, served in services.served()]
        if config.collection is not None:
            models.append(ModelInfo(name=Path(config.collection).name, type="collection"))
        if any(model.error for model in models):
            response.status_code = 503
            return Health(status="unavailable", models=models)
        return Health(models=models)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return app
