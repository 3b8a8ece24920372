"""Vector search in a Milvus collection: Milvus Lite (embedded, a local folder) or a server.

:class:`MilvusStore` is a :class:`~ragsift.retrieve.vector_store.VectorStore` over ``pymilvus``'
``MilvusClient``: vectors under int64 ids with a payload each, exact inner-product search
(``FLAT`` index, ``IP`` metric: the scores and ranking of faiss ``flat``), and
:class:`~ragsift.retrieve.filters.Filter` s evaluated by Milvus itself (``native_filter``).

Collection layout: an ``INT64`` primary key ``id`` (ids chosen by the caller), a
``FLOAT_VECTOR`` field ``vector`` and dynamic fields on: each payload key is stored as a
top-level dynamic field, as given. The collection has consistency level ``Strong`` and every
search and count asks for it, so they see every write made before them. On Milvus Lite the
first read after writes also flushes them (Lite scans unflushed rows one by one).

Filters. Milvus' own comparisons on dynamic fields do not follow ragsift's filter semantics
(Milvus Lite treats ``true`` as ``1``; no engine compares "any element of a list" with ``>``).
So :meth:`MilvusStore.upsert` also writes, for every payload key ``f`` that a filter can name,
three derived dynamic fields that the filter expressions test (see :func:`derived_fields`):

- ``ragsift_eq_<f>``: the scalars of the value (of every element, for a list) as kind-tagged
  strings ``"s:<text>"``, ``"n:<number>"`` (integral numbers written as integers, so ``1`` and
  ``1.0`` are one token) and ``"b:true"`` / ``"b:false"``; ``=`` / ``in`` become
  ``json_contains`` / ``json_contains_any`` on it;
- ``ragsift_lo_<f>`` / ``ragsift_hi_<f>``: the smallest / largest number (booleans excluded) as
  a float; ``>`` / ``>=`` test the largest and ``<`` / ``<=`` the smallest, which is "one of the
  numbers compares so" for a list and the number itself for a scalar.

A document without ``f`` has none of them, so no condition on ``f`` matches it. ``<f>`` is the
field name with ``_`` written ``__`` and ``-`` written ``_d``. Payload keys starting with
``ragsift_eq_``, ``ragsift_lo_`` or ``ragsift_hi_`` are refused, as are ``id`` and ``vector``.
Ranges compare float64 values (integers beyond 2**53 lose precision there; equality is exact).

Milvus Lite (``pip install 'ragsift[milvus]'`` installs ``pymilvus`` and ``milvus-lite``): a
uri ending in ``.db``, or any other local path (then the folder holding ``milvus.db``), runs an
embedded Milvus in this process. The folder is locked by the process that opens it; stores of
one process on the same folder share one embedded server, released when the last is closed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragsift.errors import IndexMismatchError, MissingExtraError, UsageError
from ragsift.retrieve.filters import FIELD_PATTERN, Condition, Filter
from ragsift.retrieve.vector_store import VectorStore, check_ids, check_vectors, empty_result

ID_FIELD, VECTOR_FIELD = "id", "vector"
LITE_FILE = "milvus.db"
"""The Milvus Lite data folder made inside a local path that does not end in ``.db``."""
EQ_PREFIX, LO_PREFIX, HI_PREFIX = "ragsift_eq_", "ragsift_lo_", "ragsift_hi_"
_SERVER_SCHEMES = ("http://", "https://", "tcp://", "unix:")
_RANGE_SYMBOL = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_lite_users: dict[Path, int] = {}
"""Open :class:`MilvusStore` s per Milvus Lite folder in this process."""


def _import_pymilvus() -> tuple[Any, Any]:
    """``(MilvusClient, DataType)``, or :class:`MissingExtraError` naming the ``milvus`` extra."""
    try:
        from pymilvus import DataType, MilvusClient
    except ImportError as exc:
        raise MissingExtraError("pymilvus", "milvus") from exc
    return MilvusClient, DataType


def _lite_manager() -> Any:
    """Milvus Lite's per-folder server manager, or :class:`MissingExtraError`."""
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError as exc:
        raise MissingExtraError("milvus-lite", "milvus") from exc
    return server_manager_instance


def lite_folder(uri: str) -> Path | None:
    """The Milvus Lite data folder ``uri`` names (absolute), or None for a server uri.

    ``x.db`` is itself the folder; another local path is the folder holding ``milvus.db``.
    """
    if uri.startswith(_SERVER_SCHEMES):
        return None
    path = Path(uri).expanduser().absolute()
    return path if path.suffix == ".db" else path / LITE_FILE


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def derived_key(prefix: str, field: str) -> str:
    """The dynamic field holding ``prefix`` data of payload key ``field`` (an identifier)."""
    return prefix + field.replace("_", "__").replace("-", "_d")


def _scalars(value: Any) -> Iterator[Any]:
    """The value itself, or the elements of a (nested) list, as a filter sees them."""
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _scalars(item)
    else:
        yield value


def equality_token(value: Any) -> str | None:
    """The kind-tagged string two scalars share exactly when a filter finds them equal.

    ``"s:<text>"``, ``"b:true"`` / ``"b:false"``, ``"n:<number>"`` (``1``, ``1.0`` and
    ``np.int64(1)`` all give ``"n:1"``; ``0.5`` gives ``"n:0.5"``); None for anything else
    (``None``, dicts, non-finite numbers, which equal no filter value).
    """
    if isinstance(value, (bool, np.bool_)):
        return "b:true" if value else "b:false"
    if isinstance(value, (int, np.integer)):
        return f"n:{int(value)}"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            return None
        return f"n:{int(value)}" if value.is_integer() else f"n:{value!r}"
    if isinstance(value, str):
        return f"s:{value}"
    return None


def derived_fields(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The dynamic fields that filters test for ``payload`` (see the module doc).

    Input: one payload. Output: ``{ragsift_eq_<f>: sorted tokens, ragsift_lo_<f>: float,
    ragsift_hi_<f>: float}`` for each key ``f`` a filter can name, leaving out empty entries.
    Raises UsageError for reserved keys and non-finite numbers (JSON cannot hold them).
    """
    out: dict[str, Any] = {}
    for field, value in payload.items():
        if field in (ID_FIELD, VECTOR_FIELD) or field.startswith((EQ_PREFIX, LO_PREFIX,
                                                                  HI_PREFIX)):
            raise UsageError(f"payload key {field!r} is reserved by MilvusStore (id, vector and "
                             f"the prefixes {EQ_PREFIX}, {LO_PREFIX}, {HI_PREFIX})")
        if not re.fullmatch(FIELD_PATTERN, field):
            continue
        scalars = list(_scalars(value))
        numbers = [float(v) for v in scalars if isinstance(v, (int, float, np.integer,
                                                               np.floating))
                   and not isinstance(v, (bool, np.bool_))]
        if not all(math.isfinite(v) for v in numbers):
            raise UsageError(f"payload key {field!r}: {value!r} holds NaN or infinity")
        tokens = sorted({t for t in map(equality_token, scalars) if t is not None})
        if tokens:
            out[derived_key(EQ_PREFIX, field)] = tokens
        if numbers:
            out[derived_key(LO_PREFIX, field)] = min(numbers)
            out[derived_key(HI_PREFIX, field)] = max(numbers)
    return out


def string_literal(text: str) -> str:
    """``text`` as a double-quoted Milvus string literal (``\\``, ``"``, newlines escaped)."""
    return '"' + "".join(_ESCAPES.get(char, char) for char in text) + '"'


def condition_expression(condition: Condition) -> str:
    """One condition as a Milvus boolean expression over the derived fields."""
    if condition.op in _RANGE_SYMBOL:
        prefix = HI_PREFIX if condition.op in ("gt", "ge") else LO_PREFIX
        return (f"{derived_key(prefix, condition.field)} {_RANGE_SYMBOL[condition.op]} "
                f"{float(condition.value)!r}")
    key = derived_key(EQ_PREFIX, condition.field)
    tokens = [string_literal(t) for t in dict.fromkeys(map(equality_token, condition.values))]
    if len(tokens) == 1:
        return f"json_contains({key}, {tokens[0]})"
    return f"json_contains_any({key}, [{', '.join(tokens)}])"


def filter_expression(filter: Filter | Mapping[str, Any] | None = None,
                      allowed: np.ndarray | Sequence[int] | None = None) -> str:
    """A Milvus filter expression for ``filter`` AND ``id in allowed``; ``""`` keeps all.

    Example:
        >>> filter_expression(Filter.parse("year>=2020"), allowed=[3, 5])
        'ragsift_hi_year >= 2020.0 and id in [3, 5]'
        >>> filter_expression({"lang": ["en", "de"]})
        'json_contains_any(ragsift_eq_lang, ["s:en", "s:de"])'
    """
    parts = [condition_expression(c) for c in Filter.parse(filter).conditions]
    if allowed is not None:
        parts.append(f"{ID_FIELD} in [{', '.join(map(str, check_ids(allowed).tolist()))}]")
    return " and ".join(parts)


class MilvusStore(VectorStore):
    """A Milvus collection of float32 vectors with int64 ids and payloads; exact IP search.

    Args:
        dim: vector size.
        uri: ``http(s)://host:19530`` (a server), or a local path: ``x.db`` or a folder (Milvus
            Lite, embedded; see the module doc).
        collection: collection name. An existing collection is reused (its vectors must have
            ``dim`` values); otherwise it is created (see the module doc for the layout).
        token: ``user:password`` or an API key for a server.
        batch_size: rows per upsert / delete request and queries per search request.

    Example (Milvus Lite in ``./vectors.db``)::

        with MilvusStore(2, "vectors.db") as store:
            store.upsert([7, 9], np.array([[1, 0], [0, 1]], dtype=np.float32),
                         [{"lang": "en"}, {"lang": "de"}])
            store.search(np.array([[0.2, 0.9]], dtype=np.float32), k=1,
                         filter=Filter.parse("lang=en"))    # ([[0.2]], [[7]])
    """

    kind = "milvus"
    native_filter = True

    def __init__(self, dim: int, uri: str | Path, collection: str = "ragsift",
                 token: str | None = None, batch_size: int = 1024) -> None:
        client_cls, data_type = _import_pymilvus()
        self.dim = int(dim)
        self.uri = str(uri)
        self.collection = collection
        self.batch_size = int(batch_size)
        self.lite_folder = lite_folder(self.uri)
        if self.lite_folder is not None:
            _lite_manager()
            self.lite_folder.parent.mkdir(parents=True, exist_ok=True)
        self.client = self._connect(client_cls, token)
        self._unflushed = False  # Milvus Lite: written since the last flush
        self._holds_lite = self.lite_folder is not None
        if self._holds_lite:
            _lite_users[self.lite_folder] = _lite_users.get(self.lite_folder, 0) + 1
        try:
            self._open_collection(client_cls, data_type)
        except BaseException:
            self.close()
            raise

    def _connect(self, client_cls: Any, token: str | None) -> Any:
        """A ``MilvusClient`` on the server, or on Milvus Lite started in this process."""
        if self.lite_folder is None:
            return client_cls(uri=self.uri, token=token or "")
        from pymilvus.exceptions import ConnectionConfigException

        try:
            return client_cls(uri=str(self.lite_folder))
        except ConnectionConfigException as exc:
            raise RuntimeError(
                f"Milvus Lite could not open {self.lite_folder}; one process at a time may "
                "open a Milvus Lite folder: close the store that holds it (or use a Milvus "
                "server for several processes)") from exc

    def _open_collection(self, client_cls: Any, data_type: Any) -> None:
        """Load the collection, after checking its vector size, or create it."""
        if self.client.has_collection(self.collection):
            fields = self.client.describe_collection(self.collection)["fields"]
            dims = [int(f["params"]["dim"]) for f in fields if f["name"] == VECTOR_FIELD]
            if not dims:
                raise IndexMismatchError(f"collection {self.collection!r} at {self.uri} has "
                                         f"no {VECTOR_FIELD!r} field: it was not made by "
                                         f"MilvusStore")
            if dims[0] != self.dim:
                raise IndexMismatchError(f"collection {self.collection!r} at {self.uri} "
                                         f"holds {dims[0]}-dim vectors, not {self.dim}")
            self.client.load_collection(self.collection)
            return
        schema = client_cls.create_schema(auto_id=False, enable_dynamic_field=True)
        schema.add_field(ID_FIELD, data_type.INT64, is_primary=True)
        schema.add_field(VECTOR_FIELD, data_type.FLOAT_VECTOR, dim=self.dim)
        index = self.client.prepare_index_params()
        index.add_index(field_name=VECTOR_FIELD, index_type="FLAT", metric_type="IP")
        self.client.create_collection(self.collection, schema=schema, index_params=index,
                                      consistency_level="Strong")

    def _written(self) -> None:
        """Note a write, for :meth:`_flush_writes` (Milvus Lite only)."""
        self._unflushed = self.lite_folder is not None

    def _flush_writes(self) -> None:
        """Before a read, flush what this store wrote since the last one (Milvus Lite only).

        Milvus Lite sees unflushed rows too, but scans them row by row: a search over 5,000
        unflushed rows takes ~200 ms, ~5 ms once flushed. A server needs no flush (its growing
        segments are searched directly, and ``Strong`` makes writes visible).
        """
        if self._unflushed:
            self.client.flush(self.collection)
            self._unflushed = False

    @property
    def size(self) -> int:
        """How many vectors are stored (a ``count(*)`` query)."""
        self._flush_writes()
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"],
                                 consistency_level="Strong")
        return int(rows[0]["count(*)"])

    def upsert(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray,
               payloads: Sequence[dict] | None = None) -> None:
        """Insert or replace ``ids`` (n non-negative ints) with ``vectors`` (n, dim).

        ``payloads`` (n JSON-able dicts) replace the stored payloads; with ``None`` replaced rows
        lose theirs. Each batch of ``batch_size`` rows is a delete of its ids, then an insert:
        Milvus Lite's upsert merges the new payload keys into the old row's, which would leave
        stale keys (and derived fields) behind. A search running meanwhile may miss those rows.
        """
        vectors = check_vectors(vectors, self.dim)
        ids = check_ids(ids, len(vectors))
        if payloads is not None and len(payloads) != len(vectors):
            raise ValueError(f"{len(payloads)} payloads for {len(vectors)} vectors")
        for part in _batches(len(ids), self.batch_size):
            rows = []
            for row, (point_id, vector) in enumerate(zip(ids[part], vectors[part]), part.start):
                payload = {} if payloads is None else dict(payloads[row])
                rows.append({**payload, **derived_fields(payload), ID_FIELD: int(point_id),
                             VECTOR_FIELD: vector})
            self.client.delete(self.collection, ids=ids[part].tolist())
            self.client.insert(self.collection, data=rows)
            self._written()

    def delete(self, ids: Sequence[int] | np.ndarray) -> None:
        """Remove ``ids``; ids not stored are ignored."""
        ids = check_ids(ids).tolist()
        for part in _batches(len(ids), self.batch_size):
            self.client.delete(self.collection, ids=ids[part])
            self._written()

    def search(self, queries: np.ndarray, k: int,
               filter: Filter | Mapping[str, Any] | None = None,
               allowed: np.ndarray | Sequence[int] | None = None,
               ) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)``, each (n_queries, k'), best first; ``k' = min(k, size)``.

        ``filter`` (a :class:`Filter`, or what :meth:`Filter.parse` reads) keeps the rows whose
        payload passes it; ``allowed`` (ids) keeps only those ids. When fewer than ``k'`` rows
        pass, missing slots have id -1 and score ``-inf``.
        """
        queries = check_vectors(queries, self.dim)
        expression = filter_expression(filter, allowed)
        if k <= 0 or len(queries) == 0 or (allowed is not None and len(allowed) == 0):
            return empty_result(len(queries), min(max(k, 0), self.size))
        self._flush_writes()
        hits: list[Any] = []
        for part in _batches(len(queries), self.batch_size):
            hits += self.client.search(
                self.collection, data=queries[part], limit=k, filter=expression,
                output_fields=[ID_FIELD], search_params={"metric_type": "IP"},
                consistency_level="Strong")
        # a row of k hits shows size >= k; otherwise count the rows to know k'
        width = k if any(len(row) == k for row in hits) else min(k, self.size)
        scores, ids = empty_result(len(queries), width)
        for row, row_hits in enumerate(hits):
            for j, hit in enumerate(row_hits):
                scores[row, j] = hit["distance"]
                ids[row, j] = hit["id"]
        return scores, ids

    def payloads(self, ids: Sequence[int] | np.ndarray) -> list[dict | None]:
        """The payload of each of ``ids`` (``None`` for ids not stored), in order."""
        ids = check_ids(ids).tolist()
        self._flush_writes()
        rows = self.client.get(self.collection, ids=ids, output_fields=["*"]) if ids else []
        found = {int(r[ID_FIELD]): {key: value for key, value in r.items()
                                    if key not in (ID_FIELD, VECTOR_FIELD)
                                    and not key.startswith((EQ_PREFIX, LO_PREFIX, HI_PREFIX))}
                 for r in rows}
        return [found.get(i) for i in ids]

    def close(self) -> None:
        """Close the client; the last store of a Milvus Lite folder in this process also stops
        its embedded server, which unlocks the folder."""
        self.client.close()
        if not self._holds_lite:
            return
        self._holds_lite = False
        _lite_users[self.lite_folder] -= 1
        if _lite_users[self.lite_folder] == 0:
            del _lite_users[self.lite_folder]
            _lite_manager().release_server(str(self.lite_folder))


__all__ = ["MilvusStore", "condition_expression", "derived_fields", "derived_key",
           "equality_token", "filter_expression", "lite_folder", "string_literal"]
