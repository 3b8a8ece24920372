"""Request and response bodies of the server's endpoints (pydantic models).

Field names follow the APIs the endpoints are compatible with: Cohere's v2 rerank, Hugging Face
text-embeddings-inference's ``/rerank`` and OpenAI's embeddings. Unknown request fields are
ignored, as those APIs' newer clients may send fields this server does not use.

Request strings are :data:`Text`: a lone surrogate (U+D800-U+DFFF, which JSON's ``\\ud800``
escapes can carry but no tokenizer can encode) is a 422 naming the field, as is a NaN or
infinite number (:data:`FiniteFloat`).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

_SURROGATE = re.compile("[\ud800-\udfff]")


def no_surrogates(text: str) -> str:
    """``text``, or a ValueError when it holds a lone surrogate (not encodable as UTF-8).

    Example:
        >>> no_surrogates("x\\ud800y")
        Traceback (most recent call last):
        ValueError: a lone surrogate (U+D800) at character 1; send valid Unicode
    """
    found = _SURROGATE.search(text)
    if found:
        raise ValueError(f"a lone surrogate (U+{ord(found.group()):04X}) at character "
                         f"{found.start()}; send valid Unicode")
    return text


Text = Annotated[str, AfterValidator(no_surrogates)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class RerankDocument(BaseModel):
    """A document as an object; only its ``text`` is scored."""

    text: Text


class CohereRerankRequest(BaseModel):
    """``POST /v2/rerank``: rank ``documents`` for ``query`` with the reranker ``model``."""

    model: Text
    query: Text
    documents: list[Text | RerankDocument]
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

    query: Text
    texts: list[Text]
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

    input: Text | Annotated[list[Text], Field(min_length=1)]
    model: Text
    dimensions: int | None = Field(default=None, ge=1)
    encoding_format: Literal["float", "base64"] = "float"
    user: Text | None = None


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

    query: Text
    k: int = Field(default=10, ge=1)
    filter: dict[Text, Text | int | FiniteFloat | bool] | None = None


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
    """A loaded model: its name, what it serves and, once its worker has stopped, why."""

    name: str
    type: Literal["reranker", "embedder", "index", "collection"]
    error: str | None = None


class Health(BaseModel):
    """``GET /health``: ``ok``, or ``unavailable`` (HTTP 503) when a model's worker has
    stopped."""

    status: Literal["ok", "unavailable"] = "ok"
    models: list[ModelInfo]
