"""BM25 speed and quality: ragsift BM25Retriever vs bm25s vs rank_bm25, same corpus and tokens.

- ragsift: ``BM25Retriever()`` (Lucene BM25, k1=1.5, b=0.75, bm25s' ``Tokenizer`` with
  stopwords ``"en"`` and PyStemmer ``english``); ``index(corpus)``, ``search(queries, k)``.
- bm25s: ``bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer("english"))``,
  ``bm25s.BM25(method="lucene", k1=1.5, b=0.75)``, ``retrieve(query_tokens, k)``.
- rank_bm25: ``BM25Okapi(k1=1.5, b=0.75)`` over bm25s' tokens as strings. Its scoring differs
  (Robertson idf with an epsilon floor, tf times (k1 + 1)), and it is pure Python: it scores only
  ``--rank-bm25-queries`` queries, and its nDCG@10 is compared with ragsift's on that subset.

Every document is ``title + " " + text``. Index time includes tokenizing the corpus; query time
includes tokenizing the queries. Times are the best of ``--repeats`` (index) and
``--search-repeats`` (search) runs. The script also checks that ragsift and bm25s see the same
tokens and return the same top-10 scores (max abs difference).
Targets: ragsift / bm25s queries/s >= 0.95, identical nDCG@10.

Usage:
    python -m benchmarks.bench_bm25 [--data DIR ...] [--limit-docs N] [--limit-queries N]
        [--repeats 3] [--search-repeats 10] [--k 100] [--rank-bm25-queries 100] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import time

import bm25s
import numpy as np
import Stemmer

from benchmarks.common import add_dataset_arguments, best_time, datasets, environment, report
from ragsift.data.beir import BeirDataset
from ragsift.evaluate import evaluate
from ragsift.retrieve import BM25Retriever
from ragsift.types import Qrels, Run

K1, B = 1.5, 0.75
SPEED_TARGET = 0.95


def ndcg10(qrels: Qrels, run: Run) -> float:
    return evaluate(qrels, run, ["ndcg@10"]).mean["ndcg@10"]


def bm25s_tokens(texts: list[str], return_ids: bool = True):
    return bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"),
                          return_ids=return_ids, show_progress=False)


def bm25s_system(data: BeirDataset, k: int):
    """bm25s used directly: ``index()`` returns the model, ``search(model)`` a run."""
    ids = np.asarray(list(data.corpus), dtype=object)
    texts = [d.full_text() for d in data.corpus.values()]
    qids = list(data.queries)
    k = min(k, len(ids))

    def index():
        model = bm25s.BM25(method="lucene", k1=K1, b=B)
        model.index(bm25s_tokens(texts), show_progress=False)
        return model

    def search(model) -> Run:
        tokens = bm25s_tokens([data.queries[q] for q in qids])
        docs, scores = model.retrieve(tokens, k=k, show_progress=False)
        run: Run = {}
        for qid, row_docs, row_scores in zip(qids, docs, scores):
            keep = row_scores > 0
            run[qid] = dict(zip(ids[row_docs[keep]].tolist(), row_scores[keep].tolist()))
        return run

    return index, search


def same_tokens(ours: BM25Retriever, data: BeirDataset) -> dict:
    """Whether ragsift's tokenizer yields bm25s.tokenize's tokens, for documents and queries.

    Query tokens outside the corpus vocabulary are dropped by both at retrieval, so they are left
    out here, as is ``""`` (both tokenizers' marker for a text with no token)."""
    texts = [d.full_text() for d in data.corpus.values()]
    peer_docs = bm25s_tokens(texts, return_ids=False)
    ours_docs = ours.tokenizer.decode(
        ours.tokenizer.tokenize(texts, update_vocab=False, return_as="ids", show_progress=False))
    vocab = set(ours.tokenizer.get_vocab_dict())
    query_texts = list(data.queries.values())
    peer_queries = [[t for t in q if t and t in vocab]
                    for q in bm25s_tokens(query_texts, return_ids=False)]
    ours_queries = [[t for t in q if t]
                    for q in ours.tokenizer.decode(ours.tokenize_queries(query_texts))]
    return {"documents": ours_docs == peer_docs, "queries": ours_queries == peer_queries}


def top10_check(ours: Run, peer: Run) -> dict:
    """Max abs difference of the top-10 scores (rank by rank) and how many queries differ in
    their number of hits or their top-10 document ids (ties may reorder equal scores)."""
    max_diff, length_mismatch, id_mismatch = 0.0, 0, 0
    for qid, peer_scores in peer.items():
        a = sorted(ours.get(qid, {}).items(), key=lambda x: -x[1])[:10]
        b = sorted(peer_scores.items(), key=lambda x: -x[1])[:10]
        if len(a) != len(b):
            length_mismatch += 1
        for (_, sa), (_, sb) in zip(a, b):
            max_diff = max(max_diff, abs(sa - sb))
        if {d for d, _ in a} != {d for d, _ in b}:
            id_mismatch += 1
    return {"max_abs_top10_score_diff": max_diff, "queries_with_other_hit_count": length_mismatch,
            "queries_with_other_top10_ids": id_mismatch, "queries_compared": len(peer)}


def rank_bm25_system(data: BeirDataset, qids: list[str], k: int, repeats: int) -> dict:
    """Index time (best of ``repeats``), queries/s over ``qids`` (one pass) and the run."""
    from rank_bm25 import BM25Okapi

    ids = list(data.corpus)
    texts = [d.full_text() for d in data.corpus.values()]
    index_s, model = best_time(
        lambda: BM25Okapi(bm25s_tokens(texts, return_ids=False), k1=K1, b=B), repeats)
    start = time.perf_counter()
    run: Run = {}
    for qid, tokens in zip(qids, bm25s_tokens([data.queries[q] for q in qids], return_ids=False)):
        scores = model.get_scores(tokens)
        top = np.argsort(-scores, kind="stable")[:k]
        run[qid] = {ids[j]: float(scores[j]) for j in top if scores[j] > 0}
    search_s = time.perf_counter() - start
    return {"index_s": index_s, "search_s": search_s, "queries_scored": len(qids),
            "queries_per_s": len(qids) / search_s if search_s else float("inf"), "run": run}


def benchmark(name: str, data: BeirDataset, repeats: int, search_repeats: int, k: int,
              rank_bm25_queries: int) -> dict:
    qrels, n = data.qrels, len(data.queries)

    ours = BM25Retriever(method="lucene", k1=K1, b=B, stopwords="en", stemmer="english")
    ours_index_s, _ = best_time(lambda: ours.index(data.corpus), repeats)
    ours_search_s, ours_run = best_time(lambda: ours.search(data.queries, k), search_repeats)

    index, search = bm25s_system(data, k)
    peer_index_s, model = best_time(index, repeats)
    peer_search_s, peer_run = best_time(lambda: search(model), search_repeats)

    ours_ndcg, peer_ndcg = ndcg10(qrels, ours_run), ndcg10(qrels, peer_run)
    result = {
        "dataset": name, "documents": len(data.corpus), "queries": n, "k": k,
        "repeats": {"index": repeats, "search": search_repeats},
        "ragsift": {"index_s": ours_index_s, "search_s": ours_search_s,
                    "queries_per_s": n / ours_search_s, "ndcg@10": ours_ndcg},
        "bm25s": {"index_s": peer_index_s, "search_s": peer_search_s,
                  "queries_per_s": n / peer_search_s, "ndcg@10": peer_ndcg},
        "same_tokens": same_tokens(ours, data),
        **top10_check(ours_run, peer_run),
        "speed_ratio_vs_bm25s": (n / ours_search_s) / (n / peer_search_s),
        "index_speed_ratio_vs_bm25s": peer_index_s / ours_index_s,
        "ndcg@10_diff_vs_bm25s": ours_ndcg - peer_ndcg,
    }
    result["targets"] = {
        f"speed_ratio>={SPEED_TARGET}": result["speed_ratio_vs_bm25s"] >= SPEED_TARGET,
        "ndcg@10_identical": ours_ndcg == peer_ndcg,
    }
    if rank_bm25_queries:
        subset = sorted(data.queries)[:rank_bm25_queries]
        peer2 = rank_bm25_system(data, subset, k, repeats)
        sub_qrels = {q: qrels[q] for q in subset}
        result["rank_bm25"] = {
            "index_s": peer2["index_s"], "queries_per_s": peer2["queries_per_s"],
            "queries_scored": peer2["queries_scored"],
            "ndcg@10_subset": ndcg10(sub_qrels, peer2["run"]),
            "ragsift_ndcg@10_subset": ndcg10(sub_qrels, {q: ours_run[q] for q in subset}),
        }
    return result


def table_rows(results: list[dict]) -> list[list]:
    rows = []
    for r in results:
        for system in ("ragsift", "bm25s"):
            s = r[system]
            rows.append([r["dataset"], system, s["index_s"], round(s["queries_per_s"]),
                         s["ndcg@10"]])
        if "rank_bm25" in r:
            s = r["rank_bm25"]
            rows.append([r["dataset"], f"rank_bm25 (first {s['queries_scored']} q)", s["index_s"],
                         round(s["queries_per_s"]),
                         f"{s['ndcg@10_subset']:.4f} (ragsift on the same "
                         f"{s['queries_scored']} q: {s['ragsift_ndcg@10_subset']:.4f})"])
        rows.append([r["dataset"], "ragsift speed / bm25s speed",
                     f"{r['index_speed_ratio_vs_bm25s']:.2f}x", f"{r['speed_ratio_vs_bm25s']:.2f}x",
                     f"diff {r['ndcg@10_diff_vs_bm25s']:+.4f}; top-10 score max abs diff "
                     f"{r['max_abs_top10_score_diff']:.2g}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    add_dataset_arguments(parser)
    parser.add_argument("--repeats", type=int, default=3,
                        help="index: best of N timings (default 3)")
    parser.add_argument("--search-repeats", type=int, default=10,
                        help="search: best of N timings (default 10; a search takes ms)")
    parser.add_argument("--k", type=int, default=100, help="documents retrieved per query")
    parser.add_argument("--rank-bm25-queries", type=int, default=100, metavar="N",
                        help="queries rank_bm25 scores (0: skip it; default 100)")
    args = parser.parse_args()
    env = environment(["bm25s", "rank-bm25", "PyStemmer", "numpy"])
    results = [benchmark(name, data, args.repeats, args.search_repeats, args.k,
                         args.rank_bm25_queries) for name, data in datasets(args)]
    report(results, ["dataset", "system", "index s", "queries/s", "ndcg@10"], table_rows(results),
           args.out, benchmark="bm25", environment=env)
    print()
    for r in results:
        print(f"{r['dataset']}: ragsift/bm25s queries/s {r['speed_ratio_vs_bm25s']:.3f}x, "
              f"nDCG@10 diff {r['ndcg@10_diff_vs_bm25s']:+.6f}, top-10 score max abs diff "
              f"{r['max_abs_top10_score_diff']:.3g}, same tokens {r['same_tokens']}")


if __name__ == "__main__":
    main()
