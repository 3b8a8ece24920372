"""Synthetic-query speed and quality of the generator backends on the same documents: llama.cpp
(the GGUF run natively, quantised) against transformers (the same GGUF dequantised, batched).

For a seeded sample of ``--docs`` SciFact documents, each backend runs ``ragsift synth``'s job
(:func:`ragsift.jobs.synthesize.synthesize_queries`: the default prompt, greedy,
``--max-new-tokens``, passages cut to ``--max-passage-tokens``) after a 2-document warm-up, then
the round-trip filter (BM25 over the whole corpus, the source document in the top
``--round-trip-k``). Both run in the same process with ``--threads`` CPU threads each
(llama.cpp's ``n_threads``, torch's intra-op threads). Reported per backend: seconds, queries
per minute (documents asked per minute), non-empty queries, the round-trip pass rate (kept /
generated), the mean prompt length in tokens (prompt processing, not generation, takes most of
the time of a small model here) and how many queries equal the first llama.cpp row's; and the
speed ratio of each llama.cpp row over transformers. ``--llm-weights native,bf16`` adds a
llama.cpp row per weight type (the GGUF converted once by llama.cpp, as ``ragsift synth
--llm-weights``).

Usage:
    python -m benchmarks.synth_backends [--data ../shared/datasets/scifact] [--docs 60]
        [--model smollm2-135m] [--threads 1] [--batch-size 8] [--llm-weights native,bf16]
        [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import SHARED, environment, report
from ragsift.atomic import atomic_file
from ragsift.data.beir import load_corpus
from ragsift.errors import UsageError
from ragsift.jobs.synthesize import (
    choose_documents,
    query_prompt,
    round_trip_filter,
    synthesize_queries,
)
from ragsift.models.generation.generator import TextGenerator, load_generator
from ragsift.models.generation.gguf_convert import WEIGHTS, check_weights
from ragsift.retrieve.bm25 import BM25Retriever
from ragsift.types import Corpus


def measure(name: str, generator: TextGenerator, corpus: Corpus, ids: list[str], folder: Path,
            k: int) -> dict[str, Any]:
    """Time the synth job of ``generator`` on ``ids`` and round-trip filter its queries."""
    generator.fingerprint()  # computed once (it hashes the weights); not part of the timing
    synthesize_queries(corpus, generator, folder / f"warm-{name}.jsonl", ids[:2],
                       show_progress=False)
    raw, kept = folder / f"raw-{name}.jsonl", folder / f"kept-{name}.jsonl"
    start = time.perf_counter()
    result = synthesize_queries(corpus, generator, raw, ids, show_progress=False)
    seconds = time.perf_counter() - start
    filtered = round_trip_filter(raw, corpus, BM25Retriever(show_progress=False), kept, k=k)
    queries = {json.loads(line)["pos_ids"][0]: json.loads(line)["query"]
               for line in raw.read_text(encoding="utf-8").splitlines()}
    prompts = [query_prompt(generator, corpus[d]) for d in ids]
    prompt_tokens = [len(p) for p in prompts]
    return {"backend": name, "documents": len(ids), "queries": result.queries,
            "seconds": seconds, "queries_per_min": 60 * len(ids) / seconds,
            "prompt_tokens_per_query": sum(prompt_tokens) / len(ids),
            "round_trip_kept": filtered.kept,
            "round_trip_pass_rate": filtered.kept / max(result.queries, 1),
            **prompt_share(generator, prompts[:5]), "generated": queries}


def prompt_share(generator: TextGenerator, prompts: list) -> dict[str, float]:
    """One prompt at a time: seconds to read a prompt and write 1 token (``t1``) against
    reading it and writing up to 32 (``t32``, no stop sequence); prompt tokens per second
    ``sum(len) / sum(t1)`` and the share ``sum(t1) / sum(t32)`` of the time the prompt takes."""
    first, full = 0.0, 0.0
    for prompt in prompts:
        start = time.perf_counter()
        generator.complete([prompt], max_new_tokens=1)
        middle = time.perf_counter()
        generator.complete([prompt], max_new_tokens=32)
        first, full = first + middle - start, full + time.perf_counter() - middle
    return {"prompt_tokens_per_second": sum(map(len, prompts)) / first,
            "prompt_share_of_time": first / full}


def _weights(text: str) -> list[str]:
    """``--llm-weights``: comma-separated weight types of :data:`WEIGHTS`."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    try:
        for name in names:
            check_weights(name)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not names:
        raise argparse.ArgumentTypeError("name at least one weight type")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "scifact")
    parser.add_argument("--docs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8, help="transformers batch size")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--max-passage-tokens", type=int, default=256)
    parser.add_argument("--round-trip-k", type=int, default=3)
    parser.add_argument("--llm-weights", type=_weights, default=["native"],
                        help="comma-separated llama.cpp weight types, one row each "
                             f"({', '.join(WEIGHTS)}; default native: the GGUF as packaged)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    corpus = load_corpus(args.data)
    ids = choose_documents(corpus, args.docs, args.seed)
    common = {"max_new_tokens": args.max_new_tokens,
              "max_passage_tokens": args.max_passage_tokens}
    backends = [(f"llama.cpp ({weights})", lambda weights=weights: load_generator(
        f"llama-cpp:{args.model}", n_threads=args.threads, weights=weights, **common))
        for weights in args.llm_weights]
    backends.append((f"transformers, batch {args.batch_size}", lambda: load_generator(
        f"transformers:{args.model}", batch_size=args.batch_size, **common)))
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name, load in backends:
            results.append(measure(name, load(), corpus, ids, Path(folder), args.round_trip_k))
    reference = results[0].pop("generated")
    for result in results[1:]:
        generated = result.pop("generated")
        result["same_as_llama_cpp"] = sum(reference.get(d) == q for d, q in generated.items())
    speedups = {r["backend"]: r["queries_per_min"] / results[-1]["queries_per_min"]
                for r in results[:-1]}
    rows = [[r["backend"], f"{r['seconds']:.1f}", f"{r['queries_per_min']:.1f}",
             f"{r['queries']}/{r['documents']}",
             f"{r['round_trip_kept']} ({r['round_trip_pass_rate']:.2f})",
             f"{r['prompt_tokens_per_query']:.0f}", f"{r['prompt_tokens_per_second']:.0f}",
             f"{r['prompt_share_of_time']:.2f}",
             r.get("same_as_llama_cpp", "-")] for r in results]
    obj = report(results, ["backend", "seconds", "queries/min", "non-empty queries",
                           f"round-trip kept (top {args.round_trip_k})", "prompt tokens",
                           "prompt tokens/s", "prompt share (1 vs 32 tokens)",
                           "same as llama.cpp"],
                 rows, None, environment=environment(["llama-cpp-python", "transformers",
                                                      "torch"]),
                 data=str(args.data), docs=len(ids), model=args.model, threads=args.threads,
                 speedup_over_transformers=speedups)
    for name, speedup in speedups.items():
        print(f"{name} / transformers queries per minute: {speedup:.2f}x")
    if args.out:
        with atomic_file(args.out) as handle:
            handle.write(json.dumps(obj, indent=2) + "\n")


if __name__ == "__main__":
    main()
