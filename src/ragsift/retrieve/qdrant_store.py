"""Vector search in a Qdrant collection: embedded (in memory or a local folder) or a server.

:class:`QdrantStore` has the methods of :class:`~ragsift.retrieve.vector_store.FaissStore`
(``size``, ``add``, ``search``, ``save``, ``load``) so it can stand in for it, plus what a database
adds: points with chosen integer ids and a payload (a JSON-able dict), :meth:`~QdrantStore.upsert`,
:meth:`~QdrantStore.delete` and payload filters in :meth:`~QdrantStore.search`.

Scores are inner products ``<q, d>`` (Qdrant's ``Dot`` distance); with normalised vectors that is
cosine similarity. Positions returned by ``search`` are the point ids.

Needs the optional dependency ``qdrant-client`` (``pip install 'ragsift[qdrant]'``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragsift.errors import MissingExtraError

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from qdrant_client.http import models as qmodels

MEMORY = ":memory:"
POINTER_FILE = "ragsift_qdrant.json"
"""File written by :meth:`QdrantStore.save` that :meth:`QdrantStore.load` reads."""

PayloadFilter = Mapping[str, Any]
"""``{key: value}`` (payload ``key`` equals ``value``) or ``{key: [v1, v2]}`` (equals any of them);
several keys must all match. Values are ``str``, ``int`` or ``bool``."""


def _import_qdrant() -> tuple[type[QdrantClient], Any]:
    """``(QdrantClient, qdrant_client.http.models)``, or :class:`MissingExtraError`."""
    try:
        from qdrant_client import QdrantClient
        from qdrant_client.http import models
    except ImportError as exc:
        raise MissingExtraError("qdrant-client", "qdrant") from exc
    return QdrantClient, models


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def make_filter(conditions: PayloadFilter | None) -> qmodels.Filter | None:
    """Translate ``{"source": "wiki", "year": [2020, 2021]}`` into a Qdrant ``Filter``.

    Input: a mapping from payload key to a value (exact match, ``MatchValue``) or to a list, tuple
    or set of values (match any, ``MatchAny``); all keys must match. ``None`` or ``{}``: no filter.
    Output: a ``qdrant_client`` ``Filter`` with one ``FieldCondition`` per key in ``must``.
    Raises ``ValueError`` for values Qdrant cannot match exactly (floats, None, dicts).
    """
    if not conditions:
        return None
    _, models = _import_qdrant()
    must = []
    for key, value in conditions.items():
        if isinstance(value, (list, tuple, set, frozenset)):
            match = models.MatchAny(any=[_match_value(key, v) for v in value])
        else:
            match = models.MatchValue(value=_match_value(key, value))
        must.append(models.FieldCondition(key=key, match=match))
    return models.Filter(must=must)


def _match_value(key: str, value: Any) -> str | int | bool:
    """``value`` as a plain str / int / bool that Qdrant can match exactly."""
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    raise ValueError(
        f"filter on {key!r}: cannot match {value!r} ({type(value).__name__}) exactly; "
        "Qdrant filters by equality on str, int or bool values only"
    )


class QdrantStore:
    """A Qdrant collection of float32 vectors with integer ids and payloads; dot-product search.

    Args:
        dim: vector size.
        location: ``":memory:"`` (default; embedded, lost when the process ends), a local folder
            (embedded, persisted there on every write; one process at a time may open it) or an
            ``http(s)://`` URL of a Qdrant server.
        collection: collection name. An existing collection is reused (its vector size must be
            ``dim``); otherwise it is created with ``Dot`` distance.
        api_key: API key for a server; ignored in embedded mode and never written by :meth:`save`.
        batch_size: points per upload / delete request and queries per search request.
        exact: on a server, search exhaustively instead of with the HNSW index (embedded mode is
            always exact).

    Embedded mode is meant for tests and small corpora: it scans every vector (like faiss
    ``flat``) and qdrant-client warns above 20,000 points. In a local folder every point written
    (by ``add``, ``upsert`` or ``save``) is a separate SQLite commit: about 0.2-15 ms per point
    depending on the disk.

    Example:
        >>> store = QdrantStore(2)
        >>> store.add(np.array([[1, 0], [0, 1]], dtype=np.float32))
        >>> store.search(np.array([[0.2, 0.9]], dtype=np.float32), k=1)[1].tolist()
        [[1]]
    """

    def __init__(self, dim: int, location: str | Path = MEMORY, collection: str = "ragsift",
                 api_key: str | None = None, batch_size: int = 1024, exact: bool = False) -> None:
        client_cls, models = _import_qdrant()
        self._models = models
        self.dim = int(dim)
        self.location = str(location)
        self.collection = collection
        self.batch_size = int(batch_size)
        self.exact = exact
        if self.location == MEMORY:
            self.client = client_cls(location=MEMORY)
        elif _is_url(self.location):
            self.client = client_cls(url=self.location, api_key=api_key)
        else:
            self.client = client_cls(path=self.location)
        self._next_id: int | None = None  # one past the largest id; None until needed
        if self.client.collection_exists(collection):
            size = self.client.get_collection(collection).config.params.vectors.size
            if size != self.dim:
                self.client.close()
                raise ValueError(
                    f"collection {collection!r} at {self.location} holds {size}-dim vectors, "
                    f"not {self.dim}"
                )
        else:
            self.client.create_collection(
                collection, vectors_config=models.VectorParams(size=self.dim,
                                                               distance=models.Distance.DOT)
            )
            self._next_id = 0

    @property
    def is_embedded(self) -> bool:
        """True unless ``location`` is a server URL."""
        return not _is_url(self.location)

    @property
    def size(self) -> int:
        """How many points are stored."""
        return int(self.client.count(self.collection, exact=True).count)

    def add(self, vectors: np.ndarray, payloads: Sequence[dict] | None = None) -> None:
        """Append ``vectors`` (n, dim) with optional ``payloads`` (n dicts).

        They get consecutive ids starting one past the largest id stored (0 when empty), so a
        store filled only by ``add`` numbers points 0, 1, 2, ... like ``FaissStore``; ids freed by
        :meth:`delete` are not reused.
        """
        vectors = self._check_vectors(vectors)
        start = self._largest_id() + 1
        self.upsert(list(range(start, start + len(vectors))), vectors, payloads)

    def upsert(self, ids: Sequence[int], vectors: np.ndarray,
               payloads: Sequence[dict] | None = None) -> None:
        """Insert or replace the points ``ids`` (n non-negative ints) with ``vectors`` (n, dim).

        ``payloads`` (n JSON-able dicts) replace the stored payloads; with ``None`` replaced points
        lose theirs. Uploads ``batch_size`` points per request.
        """
        vectors = self._check_vectors(vectors)
        ids = [int(i) for i in ids]
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if payloads is not None and len(payloads) != len(vectors):
            raise ValueError(f"{len(payloads)} payloads for {len(vectors)} vectors")
        if any(i < 0 for i in ids):
            raise ValueError("Qdrant point ids must be non-negative integers")
        for part in _batches(len(ids), self.batch_size):
            batch = self._models.Batch(
                ids=ids[part], vectors=vectors[part].tolist(),
                payloads=None if payloads is None else [dict(p) for p in payloads[part]],
            )
            self.client.upsert(self.collection, points=batch, wait=True)
        if ids and self._next_id is not None:
            self._next_id = max(self._next_id, max(ids) + 1)

    def delete(self, ids: Sequence[int]) -> None:
        """Remove the points ``ids``; ids not stored are ignored."""
        ids = [int(i) for i in ids]
        for part in _batches(len(ids), self.batch_size):
            selector = self._models.PointIdsList(points=ids[part])
            self.client.delete(self.collection, points_selector=selector, wait=True)

    def search(self, queries: np.ndarray, k: int,
               filter: PayloadFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, positions)``, each (n_queries, k'), best first; ``k' = min(k, size)``.

        ``positions`` are point ids (int64). ``filter`` (see :func:`make_filter`) keeps only points
        whose payload matches; when fewer than ``k'`` points match, missing slots have position -1
        and score ``-inf``.
        """
        queries = self._check_vectors(queries)
        k = min(k, self.size)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        positions = np.full((len(queries), k), -1, dtype=np.int64)
        if k == 0 or len(queries) == 0:
            return scores, positions
        models = self._models
        query_filter = make_filter(filter)
        params = models.SearchParams(exact=True) if self.exact else None
        for part in _batches(len(queries), self.batch_size):
            requests = [
                models.QueryRequest(query=q, limit=k, filter=query_filter, params=params,
                                    with_payload=False, with_vector=False)
                for q in queries[part].tolist()
            ]
            responses = self.client.query_batch_points(self.collection, requests=requests)
            for row, response in zip(range(part.start, part.stop), responses):
                for j, point in enumerate(response.points):
                    scores[row, j] = point.score
                    positions[row, j] = point.id
        return scores, positions

    def payloads(self, ids: Sequence[int]) -> list[dict | None]:
        """The payload of each of ``ids`` (``None`` for ids not stored), in order."""
        ids = [int(i) for i in ids]
        found = {p.id: p.payload or {} for p in self.client.retrieve(self.collection, ids)}
        return [found.get(i) for i in ids]

    def save(self, path: Path) -> None:
        """Make the folder ``path`` something :meth:`load` reopens.

        Embedded mode: ``path`` becomes a Qdrant local storage holding this collection (points
        copied ``batch_size`` at a time; a collection of that name already there is replaced). If
        the store already lives in ``path`` nothing is copied. Either way a small JSON file
        (``ragsift_qdrant.json``: dim, collection) is written beside the data.

        Server: nothing is copied; ``path/ragsift_qdrant.json`` records url, collection and dim,
        never the API key.
        """
        path = Path(path)
        pointer: dict[str, Any] = {"format": 1, "dim": self.dim, "collection": self.collection}
        if not self.is_embedded:
            pointer["url"] = self.location
        elif self.location == MEMORY or Path(self.location).resolve() != path.resolve():
            self._copy_to(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / POINTER_FILE).write_text(json.dumps(pointer, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path, api_key: str | None = None) -> QdrantStore:
        """Reopen what :meth:`save` wrote to ``path``.

        Embedded: the store lives in ``path`` from now on (writes go there); a store still open on
        that folder must be closed first. Server: reconnects to the recorded url with ``api_key``,
        else the environment variable ``QDRANT_API_KEY``.
        """
        path = Path(path)
        pointer_file = path / POINTER_FILE
        if not pointer_file.is_file():
            raise FileNotFoundError(f"{pointer_file} not found: not a folder written by "
                                    "QdrantStore.save")
        pointer = json.loads(pointer_file.read_text(encoding="utf-8"))
        if "url" in pointer:
            return cls(pointer["dim"], pointer["url"], pointer["collection"],
                       api_key=api_key or os.environ.get("QDRANT_API_KEY"))
        return cls(pointer["dim"], path, pointer["collection"])

    def close(self) -> None:
        """Release the client (and the lock on a local folder)."""
        self.client.close()

    def __enter__(self) -> QdrantStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_vectors(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected an array of shape (n, {self.dim}), got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise ValueError("vectors contain NaN or infinity")
        return vectors

    def _scroll(self, with_vectors: bool) -> Iterator[Any]:
        """Every stored point (id, and payload + vector when ``with_vectors``), in pages."""
        offset = None
        while True:
            records, offset = self.client.scroll(
                self.collection, limit=self.batch_size, offset=offset,
                with_payload=with_vectors, with_vectors=with_vectors,
            )
            yield from records
            if offset is None:
                return

    def _largest_id(self) -> int:
        """Largest stored id, -1 when empty (scans the ids once, then tracked)."""
        if self._next_id is None:
            self._next_id = max((int(p.id) for p in self._scroll(False)), default=-1) + 1
        return self._next_id - 1

    def _copy_to(self, path: Path) -> None:
        client_cls, models = _import_qdrant()
        target = client_cls(path=str(path))
        try:
            if target.collection_exists(self.collection):
                target.delete_collection(self.collection)
            target.create_collection(
                self.collection, vectors_config=models.VectorParams(size=self.dim,
                                                                    distance=models.Distance.DOT)
            )
            page: list[Any] = []
            for record in self._scroll(True):
                page.append(models.PointStruct(id=record.id, vector=record.vector,
                                               payload=record.payload or {}))
                if len(page) == self.batch_size:
                    target.upsert(self.collection, points=page, wait=True)
                    page = []
            if page:
                target.upsert(self.collection, points=page, wait=True)
        finally:
            target.close()


__all__ = ["QdrantStore", "make_filter", "PayloadFilter", "POINTER_FILE"]
