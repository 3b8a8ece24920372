"""Load test of ``ragsift serve``: reranking throughput over HTTP vs offline batch scoring.

The server runs in a child process on 127.0.0.1 (``ragsift.cli.serve``) with one cross-encoder;
``--clients`` threads of this process send ``--requests`` Cohere-style ``/v2/rerank`` requests
of ``--docs`` documents each (a query of the first dataset and a seeded sample of its corpus),
stopping early after ``--max-seconds``. Reported: served pairs/s against the offline pairs/s of
``Reranker.score`` on the same pairs with the same model in one call, p50/p99 latency, errors,
micro-batches (from ``/metrics``) and the largest difference between a served score and the
offline ``score(pairs, calibrated=True)``. ``--model``: a cross-encoder folder; default:
MiniLM-L6's encoder with a fresh seeded head (see :mod:`benchmarks.rerank`).

Usage:
    python -m benchmarks.serve_load [--requests 200] [--docs 10] [--clients 32]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from benchmarks.common import add_dataset_arguments, datasets, environment, report
from benchmarks.rerank import default_model
from ragsift.rerank import Reranker

SERVER = ("import argparse, sys\n"
          "from ragsift.cli import serve\n"
          "parser = argparse.ArgumentParser()\n"
          "serve.register(parser.add_subparsers())\n"
          "sys.exit(serve.run(parser.parse_args(sys.argv[1:])))\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_requests(data, n: int, docs: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    """``n`` (query, documents) requests: queries in turn, ``docs`` seeded corpus samples."""
    rng = random.Random(seed)
    queries = [data.queries[q] for q in sorted(data.queries)]
    texts = [doc.full_text() for doc in data.corpus.values()]
    return [(queries[i % len(queries)], rng.sample(texts, docs)) for i in range(n)]


def start_server(config: dict, folder: Path, port: int, timeout: float = 300) -> subprocess.Popen:
    """Start the server process and wait until ``/health`` answers."""
    config_file = folder / "serve.yaml"
    config_file.write_text(json.dumps(config))
    process = subprocess.Popen([sys.executable, "-c", SERVER, "serve", "--config",
                                str(config_file), "--port", str(port)],
                               stdout=subprocess.DEVNULL)  # the access log
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"server not up after {timeout:.0f}s")


def batch_stats(url: str) -> tuple[int, float]:
    """(micro-batches run, requests they served) for the reranker, from /metrics."""
    values = {}
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("ragsift_batch_size_") and 'model="reranker:bench"' in line:
            name, value = line.split(" ")
            values[name.split("{")[0]] = float(value)
    return int(values.get("ragsift_batch_size_count", 0)), values.get("ragsift_batch_size_sum", 0)


def load(url: str, requests: list[tuple[str, list[str]]], clients: int,
         max_seconds: float) -> dict:
    """Send ``requests`` from ``clients`` threads; latencies (s), errors, scores by request."""
    latencies: list[float] = []
    scores: dict[int, np.ndarray] = {}
    errors: list[str] = []
    lock = threading.Lock()
    todo = iter(range(len(requests)))
    deadline = time.monotonic() + max_seconds

    def client() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while time.monotonic() < deadline:
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                query, docs = requests[i]
                start = time.perf_counter()
                try:
                    response = http.post("/v2/rerank", json={"model": "bench", "query": query,
                                                             "documents": docs})
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(repr(exc))
                    continue
                seconds = time.perf_counter() - start
                with lock:
                    if response.status_code != 200:
                        errors.append(f"{response.status_code}: {response.text[:200]}")
                        continue
                    latencies.append(seconds)
                    row = np.zeros(len(docs), dtype=np.float32)
                    for r in response.json()["results"]:
                        row[r["index"]] = r["relevance_score"]
                    scores[i] = row

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"seconds": time.perf_counter() - start, "latencies": latencies, "scores": scores,
            "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataset_arguments(parser, queries=False)
    parser.add_argument("--model", type=Path, default=None, help="cross-encoder folder")
    parser.add_argument("--requests", type=int, default=200, help="requests to send")
    parser.add_argument("--docs", type=int, default=10, help="documents per request")
    parser.add_argument("--clients", type=int, default=32, help="concurrent client threads")
    parser.add_argument("--max-seconds", type=float, default=300,
                        help="stop sending after this long")
    parser.add_argument("--max-length", type=int, default=256, help="reranker max tokens")
    parser.add_argument("--long-doc", default="max",
                        help="long-document strategy (truncate: one window per pair)")
    parser.add_argument("--max-wait-ms", type=float, default=5, help="micro-batch wait")
    parser.add_argument("--max-batch-tokens", type=int, default=16384,
                        help="micro-batch token budget")
    args = parser.parse_args()
    model = args.model or default_model(Path.home() / ".cache" / "ragsift" / "bench-minilm-ce")
    name, data = datasets(args)[0]
    requests = make_requests(data, args.requests, args.docs)
    pairs = [(query, doc) for query, docs in requests for doc in docs]

    options = {"max_length": args.max_length, "long_doc": args.long_doc, "device": "cpu"}
    reranker = Reranker.load(model, **options)
    reranker.score(pairs[: args.docs])  # warm-up
    start = time.perf_counter()
    offline = reranker.score(pairs, calibrated=True).reshape(len(requests), args.docs)
    offline_seconds = time.perf_counter() - start
    del reranker

    config = {"rerankers": {"bench": {"model": str(model), "options": options}},
              "limits": {"max_wait_ms": args.max_wait_ms,
                         "max_batch_tokens": args.max_batch_tokens}}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(config, Path(tmp), port)
        try:
            load(url, requests[:2], 1, args.max_seconds)  # warm-up
            batches_before, served_before = batch_stats(url)
            run = load(url, requests, args.clients, args.max_seconds)
            batches_after, served_after = batch_stats(url)
        finally:
            server.terminate()
            server.wait(30)

    latencies_ms = np.array(run["latencies"]) * 1000
    done = sorted(run["scores"])
    diff = max((float(np.abs(run["scores"][i] - offline[i]).max()) for i in done), default=None)
    batches = batches_after - batches_before
    result = {
        "dataset": name, "model": str(model), "clients": args.clients,
        "requests_sent": len(done) + len(run["errors"]), "requests_ok": len(done),
        "docs_per_request": args.docs, "errors": len(run["errors"]),
        "error_examples": run["errors"][:3], "seconds": run["seconds"],
        "served_pairs_per_s": len(done) * args.docs / run["seconds"],
        "offline_pairs_per_s": len(pairs) / offline_seconds,
        "p50_ms": float(np.percentile(latencies_ms, 50)) if done else None,
        "p99_ms": float(np.percentile(latencies_ms, 99)) if done else None,
        "batches": batches,
        "requests_per_batch": (served_after - served_before) / batches if batches else None,
        "max_abs_score_diff_vs_offline": diff,
    }
    result["served_vs_offline"] = result["served_pairs_per_s"] / result["offline_pairs_per_s"]
    rows = [[name, args.clients, result["requests_ok"], result["errors"],
             result["served_pairs_per_s"], result["offline_pairs_per_s"],
             result["served_vs_offline"], result["p50_ms"], result["p99_ms"],
             result["requests_per_batch"]]]
    report([result], ["dataset", "clients", "requests", "errors", "served pairs/s",
                      "offline pairs/s", "served/offline", "p50 ms", "p99 ms", "req/batch"],
           rows, args.out,
           environment=environment(["torch", "transformers", "fastapi", "uvicorn", "httpx"]))


if __name__ == "__main__":
    main()
