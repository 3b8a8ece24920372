"""The HTTP endpoints: request checks, HTTP errors and response shapes over
:mod:`ragsift.serve.services`.

Handlers are plain module functions on :data:`router`; they find the loaded services, the
config and the metrics on ``request.app.state`` (set by :func:`ragsift.serve.app.create_app`).
"""

from __future__ import annotations

import asyncio
import hmac
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ragsift.errors import UsageError
from ragsift.rerank import Reranker
from ragsift.serve.batcher import WorkerStopped
from ragsift.serve.config import Limits, ServeConfig
from ragsift.serve.guards import unprocessable
from ragsift.serve.metrics import CONTENT_TYPE, Metrics
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
from ragsift.serve.services import (
    Served,
    Services,
    best_first,
    count_tokens,
    encode_vector,
    exclusive,
    fit_documents,
    matches,
    truncate_vectors,
)

Result = TypeVar("Result")
COHERE_META = {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


def _services(request: Request) -> Services:
    return request.app.state.services


def _config(request: Request) -> ServeConfig:
    return request.app.state.config


def _metrics(request: Request) -> Metrics:
    return request.app.state.metrics


ServicesDep = Annotated[Services, Depends(_services)]
ConfigDep = Annotated[ServeConfig, Depends(_config)]


async def authorize(config: ConfigDep, credentials: Credentials) -> None:
    """A 401 unless the request carries the configured key as ``Authorization: Bearer KEY``
    (compared in constant time); no key configured: every request passes."""
    if config.api_key is None:
        return
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), config.api_key.encode()):
        raise HTTPException(401, "missing or wrong API key (Authorization: Bearer KEY)",
                            headers={"WWW-Authenticate": "Bearer"})


#: The endpoints every request of which needs the API key.
router = APIRouter(dependencies=[Depends(authorize)])
#: ``/health`` and ``/metrics``, open to probes and scrapers.
open_router = APIRouter()


def check_size(limits: Limits, documents: int, tokens: int = 0) -> None:
    """A 413 when a request holds more documents or tokens than the limits allow."""
    if documents > limits.max_documents:
        raise HTTPException(413, f"{documents} documents; the limit is "
                                 f"{limits.max_documents} per request")
    if tokens > limits.max_tokens:
        raise HTTPException(413, f"{tokens} tokens; the limit is {limits.max_tokens} "
                                 "per request")


def lookup(models: dict[str, Served], name: str | None, kind: str) -> Served:
    """The served model called ``name`` (``None``: the first), or a 404 listing the names."""
    if name is None:
        if not models:
            raise HTTPException(404, f"no {kind} is loaded")
        return next(iter(models.values()))
    if name not in models:
        raise HTTPException(404, f"no {kind} named {name!r}; served: {sorted(models)}")
    return models[name]


async def tokenize(served: Served, fields: Sequence[str], fn: Callable[..., Result],
                   *args: Any) -> Result:
    """``fn(tokenizer, *args)`` on ``served``'s request tokenizer; input it cannot read is a
    422 naming ``fields``."""
    try:
        return await served.tokenizer.run(fn, *args)
    except (TypeError, ValueError) as exc:
        raise unprocessable(f"the model's tokenizer cannot read this input ({exc})",
                            *([f] for f in fields)) from exc


async def run_model(served: Served, item: Any, tokens: int) -> Any:
    """``item``'s result from ``served``'s batcher: a 503 once its worker has stopped, a 422
    with the message when the model refuses this request's input (a :class:`UsageError`, such
    as a query that leaves no room for the passage), a 500 naming the model when the model
    fails on it otherwise (the log has the traceback). The batcher keeps either failure to the
    requests that cause it."""
    try:
        return await served.batcher.submit(item, tokens)
    except WorkerStopped as exc:
        raise HTTPException(503, f"{exc}; the server must be restarted") from exc
    except UsageError as exc:
        raise unprocessable(str(exc), ()) from exc
    except Exception as exc:
        raise HTTPException(500, f"{served.batcher.name} failed on this request "
                                 f"({type(exc).__name__}; the server log has details)") from exc


def probabilities(served: Served[Reranker], raw: np.ndarray) -> np.ndarray:
    """The reranker's probabilities of relevance for its ``raw`` scores; a 422 when it has
    none (a ColBERT model without a calibration: ask for raw scores)."""
    try:
        return served.model.probability(raw)
    except UsageError as exc:
        raise unprocessable(str(exc), ()) from exc


async def raw_scores(served: Served[Reranker], limits: Limits, query: str, docs: list[str],
                     limit: int | None, docs_field: str) -> np.ndarray:
    """The reranker's raw scores of ``(query, doc)`` for ``docs`` cut to ``limit`` tokens,
    after the size checks (``docs_field`` names the documents in errors)."""
    check_size(limits, len(docs))
    docs, tokens = await tokenize(served, ("query", docs_field), fit_documents, query, docs,
                                  limit)
    check_size(limits, len(docs), tokens)
    return await run_model(served, [(query, d) for d in docs], tokens)


@router.post("/v2/rerank", response_model=CohereRerankResponse,
             response_model_exclude_none=True)
async def cohere_rerank(body: CohereRerankRequest, services: ServicesDep
                        ) -> CohereRerankResponse:
    """Cohere v2 rerank: probabilities of relevance, best first, the top ``top_n``."""
    served = lookup(services.rerankers, body.model, "reranker")
    texts = [d if isinstance(d, str) else d.text for d in body.documents]
    raw = await raw_scores(served, services.limits, body.query, texts, body.max_tokens_per_doc,
                           "documents")
    scores = probabilities(served, raw)
    results = [
        CohereRerankResult(index=i, relevance_score=float(scores[i]),
                           document=RerankDocument(text=texts[i])
                           if body.return_documents else None)
        for i in best_first(scores)[: body.top_n]
    ]
    return CohereRerankResponse(id=str(uuid.uuid4()), results=results, meta=COHERE_META)


@router.post("/rerank", response_model=list[TeiRank], response_model_exclude_none=True)
async def tei_rerank(body: TeiRerankRequest, services: ServicesDep) -> list[TeiRank]:
    """TEI rerank: probabilities (raw scores with ``raw_scores``), best first; ``truncate``
    cuts each text to the reranker's passage budget for the query."""
    served = lookup(services.rerankers, None, "reranker")
    limit = None
    if body.truncate:  # the model's own tokenizer: under its lock
        budget = exclusive(served.lock, served.model.passage_budget)
        limit = max(await asyncio.to_thread(budget, body.query), 1)
    scores = await raw_scores(served, services.limits, body.query, body.texts, limit, "texts")
    if not body.raw_scores:
        scores = probabilities(served, scores)
    return [TeiRank(index=i, score=float(scores[i]),
                    text=body.texts[i] if body.return_text else None)
            for i in best_first(scores)]


@router.post("/v1/embeddings", response_model=EmbeddingResponse)
async def embeddings(body: EmbeddingRequest, services: ServicesDep) -> EmbeddingResponse:
    """OpenAI embeddings: float or base64 vectors, cut to ``dimensions`` (Matryoshka)."""
    served = lookup(services.embedders, body.model, "embedder")
    encoder = served.model
    texts = [body.input] if isinstance(body.input, str) else body.input
    check_size(services.limits, len(texts))
    if body.dimensions is not None and body.dimensions > encoder.dim:
        raise unprocessable(f"{body.model} has {encoder.dim} dimensions; asked for "
                            f"{body.dimensions}", ["dimensions"])
    tokens = await tokenize(served, ("input",), count_tokens, texts, encoder.max_length)
    check_size(services.limits, len(texts), tokens)
    vectors = await run_model(served, texts, tokens)
    if body.dimensions is not None:
        vectors = truncate_vectors(vectors, body.dimensions, encoder.layout.normalize)
    data = [Embedding(index=i, embedding=encode_vector(v, body.encoding_format))
            for i, v in enumerate(vectors)]
    return EmbeddingResponse(data=data, model=body.model,
                             usage=Usage(prompt_tokens=tokens, total_tokens=tokens))


@router.post("/search", response_model=SearchResponse, response_model_exclude_none=True)
async def search(body: SearchRequest, services: ServicesDep) -> SearchResponse:
    """The top ``k`` of the index; with a ``filter``, the search deepens (x10, then x4 per
    round) until ``k`` documents match or the whole index has been ranked."""
    index, corpus = services.index, services.corpus
    if index is None:
        raise HTTPException(404, "no index is loaded (give --index or index: in the config)")
    if body.filter and corpus is None:
        raise unprocessable("this index has no document fields to filter on (the server "
                            "config names no index.corpus)", ["filter"])
    check_size(services.limits, body.k)
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


@open_router.get("/health", response_model=Health, response_model_exclude_none=True)
async def health(response: Response, services: ServicesDep, config: ConfigDep) -> Health:
    """Status and loaded models; 503 once a model's worker has stopped."""
    models = [ModelInfo(name=served.name, type=kind, error=served.batcher.stopped)
              for kind, served in services.served()]
    if config.collection is not None:
        models.append(ModelInfo(name=Path(config.collection).name, type="collection"))
    if any(model.error for model in models):
        response.status_code = 503
        return Health(status="unavailable", models=models)
    return Health(models=models)


@open_router.get("/metrics")
async def prometheus(metrics: Annotated[Metrics, Depends(_metrics)]) -> Response:
    """The metrics in the Prometheus text format (:mod:`ragsift.serve.metrics`)."""
    return Response(metrics.render(), media_type=CONTENT_TYPE)
