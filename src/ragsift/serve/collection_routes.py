"""Serving a collection: ``/search`` with filters, ``POST /documents`` (upsert) and
``DELETE /documents``.

Searches and writes run in worker threads. A write builds its segment while searches go on
against the current commit; they move to the new commit when it is made (one pointer swap),
so a search never waits for more than that swap and never sees half a write. Writes are
serialised by the collection's writer lock. Bad documents answer 422 naming the document and
field; nothing of such a request is written.

With a pipeline (``serve --pipeline FILE``, :mod:`ragsift.pipeline`), ``/search`` runs the
pipeline's reranker, final fusion and second hop over the collection's own hits
(:meth:`~ragsift.collection.Collection.search_pipeline`), the request's ``k`` replacing the
pipeline's; one such search runs at a time (the reranker's tokenizer is not thread-safe).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from ragsift.collection import Collection
from ragsift.errors import DataFormatError
from ragsift.pipeline.config import PipelineConfig, PipelineConfigError
from ragsift.retrieve.filters import Filter, FilterError
from ragsift.serve.guards import unprocessable
from ragsift.serve.schemas import Text

FilterBody = dict[str, Any] | list[str] | str | None


class CollectionSearchRequest(BaseModel):
    """``POST /search`` on a collection: ``filter`` is a dict (``{"year": {">=": 2020}}``),
    a list of expressions (``["year>=2020", "source=pubmed"]``) or one expression."""

    query: Text
    k: int = Field(default=10, ge=1)
    filter: FilterBody = None
    unit: Literal["document", "chunk"] = "document"
    retriever: Literal["bm25", "dense", "hybrid"] | None = None


class CollectionHit(BaseModel):
    """A hit: the document (or chunk) id, score, best chunk's text and span, metadata."""

    id: str
    score: float
    doc_id: str
    chunk: int
    title: str
    text: str
    start: int
    end: int
    metadata: dict[str, Any]


class CollectionSearchResponse(BaseModel):
    results: list[CollectionHit]
    generation: int


class DocumentsRequest(BaseModel):
    """``POST /documents``: documents to add or replace (same id)."""

    documents: Annotated[list[dict[str, Any]], Field(min_length=1)]


class DocumentsResponse(BaseModel):
    added: int
    replaced: int
    unchanged: int
    chunks: int
    generation: int


class DeleteRequest(BaseModel):
    """``DELETE /documents``: ids to delete."""

    ids: Annotated[list[Text], Field(min_length=1)]


class DeleteResponse(BaseModel):
    deleted: int
    not_found: int
    generation: int


def add_collection_routes(app: FastAPI, collection: Collection, guarded: list[Any],
                          max_documents: int,
                          pipeline: tuple[PipelineConfig, Any, Any] | None = None) -> None:
    """Register the collection's endpoints on ``app`` (writes behind ``guarded``); with
    ``pipeline`` (a config, its loaded reranker and second-hop reranker), ``/search``
    reranks and fuses."""
    rerank_lock = threading.Lock()

    def search_hits(body: CollectionSearchRequest, parsed: Filter,
                    config: PipelineConfig | None) -> list[Any]:
        if config is None:
            return collection.search(body.query, body.k, parsed, body.unit, body.retriever)
        with rerank_lock:
            return collection.search_pipeline(body.query, config, pipeline[1], parsed,
                                              body.unit, body.retriever, pipeline[2])

    @app.post("/search", response_model=CollectionSearchResponse, dependencies=guarded)
    async def search(body: CollectionSearchRequest) -> CollectionSearchResponse:
        if body.k > max_documents:
            raise HTTPException(413, f"k={body.k}; the limit is {max_documents}")
        try:
            parsed = Filter.parse(body.filter)
        except FilterError as exc:
            raise unprocessable(str(exc), ["filter"]) from None
        config = None
        if pipeline is not None:
            try:
                config = dataclasses.replace(pipeline[0], k=body.k)
            except PipelineConfigError as exc:
                raise unprocessable(exc.message, ["k"]) from None
        generation = collection.generation
        try:
            hits = await asyncio.to_thread(search_hits, body, parsed, config)
        except ValueError as exc:
            raise unprocessable(str(exc), ["retriever"]) from None
        return CollectionSearchResponse(results=[CollectionHit(**h.to_dict()) for h in hits],
                                        generation=generation)

    @app.post("/documents", response_model=DocumentsResponse, dependencies=guarded)
    async def upsert(body: DocumentsRequest) -> DocumentsResponse:
        if len(body.documents) > max_documents:
            raise HTTPException(413, f"{len(body.documents)} documents; the limit is "
                                     f"{max_documents} per request")
        try:
            result = await asyncio.to_thread(collection.add, body.documents)
        except DataFormatError as exc:
            where = ["documents"] + ([exc.line - 1] if exc.line else [])
            raise unprocessable(exc.message,
                                where + ([exc.field] if exc.field else [])) from None
        return DocumentsResponse(added=result.added, replaced=result.replaced,
                                 unchanged=result.unchanged, chunks=result.chunks,
                                 generation=result.generation)

    @app.api_route("/documents", methods=["DELETE"], response_model=DeleteResponse,
                   dependencies=guarded)
    async def delete(body: DeleteRequest) -> DeleteResponse:
        if len(body.ids) > max_documents:
            raise HTTPException(413, f"{len(body.ids)} ids; the limit is {max_documents} "
                                     "per request")
        deleted = await asyncio.to_thread(collection.delete, body.ids)
        return DeleteResponse(deleted=deleted, not_found=len(set(body.ids)) - deleted,
                              generation=collection.generation)


__all__ = ["add_collection_routes"]
