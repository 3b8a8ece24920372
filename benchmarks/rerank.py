"""Cross-encoder reranking speed: sentence-transformers CrossEncoder vs ragsift's backends.

Backends: torch, onnx (fused fp32), onnx-int8, openvino (fp32) and openvino-bf16.

Same weights, same pairs: the BM25 top ``--depth`` documents of ``--limit-queries`` test queries
of each dataset, max length 512. For each system: pairs/s, the nDCG@10 of the reranked run, and
the achieved GFLOP/s (useful FLOPs of the real, unpadded tokens / time) against the fp32 matmul
roof measured in the same run. ``--model``: a cross-encoder folder; default: MiniLM-L6's encoder
with a fresh seeded head (speed is what it can show; its nDCG is not meaningful).

ragsift scores passages longer than the model takes with overlapping windows (``--long-doc max``),
so it can do more work than the peer, which truncates; ``--long-doc truncate`` compares equal work.

Usage:
    python -m benchmarks.rerank [--data DIR ...] [--limit-queries 10] [--depth 100] \
        [--model DIR] [--long-doc max|truncate] [--backends torch,onnx-int8,...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import add_dataset_arguments, datasets, report
from ragsift.evaluate import evaluate
from ragsift.rerank import CrossEncoderReranker, Reranker
from ragsift.retrieve import BM25Retriever


def matmul_roof(size: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of a size x size matmul with the current torch threads."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def useful_gflop(model_config, token_counts: list[int]) -> float:
    """FLOPs of a BERT-style encoder over sequences of the given lengths, in GFLOP.

    Per layer and sequence of n tokens with hidden size h and feed-forward size f:
    ``2 n (4 h^2 + 2 h f)`` for the projections and ``4 n^2 h`` for attention scores and mixing.
    """
    h, f = model_config.hidden_size, model_config.intermediate_size
    layers = model_config.num_hidden_layers
    total = sum(layers * (2 * n * (4 * h * h + 2 * h * f) + 4 * n * n * h) for n in token_counts)
    return total / 1e9


def default_model(folder: Path) -> Path:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ragsift.models.hub import resolve_model

    if not (folder / "config.json").is_file():
        torch.manual_seed(0)
        base = resolve_model("minilm-l6")
        model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
        tokenizer = AutoTokenizer.from_pretrained(base)
        CrossEncoderReranker(model, tokenizer, max_length=512, device="cpu").save(folder)
    return folder


BACKENDS = "torch,onnx,onnx-int8,openvino,openvino-bf16"


def benchmark(name: str, data, model: Path, depth: int, long_doc: str, threads: int,
              backends: list[str]) -> dict:
    from sentence_transformers import CrossEncoder

    bm25 = BM25Retriever()
    bm25.index(data.corpus)
    first = bm25.search(data.queries, depth)
    pairs, keys = [], []
    for qid, docs in first.items():
        for doc_id in docs:
            pairs.append((data.queries[qid], data.corpus[doc_id].full_text()))
            keys.append((qid, doc_id))

    def to_run(scores) -> dict:
        run: dict = {}
        for (qid, doc_id), s in zip(keys, np.asarray(scores).tolist()):
            run.setdefault(qid, {})[doc_id] = s
        return run

    peer = CrossEncoder(str(model), device="cpu", max_length=512)
    tokenizer = peer.tokenizer
    tokens = [min(len(ids), 512) for ids in tokenizer(
        [q for q, _ in pairs], [p for _, p in pairs], verbose=False)["input_ids"]]
    work = useful_gflop(peer.model.config, tokens)
    systems = {"sentence-transformers": lambda: peer.predict(pairs, batch_size=32)}
    for backend in backends:
        reranker = Reranker.load(model, backend=backend, max_length=512, long_doc=long_doc,
                                 device="cpu", threads=threads)
        systems[f"ragsift {backend}"] = lambda r=reranker: r.score(pairs)
    results = {}
    for label, fn in systems.items():
        start = time.perf_counter()
        scores = fn()
        seconds = time.perf_counter() - start
        results[label] = {
            "pairs_per_s": len(pairs) / seconds, "seconds": seconds,
            "gflop_per_s": work / seconds,
            "ndcg@10": evaluate(data.qrels, to_run(scores), ["ndcg@10"]).mean["ndcg@10"],
        }
    peer_rate = results["sentence-transformers"]["pairs_per_s"]
    for value in results.values():
        value["speedup_vs_peer"] = value["pairs_per_s"] / peer_rate
    return {"dataset": name, "queries": len(data.queries), "pairs": len(pairs),
            "useful_gflop": work, "systems": results,
            "bm25_ndcg@10": evaluate(data.qrels, first, ["ndcg@10"]).mean["ndcg@10"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataset_arguments(parser)
    parser.set_defaults(limit_queries=10)
    parser.add_argument("--model", type=Path, default=None, help="cross-encoder folder")
    parser.add_argument("--depth", type=int, default=100, help="BM25 candidates per query")
    parser.add_argument("--long-doc", default="max", help="ragsift long-document strategy")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--backends", default=BACKENDS,
                        help="ragsift backends, comma-separated (default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = args.model or default_model(Path.home() / ".cache" / "ragsift" / "bench-minilm-ce")
    roof = matmul_roof()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    results = [benchmark(name, data, model, args.depth, args.long_doc, args.threads, backends)
               for name, data in datasets(args)]
    for r in results:
        r["matmul_roof_gflop_per_s"] = roof
    rows = []
    for r in results:
        rows.append([r["dataset"], "bm25 (candidates)", "-", "-", "-", "-", r["bm25_ndcg@10"]])
        rows.extend([r["dataset"], label, s["pairs_per_s"], s["speedup_vs_peer"],
                     s["gflop_per_s"], s["gflop_per_s"] / roof, s["ndcg@10"]]
                    for label, s in r["systems"].items())
    report(results, ["dataset", "system", "pairs/s", "vs peer", "GFLOP/s", "of roof",
                     "ndcg@10"], rows, args.out)


if __name__ == "__main__":
    main()
