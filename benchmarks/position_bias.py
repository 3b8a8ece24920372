"""Positional-bias probe (``ragsift.rag.position_probe``) over retrievers and rerankers.

Each question's answer paragraph is put at the beginning, middle or end of a long document
made of unrelated paragraphs; the table gives, per model and position, hit@1 and MRR of the
answer document against the question's distractors in the same slot, and its mean score.

Usage:
    python -m benchmarks.position_bias [--questions FILE.jsonl] [--limit 100] [--filler 6] \
        [--dense minilm-l6] [--reranker MODEL ...] [--long-doc max,first] [--out FILE.json]
Default questions: ../shared/datasets/hotpotqa/test.jsonl.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import SHARED, report
from ragsift.data.qa import load_qa
from ragsift.rag.position_probe import (
    POSITIONS,
    bi_encoder_scorer,
    bm25_scorer,
    build_probes,
    reranker_scorer,
    run_probe,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=SHARED / "hotpotqa" / "test.jsonl")
    parser.add_argument("--limit", type=int, default=100, help="questions (first N)")
    parser.add_argument("--filler", type=int, default=6, help="unrelated paragraphs per doc")
    parser.add_argument("--dense", action="append", default=None,
                        help="bi-encoder (repeatable; default minilm-l6)")
    parser.add_argument("--reranker", action="append", default=[], help="reranker (repeatable)")
    parser.add_argument("--long-doc", default="max,first",
                        help="reranker long-document strategies to compare")
    parser.add_argument("--max-length", type=int, default=256, help="reranker max tokens")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from ragsift.models.bi_encoder import BiEncoder
    from ragsift.rerank import Reranker

    probes = build_probes(load_qa(args.questions)[:args.limit], filler=args.filler)
    models = [("bm25", lambda: bm25_scorer())]
    for name in args.dense or ["minilm-l6"]:
        models.append((f"dense:{name}",
                       lambda name=name: bi_encoder_scorer(BiEncoder.from_pretrained(name))))
    for name in args.reranker:
        for strategy in args.long_doc.split(","):
            models.append((f"rerank:{name} ({strategy})",
                           lambda name=name, strategy=strategy: reranker_scorer(Reranker.load(
                               name, long_doc=strategy, max_length=args.max_length))))
    results, rows = [], []
    for label, make in models:
        started = time.perf_counter()
        table = run_probe(probes, make())
        seconds = time.perf_counter() - started
        results.append({"model": label, "positions": table, "seconds": seconds})
        rows.append([label, *(f"{table[p]['hit@1']:.3f} / {table[p]['mrr']:.3f}"
                              for p in POSITIONS),
                     *(f"{table[p]['score']:.3f}" for p in POSITIONS)])
    report(results, ["model", *(f"{p} hit@1 / MRR" for p in POSITIONS),
                     *(f"{p} score" for p in POSITIONS)], rows, args.out,
           questions=len(probes), filler=args.filler, source=str(args.questions))


if __name__ == "__main__":
    main()
