"""Vector store latency: filtered vs unfiltered search (faiss), and Milvus Lite vs faiss.

(a) faiss: ``--n`` random unit vectors (default 1,000,000, ``--dim`` 384) in a ``FaissStore``
    (exact, ``IndexFlatIP`` under an ``IndexIDMap2``), searched one query per call through the
    :class:`~ragsift.retrieve.vector_store.VectorStore` interface, unfiltered and with
    ``allowed=`` ids at each selectivity of ``--selectivities``. The allowed ids come from a numpy
    metadata column (``bucket``, a random permutation of 0..n-1: ``bucket < s * n`` keeps the
    fraction ``s``); they are computed once per selectivity and that time (``np.flatnonzero``
    over the column) is reported apart from the search latency.
(b) Milvus Lite vs faiss at ``--milvus-n`` vectors (default 100,000): the time to insert every
    vector (with its payload ``{"bucket": b}`` for Milvus) in batches of ``--batch-size``, then
    the query latency unfiltered and 10% filtered (Milvus: the native filter ``bucket < 0.1 n``;
    faiss: ``allowed=`` from the column, computed in every call). Both must return the same
    top-k ids (``same_top_k``).

Latencies are per query (one query per ``search`` call), p50 and p95 over ``--queries``
queries, after one warm-up call per setting. Milvus Lite runs in this process, in a temporary
folder. ``--threads`` sets faiss' OpenMP threads (default: faiss' own, one per core); on a
machine busy with other work, one thread gives steadier and often lower single-query latency.

Usage:
    python -m benchmarks.bench_vector_store [--n 1000000] [--milvus-n 100000] [--dim 384]
        [--queries 50] [--k 10] [--selectivities 0.001,0.01,0.1,0.5,1] [--threads N]
        [--skip-milvus] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from benchmarks.common import environment, report
from ragsift.retrieve.filters import Condition, Filter
from ragsift.retrieve.vector_store import FaissStore, VectorStore

CHUNK = 50_000
"""Vectors generated and inserted at a time (bounds the memory next to the store's own)."""


def unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """``n`` random float32 unit vectors (n, dim)."""
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def chunks(n: int, dim: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(ids, vectors)`` of ids 0..n-1 in pieces of ``CHUNK``, the same for the same seed."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        yield np.arange(start, stop), unit_vectors(rng, stop - start, dim)


def fill(store: VectorStore, n: int, dim: int, bucket: np.ndarray, seed: int) -> float:
    """Insert the ``n`` vectors with payloads ``{"bucket": b}``; returns the seconds taken
    (generating the vectors excluded)."""
    elapsed = 0.0
    for ids, vectors in chunks(n, dim, seed):
        payloads = [{"bucket": int(b)} for b in bucket[ids]]
        start = time.perf_counter()
        store.upsert(ids, vectors, payloads)
        elapsed += time.perf_counter() - start
    return elapsed


def latency(search: Callable[[np.ndarray], Any], queries: np.ndarray) -> dict[str, Any]:
    """p50 / p95 / mean milliseconds of ``search(query)`` (one (1, dim) query per call) after a
    warm-up call, and the ids of every query's results."""
    search(queries[:1])
    times, ids = [], []
    for row in range(len(queries)):
        start = time.perf_counter()
        result = search(queries[row:row + 1])
        times.append((time.perf_counter() - start) * 1000)
        ids.append(result[1][0])
    return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
            "mean_ms": float(np.mean(times)), "ids": np.stack(ids)}


def faiss_searcher(store: FaissStore, k: int, allowed: Callable[[], np.ndarray] | None = None
                   ) -> Callable[[np.ndarray], Any]:
    """One faiss search per call, restricted to the ids ``allowed()`` returns when given."""
    if allowed is None:
        return lambda q: store.search(q, k)
    return lambda q: store.search(q, k, allowed=allowed())


def bucket_filter(selectivity: float, n: int) -> Filter:
    """The native filter ``bucket < selectivity * n``."""
    return Filter((Condition("bucket", "lt", selectivity * n),))


def strip_ids(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` without the ids (for the JSON)."""
    return {key: value for key, value in result.items() if key != "ids"}


def filtered_vs_unfiltered(n: int, dim: int, k: int, n_queries: int, selectivities: list[float],
                           seed: int) -> dict[str, Any]:
    """Part (a): faiss latency unfiltered and at each selectivity (see the module doc)."""
    rng = np.random.default_rng(seed + 1)
    bucket = rng.permutation(n)
    queries = unit_vectors(rng, n_queries, dim)
    store = FaissStore(dim)
    insert_s = fill(store, n, dim, bucket, seed)
    rows = [{"selectivity": None, **strip_ids(latency(faiss_searcher(store, k), queries))}]
    for selectivity in selectivities:
        start = time.perf_counter()
        allowed = np.flatnonzero(bucket < selectivity * n)
        allowed_ms = (time.perf_counter() - start) * 1000
        result = latency(faiss_searcher(store, k, lambda ids=allowed: ids), queries)
        rows.append({"selectivity": selectivity, "allowed_ids": len(allowed),
                     "allowed_ms": allowed_ms, **strip_ids(result)})
    return {"part": "faiss filtered vs unfiltered", "n": n, "dim": dim, "k": k,
            "queries": n_queries, "insert_s": insert_s, "latency": rows}


def milvus_vs_faiss(n: int, dim: int, k: int, n_queries: int, batch_size: int,
                    seed: int) -> dict[str, Any]:
    """Part (b): insert time and latency (unfiltered, 10% filtered) of Milvus Lite and faiss."""
    from ragsift.retrieve.milvus_store import MilvusStore

    rng = np.random.default_rng(seed + 1)
    bucket = rng.permutation(n)
    queries = unit_vectors(rng, n_queries, dim)
    faiss_store = FaissStore(dim)
    out: dict[str, Any] = {"part": "Milvus Lite vs faiss", "n": n, "dim": dim, "k": k,
                           "queries": n_queries, "batch_size": batch_size}
    with tempfile.TemporaryDirectory() as folder, \
            MilvusStore(dim, str(Path(folder) / "bench.db"), batch_size=batch_size) as milvus:
        for name, store in (("faiss", faiss_store), ("milvus-lite", milvus)):
            insert_s = fill(store, n, dim, bucket, seed)
            out[name] = {"insert_s": insert_s, "inserts_per_s": n / insert_s}
        settings = {
            "unfiltered": (faiss_searcher(faiss_store, k), lambda q: milvus.search(q, k)),
            "10% filtered": (faiss_searcher(faiss_store, k,
                                            lambda: np.flatnonzero(bucket < 0.1 * n)),
                             lambda q: milvus.search(q, k, filter=bucket_filter(0.1, n))),
        }
        for setting, (faiss_search, milvus_search) in settings.items():
            ours, theirs = latency(faiss_search, queries), latency(milvus_search, queries)
            out["faiss"][setting] = strip_ids(ours)
            out["milvus-lite"][setting] = strip_ids(theirs)
            out[f"same_top_k ({setting})"] = bool(np.array_equal(ours["ids"], theirs["ids"]))
    return out


def table_rows(results: list[dict[str, Any]]) -> list[list[Any]]:
    """One row per (store, setting): n, insert seconds, p50 and p95 ms."""
    rows = []
    for r in results:
        if "latency" in r:
            for row in r["latency"]:
                setting = "unfiltered" if row["selectivity"] is None else (
                    f"allowed {row['selectivity']:.1%} ({row['allowed_ms']:.1f} ms for the ids)")
                rows.append(["faiss", r["n"], setting, f"{r['insert_s']:.1f}",
                             f"{row['p50_ms']:.2f}", f"{row['p95_ms']:.2f}"])
            continue
        for name in ("faiss", "milvus-lite"):
            for setting in ("unfiltered", "10% filtered"):
                s = r[name][setting]
                rows.append([name, r["n"], setting, f"{r[name]['insert_s']:.1f}",
                             f"{s['p50_ms']:.2f}", f"{s['p95_ms']:.2f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--n", type=int, default=1_000_000,
                        help="vectors for part (a), faiss (default 1,000,000)")
    parser.add_argument("--milvus-n", type=int, default=100_000,
                        help="vectors for part (b), Milvus Lite vs faiss (default 100,000)")
    parser.add_argument("--dim", type=int, default=384, help="vector size (default 384)")
    parser.add_argument("--queries", type=int, default=50,
                        help="queries timed per setting, one per call (default 50)")
    parser.add_argument("--k", type=int, default=10, help="neighbours per query (default 10)")
    parser.add_argument("--selectivities", default="0.001,0.01,0.1,0.5,1",
                        help="fractions kept by the filter in part (a), comma-separated")
    parser.add_argument("--batch-size", type=int, default=1024,
                        help="rows per Milvus insert request (default 1024)")
    parser.add_argument("--threads", type=int, default=None,
                        help="faiss OpenMP threads (default: faiss' own)")
    parser.add_argument("--skip-milvus", action="store_true", help="run part (a) only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, metavar="FILE", help="also write the JSON here")
    args = parser.parse_args()
    selectivities = [float(s) for s in args.selectivities.split(",")]
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    env = {**environment(["faiss-cpu", "numpy", "pymilvus", "milvus-lite"]),
           "faiss_threads": faiss.omp_get_max_threads()}
    results = [filtered_vs_unfiltered(args.n, args.dim, args.k, args.queries, selectivities,
                                      args.seed)]
    if not args.skip_milvus:
        results.append(milvus_vs_faiss(args.milvus_n, args.dim, args.k, args.queries,
                                       args.batch_size, args.seed))
    report(results, ["store", "n", "search", "insert s", "p50 ms", "p95 ms"],
           table_rows(results), args.out, benchmark="vector_store", environment=env)


if __name__ == "__main__":
    main()
