"""BM25 speed and quality: ragsift vs raw bm25s vs rank_bm25, on the same corpus and tokens.

All three score Lucene-style BM25 (k1=1.5, b=0.75) over the same tokens: lower-cased, English
stopwords removed, Snowball-stemmed (bm25s' tokenizer). rank_bm25's BM25Okapi is pure Python
and slow, so it scores only ``--rank-bm25-queries`` queries; its nDCG@10 is compared with
ragsift's on that same subset.

Usage:
    python -m benchmarks.bench_bm25 [--data DIR ...] [--repeats 3] [--out FILE.json]
"""

from __future__ import annotations

import argparse

import bm25s
import numpy as np
import Stemmer

from benchmarks.common import add_dataset_arguments, best_time, datasets, report
from ragsift.evaluate import evaluate
from ragsift.retrieve import BM25Retriever


def run_bm25s(data, k: int):
    ids = list(data.corpus)
    qids = list(data.queries)
    stemmer = Stemmer.Stemmer("english")

    def index():
        model = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
        tokens = bm25s.tokenize([d.full_text() for d in data.corpus.values()], stopwords="en",
                                stemmer=stemmer, show_progress=False)
        model.index(tokens, show_progress=False)
        return model

    def search(model):
        tokens = bm25s.tokenize([data.queries[q] for q in qids], stopwords="en",
                                stemmer=stemmer, show_progress=False)
        docs, scores = model.retrieve(tokens, k=min(k, len(ids)), show_progress=False)
        return {q: {ids[j]: float(s) for j, s in zip(row, srow) if s > 0}
                for q, row, srow in zip(qids, docs, scores)}

    return index, search


def rank_bm25_run(data, qids: list[str], k: int) -> tuple[float, float, dict]:
    """Index time, seconds per query and the run of rank_bm25 over bm25s' stemmed tokens."""
    import time

    from rank_bm25 import BM25Okapi

    ids = list(data.corpus)
    stemmer = Stemmer.Stemmer("english")
    start = time.perf_counter()
    doc_tokens = bm25s.tokenize([d.full_text() for d in data.corpus.values()], stopwords="en",
                                stemmer=stemmer, return_ids=False, show_progress=False)
    model = BM25Okapi(doc_tokens, k1=1.5, b=0.75)
    index_s = time.perf_counter() - start
    start = time.perf_counter()
    query_tokens = bm25s.tokenize([data.queries[q] for q in qids], stopwords="en",
                                  stemmer=stemmer, return_ids=False, show_progress=False)
    run = {}
    for qid, tokens in zip(qids, query_tokens):
        scores = model.get_scores(tokens)
        top = np.argsort(-scores)[:k]
        run[qid] = {ids[j]: float(scores[j]) for j in top if scores[j] > 0}
    return index_s, (time.perf_counter() - start) / max(len(qids), 1), run


def benchmark(name: str, data, repeats: int, k: int, rank_bm25_queries: int) -> dict:
    qrels = data.qrels
    ours = BM25Retriever()
    ours_index_s, _ = best_time(lambda: ours.index(data.corpus), repeats)
    ours_search_s, ours_run = best_time(lambda: ours.search(data.queries, k), repeats)
    index, search = run_bm25s(data, k)
    peer_index_s, model = best_time(index, repeats)
    peer_search_s, peer_run = best_time(lambda: search(model), repeats)

    # Same tokens, same scores: compare every query's top-10 scores.
    diffs = [abs(a - b) for q in peer_run
             for a, b in zip(sorted(ours_run[q].values(), reverse=True)[:10],
                             sorted(peer_run[q].values(), reverse=True)[:10])]
    n = len(data.queries)
    result = {
        "dataset": name, "documents": len(data.corpus), "queries": n,
        "ragsift": {"index_s": ours_index_s, "queries_per_s": n / ours_search_s,
                    "ndcg@10": evaluate(qrels, ours_run, ["ndcg@10"]).mean["ndcg@10"]},
        "bm25s": {"index_s": peer_index_s, "queries_per_s": n / peer_search_s,
                  "ndcg@10": evaluate(qrels, peer_run, ["ndcg@10"]).mean["ndcg@10"]},
        "max_abs_top10_score_diff": max(diffs, default=0.0),
    }
    result["speed_ratio_vs_bm25s"] = (result["ragsift"]["queries_per_s"]
                                      / result["bm25s"]["queries_per_s"])
    if rank_bm25_queries:
        subset = sorted(data.queries)[:rank_bm25_queries]
        index_s, per_query_s, run = rank_bm25_run(data, subset, k)
        sub_qrels = {q: qrels[q] for q in subset}
        result["rank_bm25"] = {
            "index_s": index_s, "queries_per_s": 1 / per_query_s, "queries_scored": len(subset),
            "ndcg@10_subset": evaluate(sub_qrels, run, ["ndcg@10"]).mean["ndcg@10"],
            "ragsift_ndcg@10_subset": evaluate(
                sub_qrels, {q: ours_run[q] for q in subset}, ["ndcg@10"]).mean["ndcg@10"],
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataset_arguments(parser)
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--rank-bm25-queries", type=int, default=100)
    args = parser.parse_args()
    results = [benchmark(name, data, args.repeats, args.k, args.rank_bm25_queries)
               for name, data in datasets(args)]
    rows = []
    for r in results:
        for system in ("ragsift", "bm25s"):
            s = r[system]
            rows.append([r["dataset"], system, s["index_s"], s["queries_per_s"], s["ndcg@10"]])
        if "rank_bm25" in r:
            s = r["rank_bm25"]
            rows.append([r["dataset"], f"rank_bm25 ({s['queries_scored']} q)", s["index_s"],
                         s["queries_per_s"],
                         f"{s['ndcg@10_subset']:.4f} (ragsift {s['ragsift_ndcg@10_subset']:.4f})"])
        rows.append([r["dataset"], "ragsift / bm25s speed", "", r["speed_ratio_vs_bm25s"],
                     f"max abs score diff {r['max_abs_top10_score_diff']:.2g}"])
    report(results, ["dataset", "system", "index s", "queries/s", "ndcg@10"], rows, args.out)


if __name__ == "__main__":
    main()
