"""Vector search in a Qdrant collection: embedded (in memory or a local folder) or a server.

:class:`QdrantStore` is a :class:`~ragsift.retrieve.vector_store.VectorStore` (``size``,
``upsert``, ``delete``, ``search`` with ``filter=`` and ``allowed=``) with what the faiss store
also has (``add``, ``save``, ``load``): points with chosen integer ids and a payload (a JSON-able
dict) each, filtered by Qdrant itself (``native_filter``).

Scores are inner products ``<q, d>`` (Qdrant's ``Dot`` distance); with normalised vectors that is
cosine similarity. The ids returned by ``search`` are the point ids.

A :class:`~ragsift.retrieve.filters.Filter` becomes a Qdrant filter on the top-level payload keys
with the semantics of :meth:`Filter.matches <ragsift.retrieve.filters.Filter.matches>` (see
:func:`make_filter`). Qdrant unpacks one level of lists: a payload list of lists is not searched
inside its inner lists, and Qdrant compares numbers as float64 in ranges (integers beyond
2**53 lose precision).

Needs the optional dependency ``qdrant-client`` (``pip install 'ragsift[qdrant]'``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragsift.errors import IndexMismatchError, MissingExtraError
from ragsift.retrieve.filters import Condition, Filter
from ragsift.retrieve.vector_store import VectorStore, check_ids, check_vectors, empty_result

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from qdrant_client.http import models as qmodels

MEMORY = ":memory:"
POINTER_FILE = "ragsift_qdrant.json"
"""File written by :meth:`QdrantStore.save` that :meth:`QdrantStore.load` reads."""

_RANGE_BOUND = {"gt": "gt", "ge": "gte", "lt": "lt", "le": "lte"}
"""Filter range operators -> the keyword of ``qdrant_client`` ``Range``."""


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


def make_filter(filter: Filter | Mapping[str, Any] | None = None,
                allowed: np.ndarray | Sequence[int] | None = None) -> qmodels.Filter | None:
    """Translate a :class:`Filter` (or a dict :meth:`Filter.parse` reads) and allowed ids into a
    Qdrant ``Filter``; ``None`` when both are empty.

    Inputs: ``filter`` (conditions on top-level payload keys, all of which must hold) and
    ``allowed`` (point ids; ``None`` means every id). Output: a ``qdrant_client`` ``Filter``
    with one entry in ``must`` per condition and a ``HasIdCondition`` for ``allowed``.

    Each condition keeps the semantics of :meth:`Condition.matches`: strings and booleans match
    with ``MatchValue`` / ``MatchAny`` (Qdrant keeps ``True`` and ``1`` apart); a number ``v``
    matches with ``Range(gte=v, lte=v)`` so that integer and float payloads are both found and
    booleans are not; ranges use ``Range`` (numbers only). Several kinds in one ``in`` list
    become a nested ``should``. Qdrant matches a payload list when one element matches.
    Raises :class:`~ragsift.retrieve.filters.FilterError` for a filter it cannot read.
    """
    filter = Filter.parse(filter)
    if not filter and allowed is None:
        return None
    _, models = _import_qdrant()
    must: list[Any] = [_condition(models, c) for c in filter.conditions]
    if allowed is not None:
        must.append(models.HasIdCondition(has_id=check_ids(allowed).tolist()))
    return models.Filter(must=must)


def _condition(models: Any, condition: Condition) -> Any:
    """One filter condition as a Qdrant ``FieldCondition``, or a ``Filter`` whose ``should``
    lists one ``FieldCondition`` per kind of value (see :func:`make_filter`)."""
    key = condition.field
    if condition.op in _RANGE_BOUND:
        bound = {_RANGE_BOUND[condition.op]: float(condition.value)}
        return models.FieldCondition(key=key, range=models.Range(**bound))
    strings = list(dict.fromkeys(str(v) for v in condition.values if isinstance(v, str)))
    bools = dict.fromkeys(bool(v) for v in condition.values if isinstance(v, (bool, np.bool_)))
    numbers = dict.fromkeys(float(v) for v in condition.values
                            if not isinstance(v, (str, bool, np.bool_)))
    alternatives = [models.FieldCondition(key=key, match=models.MatchValue(value=v))
                    for v in bools]
    alternatives += [models.FieldCondition(key=key, range=models.Range(gte=v, lte=v))
                     for v in numbers]
    if len(strings) == 1:
        alternatives.append(models.FieldCondition(key=key,
                                                  match=models.MatchValue(value=strings[0])))
    elif strings:
        alternatives.append(models.FieldCondition(key=key, match=models.MatchAny(any=strings)))
    return alternatives[0] if len(alternatives) == 1 else models.Filter(should=alternatives)


class QdrantStore(VectorStore):
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
    ``flat``), evaluates filters point by point in Python, and qdrant-client warns above 20,000
    points. In a local folder every point written (by ``add``, ``upsert`` or ``save``) is a
    separate SQLite commit: about 0.2-15 ms per point depending on the disk.

    Example:
        >>> store = QdrantStore(2)
        >>> store.add(np.array([[1, 0], [0, 1]], dtype=np.float32), [{"lang": "en"}, {}])
        >>> store.search(np.array([[0.2, 0.9]], dtype=np.float32), k=1)[1].tolist()
        [[1]]
        >>> store.search(np.array([[0.2, 0.9]], dtype=np.float32), k=1,
        ...              filter=Filter.parse("lang=en"))[1].tolist()
        [[0]]
    """

    kind = "qdrant"
    native_filter = True

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
                raise IndexMismatchError(
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
        vectors = check_vectors(vectors, self.dim)
        start = self._largest_id() + 1
        self.upsert(np.arange(start, start + len(vectors)), vectors, payloads)

    def upsert(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray,
               payloads: Sequence[dict] | None = None) -> None:
        """Insert or replace the points ``ids`` (n non-negative ints) with ``vectors`` (n, dim).

        ``payloads`` (n JSON-able dicts) replace the stored payloads; with ``None`` replaced points
        lose theirs. Uploads ``batch_size`` points per request.
        """
        vectors = check_vectors(vectors, self.dim)
        ids = check_ids(ids, len(vectors)).tolist()
        if payloads is not None and len(payloads) != len(vectors):
            raise ValueError(f"{len(payloads)} payloads for {len(vectors)} vectors")
        for part in _batches(len(ids), self.batch_size):
            batch = self._models.Batch(
                ids=ids[part], vectors=vectors[part].tolist(),
                payloads=None if payloads is None else [dict(p) for p in payloads[part]],
            )
            self.client.upsert(self.collection, points=batch, wait=True)
        if ids and self._next_id is not None:
            self._next_id = max(self._next_id, max(ids) + 1)

    def delete(self, ids: Sequence[int] | np.ndarray) -> None:
        """Remove the points ``ids``; ids not stored are ignored."""
        ids = check_ids(ids).tolist()
        for part in _batches(len(ids), self.batch_size):
            selector = self._models.PointIdsList(points=ids[part])
            self.client.delete(self.collection, points_selector=selector, wait=True)

    def search(self, queries: np.ndarray, k: int,
               filter: Filter | Mapping[str, Any] | None = None,
               allowed: np.ndarray | Sequence[int] | None = None,
               ) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)``, each (n_queries, k'), best first; ``k' = min(k, size)``.

        ``filter`` (a :class:`Filter`, or a dict such as ``{"source": "wiki", "year": {">=":
        2020}}``) keeps the points whose payload passes it; ``allowed`` (point ids) keeps only
        those ids. When fewer than ``k'`` points pass, missing slots have id -1 and score
        ``-inf``.
        """
        queries = check_vectors(queries, self.dim)
        query_filter = make_filter(filter, allowed)
        k = min(k, self.size)
        scores, ids = empty_result(len(queries), k)
        if k == 0 or len(queries) == 0 or (allowed is not None and len(allowed) == 0):
            return scores, ids
        models = self._models
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
                    ids[row, j] = point.id
        return scores, ids

    def payloads(self, ids: Sequence[int]) -> list[dict | None]:
        """The payload of each of ``ids`` (``None`` for ids not stored), in order."""
        ids = check_ids(ids).tolist()
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


__all__ = ["QdrantStore", "make_filter", "POINTER_FILE"]
