"""ColBERT first-stage retrieval: index size and quality per token-pooling factor.

For each dataset, the corpus is encoded once with the ColBERT model; then for each pool factor
the index is built from those vectors and searched with candidate generation (``token_k``
nearest document tokens per query token) and, for the ceiling, exhaustively (MaxSim against
every document). Reported: nDCG@10, Recall@100, stored bytes per document (float16 token
vectors + offsets; the faiss token index adds 4x that at float32 for ``flat``), index and
search seconds; and the MiniLM dense baseline on the same queries.

Usage:
    python -m benchmarks.colbert_index --model models/colbert-minilm-scifact \
        [--data DIR ...] [--pool-factors 1,2,3,4] [--token-k 64] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.common import add_dataset_arguments, datasets, report
from ragsift.evaluate import evaluate
from ragsift.models.late_interaction import LateInteractionModel
from ragsift.retrieve import DenseRetriever, LateInteractionRetriever

METRICS = ("ndcg@10", "recall@100")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_arguments(parser)
    parser.add_argument("--model", required=True, help="ColBERT folder")
    parser.add_argument("--pool-factors", default="1,2,3,4")
    parser.add_argument("--token-k", type=int, default=64)
    parser.add_argument("--dense", default="minilm-l6",
                        help="dense baseline model (none: skip it)")
    args = parser.parse_args()
    factors = [int(f) for f in args.pool_factors.split(",")]
    model = LateInteractionModel.from_pretrained(args.model)
    results, rows = [], []
    for name, data in datasets(args):
        started = time.perf_counter()
        texts = [d.full_text() for d in data.corpus.values()]
        vectors = model.encode(texts, is_query=False, show_progress=True)
        encode_seconds = time.perf_counter() - started
        if args.dense != "none":
            dense = DenseRetriever(args.dense)
            dense.index(data.corpus)
            baseline = evaluate(data.qrels, dense.search(data.queries, k=100), METRICS).mean
            results.append({"dataset": name, "retriever": f"dense:{args.dense}", **baseline})
            rows.append([name, f"dense:{args.dense}", "-", "-", f"{baseline['ndcg@10']:.4f}",
                         f"{baseline['recall@100']:.4f}", "-", "-"])
        for factor in factors:
            for token_k in ([args.token_k, None] if factor == 1 else [args.token_k]):
                retriever = LateInteractionRetriever(model, pool_factor=factor, token_k=token_k)
                started = time.perf_counter()
                retriever.index_vectors(list(data.corpus), vectors)
                index_seconds = time.perf_counter() - started
                started = time.perf_counter()
                run = retriever.search(data.queries, k=100)
                search_seconds = time.perf_counter() - started
                means = evaluate(data.qrels, run, METRICS).mean
                per_doc = retriever.index_bytes / retriever.num_documents
                label = "exhaustive" if token_k is None else f"token_k={token_k}"
                results.append({"dataset": name, "retriever": "colbert", "pool_factor": factor,
                                "candidates": label, **means, "bytes_per_document": per_doc,
                                "tokens_per_document": len(retriever.tokens) /
                                retriever.num_documents,
                                "encode_seconds": encode_seconds,
                                "pool_and_index_seconds": index_seconds,
                                "search_seconds": search_seconds,
                                "queries": len(data.queries)})
                rows.append([name, "colbert", factor, label, f"{means['ndcg@10']:.4f}",
                             f"{means['recall@100']:.4f}", f"{per_doc:.0f}",
                             f"{search_seconds:.1f}"])
                print(" | ".join(map(str, rows[-1])), file=sys.stderr, flush=True)
    report(results, ["dataset", "retriever", "pool factor", "candidates", "nDCG@10",
                     "R@100", "bytes/doc", "search s"], rows, args.out,
           model=str(Path(args.model)), token_k=args.token_k)


if __name__ == "__main__":
    main()
