"""The HTTP server: reranking, embeddings and search behind Cohere-, TEI- and OpenAI-shaped APIs.

:func:`create_app` loads every model and the index named by a :class:`ServeConfig` (only
there: no request can name a path) and returns a FastAPI app with these endpoints
(:mod:`ragsift.serve.routes`; the loaded models in :mod:`ragsift.serve.services`, the metrics in
:mod:`ragsift.serve.metrics`):

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

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragsift.serve.config import ServeConfig
from ragsift.serve.guards import BodyLimit, http_error, validation_error
from ragsift.serve.metrics import Metrics
from ragsift.serve.routes import authorize, open_router, router
from ragsift.serve.services import load_services


def create_app(config: ServeConfig) -> FastAPI:
    """Load everything ``config`` names and return the app (see the module docstring)."""
    metrics = Metrics()
    services = load_services(config, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        services.close()

    app = FastAPI(title="ragsift", lifespan=lifespan)
    app.state.config = config
    app.state.services = services
    app.state.metrics = metrics
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(BodyLimit, max_bytes=config.limits.max_body_bytes)  # inside `record`

    paths: set[str] = set()  # filled once every route is added

    @app.middleware("http")
    async def record(request: Request, call_next: Callable) -> Response:
        start, status = time.perf_counter(), 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            path = request.url.path
            metrics.observe_request(path if path in paths else "other", status,
                                    time.perf_counter() - start)

    if config.collection is not None:  # before the router: its /search answers first
        from ragsift.collection import Collection
        from ragsift.serve.collection_routes import add_collection_routes

        pipeline = None
        if config.pipeline is not None:  # read (and its reranker loaded) before serving
            from ragsift.pipeline.config import load_pipeline
            from ragsift.pipeline.runner import load_hop_reranker, load_reranker

            settings = load_pipeline(config.pipeline)
            pipeline = (settings, load_reranker(settings), load_hop_reranker(settings))
        collection = Collection.open(config.collection)
        app.state.collection = collection
        add_collection_routes(app, collection, [Depends(authorize)],
                              config.limits.max_documents, pipeline)
    app.include_router(router)
    app.include_router(open_router)
    # included routers do not list their routes in app.routes: read them from the routers
    for route in [*app.routes, *router.routes, *open_router.routes]:
        if isinstance(getattr(route, "path", None), str):
            paths.add(route.path)
    return app
