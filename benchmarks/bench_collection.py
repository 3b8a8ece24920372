"""Collection updates: adding 1,000 documents to a BM25 collection vs rebuilding the index.

One run measures, on a BM25 collection (:class:`ragsift.collection.Collection`, Lucene BM25,
k1=1.5, b=0.75, chunks of ``--chunk-tokens`` tokens, large enough that every document is one
chunk):

- build: ``--docs`` N documents (default 100,000) fed as a user would, in ``--batches`` calls
  of ``col.add(batch, commit_every=--commit-every)`` (each commit atomic; merges as they come);
- add: ``col.add(1,000 new documents)``, ``--adds`` times with fresh documents (median; the
  issue's cost target), and the first search after each add (it reads the new commit);
- rebuild: the index of the N + 1,000 documents built from scratch, twice: a new collection
  (one ``col.add(all, commit_every=all)``) and bm25s alone
  (``ragsift.retrieve.bm25.BM25Retriever().index(corpus)``); the ratios add / rebuild
  (target <= 10%);
- delete: ``col.delete(1,000 ids)``, ``--deletes`` times (median);
- search: BM25 latency per query (median over ``--queries`` queries, after one untimed pass),
  unfiltered and with a metadata filter keeping 1% (``bucket=0``) and 50% (``bucket<50``) of
  the documents, on the N-document collection;
- exactness: after the adds and deletes, for ``--exact-queries`` queries, the top-10 chunk
  scores of ``col.search(q, k=10, unit="chunk", retriever="bm25")`` against a BM25Retriever
  built from scratch on ``col.snapshot.chunk_documents()`` (the surviving chunks): largest
  relative difference rank by rank (target <= 1e-5) and queries whose top-10 ids differ
  (all, and beyond chunks tied at the 10th score, which either index may order either way).

Documents are synthetic by default: words made of seeded consonant-vowel syllables, drawn from
a Zipf(1.1) distribution over a ``--vocab``-word vocabulary; 40-120 words of text in sentences
and a 3-8 word title; metadata ``{"bucket": i % 100}``. ``--text-from DIR`` cycles the
titles and texts of a BEIR corpus instead (each copy gets its own id and metadata; repeated
texts make BM25 statistics unlike a real corpus). Queries are 3 distinct words of frequency
rank 50-5,000 (synthetic) or the BEIR folder's queries.

Collections are written under ``--workdir`` (default: a temporary folder, deleted at the end).
Times are wall-clock (``time.perf_counter``), one run each except where a median is stated.

Usage:
    python -m benchmarks.bench_collection [--docs 100000] [--batches 5] [--commit-every 10000]
        [--adds 3] [--deletes 3] [--queries 50] [--exact-queries 20] [--chunk-tokens 1024]
        [--text-from DIR] [--workdir DIR] [--seed 0] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import environment, report
from ragsift.collection import Collection
from ragsift.retrieve.bm25 import BM25Retriever
from ragsift.types import Document

ADD_SIZE = 1_000
TARGET = 0.10
EXACT_TOLERANCE = 1e-5
FILTERS = {"none": None, "1%": "bucket=0", "50%": "bucket<50"}

CONSONANTS = "bcdfghjklmnprstvz"
VOWELS = "aeiou"


# ---- data ------------------------------------------------------------------------------------
def vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    """``size`` distinct pronounceable words of 2-4 consonant-vowel syllables."""
    words: dict[str, None] = {}
    while len(words) < size:
        syllables = rng.integers(2, 5)
        word = "".join(CONSONANTS[rng.integers(len(CONSONANTS))] + VOWELS[rng.integers(5)]
                       for _ in range(syllables))
        words[word] = None
    return list(words)


class Synthetic:
    """Seeded documents and queries (see the module doc)."""

    def __init__(self, vocab_size: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.words = np.asarray(vocabulary(vocab_size, self.rng), dtype=object)
        ranks = np.arange(1, vocab_size + 1, dtype=np.float64)
        weights = ranks ** -1.1
        self.cdf = np.cumsum(weights / weights.sum())

    def _draw(self, n: int) -> np.ndarray:
        return self.words[np.minimum(np.searchsorted(self.cdf, self.rng.random(n)),
                                     len(self.words) - 1)]

    def documents(self, start: int, n: int) -> list[Document]:
        lengths = self.rng.integers(40, 121, n)
        title_lengths = self.rng.integers(3, 9, n)
        words = self._draw(int(lengths.sum() + title_lengths.sum()))
        out, pos = [], 0
        for i in range(n):
            title = " ".join(words[pos:pos + title_lengths[i]])
            pos += title_lengths[i]
            body = words[pos:pos + lengths[i]]
            pos += lengths[i]
            sentences, s = [], 0
            while s < len(body):
                e = s + int(self.rng.integers(8, 17))
                sentences.append(" ".join(body[s:e]).capitalize() + ".")
                s = e
            number = start + i
            out.append(Document(f"d{number}", " ".join(sentences), title.capitalize(),
                                {"bucket": number % 100}))
        return out

    def queries(self, n: int) -> list[str]:
        out = []
        for _ in range(n):
            picks = self.rng.choice(np.arange(50, min(5000, len(self.words))), 3, replace=False)
            out.append(" ".join(self.words[picks]))
        return out


class FromBeir:
    """Titles and texts of a BEIR corpus, cycled; its queries."""

    def __init__(self, folder: Path, seed: int) -> None:
        from ragsift.data.beir import iter_corpus, load_queries

        self.rows = [(d.title, d.text) for d in iter_corpus(folder)]
        self.query_texts = list(load_queries(folder).values())
        self.rng = np.random.default_rng(seed)

    def documents(self, start: int, n: int) -> list[Document]:
        out = []
        for number in range(start, start + n):
            title, text = self.rows[number % len(self.rows)]
            out.append(Document(f"d{number}", text, title, {"bucket": number % 100}))
        return out

    def queries(self, n: int) -> list[str]:
        picks = self.rng.choice(len(self.query_texts), min(n, len(self.query_texts)),
                                replace=False)
        return [self.query_texts[i] for i in picks]


# ---- measurements ----------------------------------------------------------------------------
def timed(fn, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """Wall time (s) of ``fn(*args, **kwargs)`` (after a garbage collection) and its result."""
    gc.collect()
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def create(folder: Path, chunk_tokens: int) -> Collection:
    return Collection.create(folder, retriever="bm25", chunk_tokens=chunk_tokens,
                             chunk_overlap=0)


def search_latency(col: Collection, queries: list[str], filter: str | None) -> dict:
    """Median / p90 / mean ms per query over ``queries`` (after one untimed pass)."""
    for q in queries:
        col.search(q, k=10, filter=filter)
    times, hits = [], []
    for q in queries:
        start = time.perf_counter()
        found = col.search(q, k=10, filter=filter)
        times.append(time.perf_counter() - start)
        hits.append(len(found))
    ms = np.asarray(times) * 1000
    return {"filter": filter, "median_ms": float(np.median(ms)),
            "p90_ms": float(np.percentile(ms, 90)), "mean_ms": float(ms.mean()),
            "mean_hits": float(np.mean(hits))}


def exactness(col: Collection, queries: list[str]) -> dict:
    """Top-10 chunk scores of the collection vs BM25Retriever built on the surviving chunks."""
    chunks = col.snapshot.chunk_documents()
    fresh = BM25Retriever(method="lucene", k1=1.5, b=0.75, stopwords="en", stemmer="english")
    fresh.index(chunks)
    run = fresh.search({str(i): q for i, q in enumerate(queries)}, k=10)
    max_rel, id_mismatch, untied_mismatch, length_mismatch = 0.0, 0, 0, 0
    for i, q in enumerate(queries):
        ours = col.search(q, k=10, unit="chunk", retriever="bm25")
        theirs = sorted(run[str(i)].items(), key=lambda x: -x[1])[:10]
        if len(ours) != len(theirs):
            length_mismatch += 1
        for hit, (_, score) in zip(ours, theirs):
            max_rel = max(max_rel, abs(hit.score - score) / max(abs(score), 1e-12))
        scores = {h.id: h.score for h in ours} | dict(theirs)
        other = {h.id for h in ours} ^ {d for d, _ in theirs}
        if other:
            id_mismatch += 1
            # ids that differ only by the order of chunks tied at the cut (the 10th score)
            cut = min(s for _, s in theirs)
            if any(abs(scores[d] - cut) > EXACT_TOLERANCE * abs(cut) for d in other):
                untied_mismatch += 1
    return {"queries": len(queries), "surviving_chunks": len(chunks),
            "max_relative_score_diff": max_rel, "queries_with_other_top10_ids": id_mismatch,
            "queries_with_other_top10_ids_beyond_ties": untied_mismatch,
            "queries_with_other_hit_count": length_mismatch,
            f"within_{EXACT_TOLERANCE:g}": (max_rel <= EXACT_TOLERANCE and not length_mismatch
                                            and not untied_mismatch)}


def benchmark(args: argparse.Namespace, workdir: Path) -> dict:
    n = args.docs
    source = (FromBeir(args.text_from, args.seed) if args.text_from
              else Synthetic(args.vocab, args.seed))
    t0 = time.perf_counter()
    base = source.documents(0, n)
    fresh_batches = [source.documents(n + j * ADD_SIZE, ADD_SIZE) for j in range(args.adds)]
    queries = source.queries(max(args.queries, args.exact_queries))
    generate_s = time.perf_counter() - t0
    print(f"generated {n} + {args.adds} x {ADD_SIZE} documents in {generate_s:.1f}s", flush=True)

    # build, as a user would: several add() calls, commits every --commit-every documents
    col = create(workdir / "main", args.chunk_tokens)
    per_call = -(-n // args.batches)
    build_s, segments_during = 0.0, []
    for start in range(0, n, per_call):
        seconds, _ = timed(col.add, base[start:start + per_call],
                           commit_every=args.commit_every)
        build_s += seconds
        segments_during.append(len(col.snapshot.segments))
    info = col.info()
    if info["chunks"] != n:
        raise SystemExit(f"{info['chunks']} chunks for {n} documents: raise --chunk-tokens")
    print(f"built {n} documents in {build_s:.1f}s ({info['segments']} segments)", flush=True)
    reopen_s, reopened = timed(Collection.open, workdir / "main")
    cold_first_search_s, _ = timed(reopened.search, queries[0], k=10)
    reopened.close()

    # search latency on the N-document collection
    latency = {name: search_latency(col, queries[:args.queries], expr)
               for name, expr in FILTERS.items()}
    print("search ms (median): " + ", ".join(f"{k} {v['median_ms']:.1f}"
                                             for k, v in latency.items()), flush=True)

    # adds of 1,000 fresh documents
    adds = []
    for batch in fresh_batches:
        seconds, result = timed(col.add, batch)
        first_s, _ = timed(col.search, queries[0], k=10)
        adds.append({"seconds": seconds, "first_search_after_s": first_s,
                     "added": result.added, "segments": len(col.snapshot.segments)})
        print(f"add {ADD_SIZE}: {seconds:.2f}s (first search after it {first_s:.2f}s)",
              flush=True)
    add_median = statistics.median(a["seconds"] for a in adds)

    # rebuilds of the N + 1,000 documents
    corpus = base + fresh_batches[0]
    rebuilt = create(workdir / "rebuild", args.chunk_tokens)
    rebuild_s, _ = timed(rebuilt.add, corpus, commit_every=len(corpus))
    rebuilt.close()
    shutil.rmtree(workdir / "rebuild", ignore_errors=True)
    print(f"rebuild collection ({len(corpus)}): {rebuild_s:.1f}s", flush=True)
    as_corpus = {d.id: d for d in corpus}
    bm25s_s, _ = timed(BM25Retriever().index, as_corpus)
    print(f"rebuild bm25s ({len(corpus)}): {bm25s_s:.1f}s", flush=True)
    del as_corpus

    # deletes of 1,000 documents (of the first N, seeded)
    rng = np.random.default_rng(args.seed + 1)
    victims = rng.choice(n, ADD_SIZE * args.deletes, replace=False)
    deletes = []
    for j in range(args.deletes):
        ids = [f"d{i}" for i in victims[j * ADD_SIZE:(j + 1) * ADD_SIZE]]
        seconds, count = timed(col.delete, ids)
        deletes.append({"seconds": seconds, "deleted": count})
        print(f"delete {ADD_SIZE}: {seconds:.2f}s", flush=True)

    exact = exactness(col, queries[:args.exact_queries])
    print(f"exactness: max relative diff {exact['max_relative_score_diff']:.2e}", flush=True)
    final = col.info()
    col.close()
    return {
        "documents": n, "source": (f"BEIR corpus {args.text_from} cycled" if args.text_from
                                   else f"synthetic (vocabulary {args.vocab}, Zipf 1.1, "
                                        f"seed {args.seed})"),
        "chunk_tokens": args.chunk_tokens, "generate_s": generate_s,
        "build": {"seconds": build_s, "add_calls": len(segments_during),
                  "commit_every": args.commit_every, "segments_after_each_call": segments_during,
                  "docs_per_s": n / build_s, "disk_bytes": info["disk_bytes"]},
        "reopen_s": reopen_s, "cold_first_search_s": cold_first_search_s,
        "search": latency,
        "add": {"documents": ADD_SIZE, "median_s": add_median, "runs": adds},
        "rebuild": {"documents": len(corpus), "collection_s": rebuild_s, "bm25s_s": bm25s_s},
        "add_over_rebuild": {"collection": add_median / rebuild_s,
                             "bm25s": add_median / bm25s_s},
        "delete": {"documents": ADD_SIZE, "median_s": statistics.median(
            d["seconds"] for d in deletes), "runs": deletes},
        "exactness": exact,
        "final": {k: final[k] for k in ("documents", "chunks", "deleted_chunks", "segments",
                                        "generation", "disk_bytes")},
        "targets": {f"add/rebuild(collection)<={TARGET:.0%}": add_median / rebuild_s <= TARGET,
                    f"add/rebuild(bm25s)<={TARGET:.0%}": add_median / bm25s_s <= TARGET,
                    "scores_exact": exact[f"within_{EXACT_TOLERANCE:g}"]},
    }


def table_rows(r: dict) -> list[list]:
    n, m = r["documents"], r["rebuild"]["documents"]
    s = r["search"]
    return [
        [f"build {n:,} docs ({r['build']['add_calls']} add calls, commit every "
         f"{r['build']['commit_every']:,})", f"{r['build']['seconds']:.1f} s",
         f"{r['build']['docs_per_s']:,.0f} docs/s"],
        [f"add {ADD_SIZE:,} new docs (median of {len(r['add']['runs'])})",
         f"{r['add']['median_s']:.2f} s",
         "runs " + ", ".join(f"{a['seconds']:.2f}" for a in r["add"]["runs"])],
        [f"rebuild collection, {m:,} docs", f"{r['rebuild']['collection_s']:.1f} s",
         f"add / rebuild = {r['add_over_rebuild']['collection']:.1%}"],
        [f"rebuild bm25s (BM25Retriever.index), {m:,} docs", f"{r['rebuild']['bm25s_s']:.1f} s",
         f"add / rebuild = {r['add_over_rebuild']['bm25s']:.1%}"],
        [f"delete {ADD_SIZE:,} docs (median of {len(r['delete']['runs'])})",
         f"{r['delete']['median_s']:.2f} s",
         "runs " + ", ".join(f"{d['seconds']:.2f}" for d in r["delete"]["runs"])],
        ["first search after an add (median)",
         f"{statistics.median(a['first_search_after_s'] for a in r['add']['runs']):.2f} s",
         "reads the new commit's segments"],
        [f"open the {n:,}-doc collection / first search", f"{r['reopen_s']:.2f} s",
         f"{r['cold_first_search_s']:.2f} s"],
        [f"BM25 search, no filter ({n:,} docs)", f"{s['none']['median_ms']:.1f} ms",
         f"p90 {s['none']['p90_ms']:.1f} ms"],
        ["BM25 search, filter keeps 1% (bucket=0)", f"{s['1%']['median_ms']:.1f} ms",
         f"p90 {s['1%']['p90_ms']:.1f} ms"],
        ["BM25 search, filter keeps 50% (bucket<50)", f"{s['50%']['median_ms']:.1f} ms",
         f"p90 {s['50%']['p90_ms']:.1f} ms"],
        [f"top-10 chunk scores vs bm25s from scratch ({r['exactness']['queries']} q)",
         f"max rel diff {r['exactness']['max_relative_score_diff']:.1e}",
         f"{r['exactness']['queries_with_other_top10_ids_beyond_ties']} queries with other ids "
         f"(beyond ties at the 10th score)"],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--docs", type=int, default=100_000, help="collection size N")
    parser.add_argument("--batches", type=int, default=5,
                        help="add() calls that build the collection (default 5)")
    parser.add_argument("--commit-every", type=int, default=10_000,
                        help="documents per commit while building (default 10000)")
    parser.add_argument("--adds", type=int, default=3, help="adds of 1,000 documents (median)")
    parser.add_argument("--deletes", type=int, default=3,
                        help="deletes of 1,000 documents (median)")
    parser.add_argument("--queries", type=int, default=50, help="queries timed per filter")
    parser.add_argument("--exact-queries", type=int, default=20,
                        help="queries whose scores are compared with a rebuild")
    parser.add_argument("--chunk-tokens", type=int, default=1024,
                        help="chunk size (large: one chunk per document)")
    parser.add_argument("--vocab", type=int, default=30_000, help="synthetic vocabulary size")
    parser.add_argument("--text-from", type=Path, metavar="DIR",
                        help="cycle this BEIR corpus' texts instead of synthetic ones")
    parser.add_argument("--workdir", type=Path, help="where collections are written "
                                                     "(default: a temporary folder, removed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, metavar="FILE", help="also write the JSON here")
    args = parser.parse_args()
    for name in ("docs", "batches", "commit_every", "adds", "deletes", "queries",
                 "exact_queries", "chunk_tokens", "vocab"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.docs < ADD_SIZE * args.deletes:
        parser.error(f"--docs must be at least {ADD_SIZE * args.deletes} (the deletes)")

    env = environment(["bm25s", "PyStemmer", "numpy", "scipy", "tokenizers"])
    owned = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="bench-collection-")) if owned else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        result = benchmark(args, workdir)
    finally:
        if owned:
            shutil.rmtree(workdir, ignore_errors=True)
    report([result], ["measurement", "value", "note"], table_rows(result), args.out,
           benchmark="collection-add-vs-rebuild", environment=env)


if __name__ == "__main__":
    main()
