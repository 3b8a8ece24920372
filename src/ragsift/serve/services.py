"""What the server runs: the models and index a :class:`ServeConfig` names, each behind its own
:class:`MicroBatcher`, and the functions that turn requests into model input and back.

Nothing here knows HTTP; :mod:`ragsift.serve.routes` does.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from ragsift.errors import RagsiftError
from ragsift.models.bi_encoder import BiEncoder
from ragsift.rerank import Reranker
from ragsift.retrieve.base import Retriever, read_manifest
from ragsift.serve.batcher import MicroBatcher
from ragsift.serve.config import Limits, ServeConfig
from ragsift.serve.loading import load_reranker
from ragsift.serve.metrics import Metrics
from ragsift.types import Document, ranked

Model = TypeVar("Model")
Result = TypeVar("Result")

SEARCH_BATCH = 64  # queries per search batch: a search job costs 1 of this budget


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

    def close(self) -> None:
        """Stop every batcher (their worker threads finish the batch in hand)."""
        for _, served in self.served():
            served.batcher.close()


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
    """Load the models and index of ``config`` and start one batcher per model.

    Raises:
        RagsiftError: ``index.embedder`` set for an index that encodes no queries (and the
            loaders' own errors: a missing model or index, an untrained head).
    """
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
            kind = str(read_manifest(Path(config.index.path))["retriever"])
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


def fit_documents(tokenizer: Any, query: str, docs: list[str],
                  limit: int | None) -> tuple[list[str], int]:
    """``docs`` cut to ``limit`` tokens each (``None``: whole) and the tokens of all the
    (query, document) pairs the reranker will read: for each pair,
    ``query tokens + min(document tokens, limit) + the pair's special tokens``."""
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


def truncate_vectors(vectors: np.ndarray, dimensions: int, normalize: bool) -> np.ndarray:
    """The first ``dimensions`` of each row (Matryoshka), re-scaled to unit length when the
    model normalises: ``v[:d] / max(||v[:d]||, 1e-12)``."""
    vectors = vectors[:, :dimensions]
    if normalize:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.maximum(norms, 1e-12)
    return vectors


def encode_vector(vector: np.ndarray, encoding: str) -> list[float] | str:
    """A vector as JSON floats, or base64 of its little-endian float32 bytes.

    Example:
        >>> encode_vector(np.array([1.0, 0.5]), "base64")
        'AACAPwAAAD8='
    """
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()


def best_first(scores: np.ndarray) -> list[int]:
    """Indices of ``scores``, highest first (ties in input order).

    Example:
        >>> best_first(np.array([0.1, 0.9, 0.1]))
        [1, 0, 2]
    """
    return np.argsort(-scores, kind="stable").tolist()


def matches(doc: Document, wanted: dict[str, Any]) -> bool:
    """Whether each field of ``wanted`` (``title``, ``text`` or a metadata key) equals its
    value in ``doc``."""
    fields = {**doc.metadata, "title": doc.title, "text": doc.text}
    return all(key in fields and fields[key] == value for key, value in wanted.items())
