"""Request and response bodies of the server's endpoints (pydantic models).

Field names follow the APIs the endpoints are compatible with: Cohere's v2 rerank, Hugging Face
text-embeddings-inference's ``/rerank`` and OpenAI's embeddings. Unknown request fields are
ignored, as those APIs' newer clients may send fields this server does not use.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field


class RerankDocument(BaseModel):
    """A document as an object; only its ``text`` is scored."""

    text: str


class CohereRerankRequest(BaseModel):
    """``POST /v2/rerank``: rank ``documents`` for ``query`` with the reranker ``model``."""

    model: str
    query: str
    documents: list[str | RerankDocument]
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = False
    max_tokens_per_doc: int | None = Field(default=None, ge=1)


class CohereRerankResult(BaseModel):
    """One ranked document: its position in the request, its probability of relevance and,
    with ``return_documents``, its text."""

    index: int
    relevance_score: float
    document: RerankDocument | None = None


class CohereRerankResponse(BaseModel):
    """Results best first, at most ``top_n``; ``meta`` as Cohere's v2 API reports it."""

    id: str
    results: list[CohereRerankResult]
    meta: dict


class TeiRerankRequest(BaseModel):
    """``POST /rerank``: rank ``texts`` for ``query`` with the server's first reranker.

    ``raw_scores``: raw scores (logits) instead of probabilities; ``truncate``: cut each text to
    the tokens that fit beside the query instead of scoring all of it in windows."""

    query: str
    texts: list[str]
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool = False


class TeiRank(BaseModel):
    """One ranked text (``text`` only with ``return_text``)."""

    index: int
    score: float
    text: str | None = None


class EmbeddingRequest(BaseModel):
    """``POST /v1/embeddings``: embed ``input`` with the embedder ``model``; ``dimensions``
    keeps the first dimensions (Matryoshka), re-normalised when the model normalises."""

    input: str | Annotated[list[str], Field(min_length=1)]
    model: str
    dimensions: int | None = Field(default=None, ge=1)
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None


class Embedding(BaseModel):
    """One vector: floats, or base64 of its little-endian float32 bytes."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    """Tokens the model read (after truncation to its maximum length)."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    """One embedding per input, in input order."""

    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


class SearchRequest(BaseModel):
    """``POST /search``: the ``k`` best documents of the index for ``query``, keeping only
    documents whose field equals each ``filter`` value (needs the index's corpus)."""

    query: str
    k: int = Field(default=10, ge=1)
    filter: dict[str, str | int | float | bool] | None = None


class SearchHit(BaseModel):
    """A retrieved document (``title`` and ``text`` when the server has the corpus)."""

    id: str
    score: float
    title: str | None = None
    text: str | None = None


class SearchResponse(BaseModel):
    """Hits best first."""

    results: list[SearchHit]


class ModelInfo(BaseModel):
    """A loaded model: its name and what it serves."""

    name: str
    type: Literal["reranker", "embedder", "index"]


class Health(BaseModel):
    """``GET /health``."""

    status: Literal["ok"] = "ok"
    models: list[ModelInfo]
