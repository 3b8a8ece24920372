"""ColBERT first-stage retrieval: the flat index per token-pooling factor, and the PLAID engine.

For each dataset, the corpus is encoded once with the ColBERT model (``--vectors-cache FILE``
keeps the token vectors, as float16, with the encoding time, to rerun without encoding); then

- flat engine, for each pool factor: the index is built from those vectors and searched with
  candidate generation (``--token-k`` nearest document tokens per query token; 0 skips it)
  and, for pool factor 1, exhaustively (MaxSim against every document: the quality ceiling);
- plaid engine (pool factor 1), for each ``--plaid`` setting ``NPROBE:NCANDIDATES:BITS``
  (``BITS`` 4, 8 or ``exact``): the index is trained and filled once per ``BITS`` and searched
  with each ``NPROBE:NCANDIDATES``.

Reported per row: nDCG@10, Recall@100, stored bytes per document, index build seconds (flat:
pooling + token index; plaid: k-means + residual coding + inverted file) next to the encoding
seconds, search seconds over all queries and queries per second (query encoding included), and
for plaid the nDCG@10 difference to exhaustive MaxSim; plus the MiniLM dense baseline.

Usage:
    python -m benchmarks.colbert_index --model models/colbert-minilm-scifact \
        [--data DIR ...] [--pool-factors 1,2,3,4] [--token-k 64] \
        [--plaid 4:256:8,2:128:8,4:256:4] [--vectors-cache FILE.npz] [--dense none] \
        [--out FILE.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import add_dataset_arguments, datasets, report
from ragsift.data.beir import BeirDataset
from ragsift.evaluate import evaluate
from ragsift.models.colbert import LateInteractionModel
from ragsift.retrieve import DenseRetriever, LateInteractionRetriever

METRICS = ("ndcg@10", "recall@100")
COLUMNS = ["dataset", "retriever", "pool factor", "settings", "nDCG@10", "ΔnDCG@10", "R@100",
           "bytes/doc", "build s", "search s", "queries/s"]


def plaid_settings(text: str) -> list[tuple[int, int, int | None]]:
    """``"4:256:8,2:128:exact"`` -> ``[(4, 256, 8), (2, 128, None)]``."""
    settings = []
    for item in filter(None, text.split(",")):
        nprobe, ncandidates, bits = item.split(":")
        settings.append((int(nprobe), int(ncandidates), None if bits == "exact" else int(bits)))
    return settings


def encoded_corpus(model: LateInteractionModel, data: BeirDataset, cache: Path | None
                   ) -> tuple[list[np.ndarray], float]:
    """Token vectors of every document and the seconds encoding took (read from ``cache``
    when it exists, written there otherwise)."""
    if cache is not None and cache.is_file():
        stored = np.load(cache)
        bounds = np.cumsum(stored["lengths"])[:-1]
        return np.split(stored["tokens"].astype(np.float32), bounds), float(stored["seconds"])
    started = time.perf_counter()
    vectors = model.encode([d.full_text() for d in data.corpus.values()], is_query=False,
                           show_progress=True)
    seconds = time.perf_counter() - started
    if cache is not None:
        np.savez(cache, tokens=np.concatenate(vectors).astype(np.float16),
                 lengths=np.array([len(v) for v in vectors]), seconds=seconds)
    return vectors, seconds


def measure(retriever: LateInteractionRetriever, data: BeirDataset, build_seconds: float
            ) -> dict[str, Any]:
    """Search every query once; quality, size and speed of the row."""
    started = time.perf_counter()
    run = retriever.search(data.queries, k=100)
    seconds = time.perf_counter() - started
    return {**evaluate(data.qrels, run, METRICS).mean,
            "bytes_per_document": retriever.index_bytes / retriever.num_documents,
            "tokens_per_document": retriever.num_tokens / retriever.num_documents,
            "build_seconds": build_seconds, "search_seconds": seconds,
            "queries_per_second": len(data.queries) / seconds, "queries": len(data.queries)}


def row(name: str, result: dict[str, Any], ceiling: float | None) -> list[Any]:
    delta = "-" if ceiling is None else f"{result['ndcg@10'] - ceiling:+.4f}"
    return [name, result["retriever"], result.get("pool_factor", "-"),
            result.get("settings", "-"), f"{result['ndcg@10']:.4f}", delta,
            f"{result['recall@100']:.4f}", f"{result.get('bytes_per_document', 0):.0f}",
            f"{result.get('build_seconds', 0):.1f}", f"{result.get('search_seconds', 0):.1f}",
            f"{result.get('queries_per_second', 0):.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_arguments(parser)
    parser.add_argument("--model", required=True, help="ColBERT folder")
    parser.add_argument("--pool-factors", default="1,2,3,4")
    parser.add_argument("--token-k", type=int, default=64, help="flat candidates (0: skip)")
    parser.add_argument("--plaid", default="4:256:8",
                        help="comma-separated NPROBE:NCANDIDATES:BITS settings ('' skips plaid)")
    parser.add_argument("--vectors-cache", type=Path, metavar="FILE.npz",
                        help="reuse (or write) the corpus token vectors and encoding time")
    parser.add_argument("--dense", default="minilm-l6",
                        help="dense baseline model (none: skip it)")
    args = parser.parse_args()
    factors = [int(f) for f in args.pool_factors.split(",")]
    model = LateInteractionModel.from_pretrained(args.model)
    results: list[dict[str, Any]] = []
    rows: list[list[Any]] = []

    def record(name: str, result: dict[str, Any], ceiling: float | None = None) -> None:
        results.append({"dataset": name, **result})
        rows.append(row(name, result, ceiling))
        print(" | ".join(map(str, rows[-1])), file=sys.stderr, flush=True)

    for name, data in datasets(args):
        vectors, encode_seconds = encoded_corpus(model, data, args.vectors_cache)
        if args.dense != "none":
            dense = DenseRetriever(args.dense)
            dense.index(data.corpus)
            record(name, {"retriever": f"dense:{args.dense}",
                          **evaluate(data.qrels, dense.search(data.queries, k=100),
                                     METRICS).mean})
        ceiling = None
        for factor in factors:
            flat_settings = ([args.token_k] if args.token_k else []) + \
                ([None] if factor == 1 else [])
            for token_k in flat_settings:
                retriever = LateInteractionRetriever(model, engine="flat", pool_factor=factor,
                                                     token_k=token_k)
                started = time.perf_counter()
                retriever.index_vectors(list(data.corpus), vectors)
                result = measure(retriever, data, time.perf_counter() - started)
                if token_k is None:
                    ceiling = result["ndcg@10"]
                record(name, {"retriever": "colbert-flat", "pool_factor": factor,
                              "settings": "exhaustive" if token_k is None else
                              f"token_k={token_k}", "encode_seconds": encode_seconds,
                              **result})
        by_bits: dict[int | None, list[tuple[int, int]]] = {}
        for nprobe, ncandidates, bits in plaid_settings(args.plaid):
            by_bits.setdefault(bits, []).append((nprobe, ncandidates))
        for bits, searches in by_bits.items():
            retriever = LateInteractionRetriever(model, engine="plaid", residual_bits=bits)
            started = time.perf_counter()
            retriever.index_vectors(list(data.corpus), vectors)
            build_seconds = time.perf_counter() - started
            for nprobe, ncandidates in searches:
                retriever.nprobe, retriever.ncandidates = nprobe, ncandidates
                result = measure(retriever, data, build_seconds)
                record(name, {"retriever": "colbert-plaid", "pool_factor": 1,
                              "settings": f"nprobe={nprobe} ncandidates={ncandidates} "
                                          f"residual={bits or 'exact'}",
                              "centroids": len(retriever.plaid.centroids),
                              "encode_seconds": encode_seconds,
                              "ndcg@10_minus_exhaustive": None if ceiling is None else
                              result["ndcg@10"] - ceiling, **result}, ceiling)
    report(results, COLUMNS, rows, args.out, model=str(Path(args.model)), token_k=args.token_k,
           plaid=args.plaid)


if __name__ == "__main__":
    main()
