"""Gain labels of the llama.cpp backend against the transformers path on the same weights.

For the first ``--limit`` HotpotQA test questions (each with its 10 paragraphs), gain labels
(:mod:`ragsift.jobs.gain`, ``--alpha``) come from transformers (the GGUF dequantised; the
reference) and from llama.cpp in both precisions (``f32``: the GGUF dequantised once by
llama.cpp; ``native``: the quantised file). Reported per backend: seconds, the per-question
Spearman correlation of its labels with the reference's (least and mean), the questions whose
best paragraph is the reference's, and the largest absolute difference of the gold-token
log-probabilities. All backends run in one process with ``--threads`` CPU threads each.

Usage:
    python -m benchmarks.gain_backends [--limit 10] [--alpha 0.5] [--threads 1]
        [--model smollm2-135m] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from benchmarks.common import SHARED, environment, report
from ragsift.atomic import atomic_file
from ragsift.data.qa import QAExample, load_qa
from ragsift.jobs.gain import BaseGainScorer, gain_from_log_probs, load_gain_scorer


def log_probs(scorer: BaseGainScorer, examples: list[QAExample]
              ) -> tuple[float, list[list[np.ndarray]]]:
    """Seconds, and each question's gold-token log-probs per paragraph."""
    start = time.perf_counter()
    out = [scorer.answer_log_probs(e.question, e.answer, [p.full_text() for p in e.paragraphs])
           for e in examples]
    return time.perf_counter() - start, out


def compare(name: str, seconds: float, ours: list[list[np.ndarray]],
            reference: list[list[np.ndarray]]) -> dict[str, Any]:
    """Agreement of one backend's log-probs with the reference's, question by question."""
    rhos, same_best, diff = [], 0, 0.0
    for mine, theirs in zip(ours, reference):
        a = [gain_from_log_probs(x) for x in mine]
        b = [gain_from_log_probs(x) for x in theirs]
        rhos.append(float(spearmanr(a, b).statistic))
        same_best += int(np.argmax(a) == np.argmax(b))
        diff = max(diff, max(float(np.abs(x - y).max()) for x, y in zip(mine, theirs)))
    return {"backend": name, "seconds": seconds, "spearman_min": min(rhos),
            "spearman_mean": float(np.mean(rhos)), "spearman_per_question": rhos,
            "same_best_paragraph": same_best, "questions": len(ours),
            "max_abs_log_prob_diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=Path, default=SHARED / "hotpotqa" / "test.jsonl")
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    examples = load_qa(args.questions)[:args.limit]
    seconds, reference = log_probs(load_gain_scorer(
        f"transformers:{args.model}", alpha=args.alpha, batch_size=8), examples)
    results = [compare("transformers (reference)", seconds, reference, reference)]
    for precision in ("f32", "native"):
        scorer = load_gain_scorer(f"llama-cpp:{args.model}", alpha=args.alpha,
                                  precision=precision, n_threads=args.threads)
        results.append(compare(f"llama.cpp, {precision}", *log_probs(scorer, examples),
                               reference))
    rows = [[r["backend"], f"{r['seconds']:.1f}", f"{r['spearman_min']:.4f}",
             f"{r['spearman_mean']:.4f}", f"{r['same_best_paragraph']}/{r['questions']}",
             f"{r['max_abs_log_prob_diff']:.4f}"] for r in results]
    obj = report(results, ["backend", "seconds", "Spearman min", "Spearman mean",
                           "same best paragraph", "max |log-prob diff|"], rows, None,
                 environment=environment(["llama-cpp-python", "transformers", "torch"]),
                 questions=len(examples), alpha=args.alpha, model=args.model,
                 threads=args.threads)
    if args.out:
        with atomic_file(args.out) as handle:
            handle.write(json.dumps(obj, indent=2) + "\n")


if __name__ == "__main__":
    main()
