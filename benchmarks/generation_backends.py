"""Generation speed of the RAG generator backends on the same prompts: llama.cpp (the GGUF run
natively) against transformers (the GGUF dequantised), batched and one at a time.

For the first ``--limit`` HotpotQA test questions, each backend completes the chain's prompt
(the question with its gold paragraphs, or with no context: ``--context none``), greedy,
``--max-new-tokens`` tokens at most, after a 2-prompt warm-up. Reported per backend: seconds,
answers per minute, generated tokens per second (counted with the GGUF's tokenizer) and how many
raw outputs equal llama.cpp's.

Usage:
    python -m benchmarks.generation_backends [--limit 30] [--context gold|none]
        [--model smollm2-135m] [--max-new-tokens 32] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import environment, report
from ragsift.data.qa import load_qa
from ragsift.models.generation.generator import load_generator

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=Path, default=SHARED / "hotpotqa" / "test.jsonl")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--context", choices=("gold", "none"), default="gold")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    examples = load_qa(args.questions)[:args.limit]
    questions = [e.question for e in examples]
    contexts = [[e.paragraphs[i].full_text() for i in sorted(e.supporting)]
                if args.context == "gold" else [] for e in examples]
    llama = load_generator(f"llama-cpp:{args.model}", max_new_tokens=args.max_new_tokens)
    backends = [("llama.cpp", llama),
                ("transformers, batch 8", load_generator(
                    f"transformers:{args.model}", max_new_tokens=args.max_new_tokens,
                    batch_size=8)),
                ("transformers, batch 1", load_generator(
                    f"transformers:{args.model}", max_new_tokens=args.max_new_tokens,
                    batch_size=1))]
    results, reference = [], None
    for name, generator in backends:
        prompts = [generator.prompt(q, c) for q, c in zip(questions, contexts)]
        generator.complete(prompts[:2])  # warm-up
        start = time.perf_counter()
        texts = generator.complete(prompts)
        seconds = time.perf_counter() - start
        reference = reference or texts
        tokens = sum(len(llama.llm.tokenize(t.encode(), add_bos=False)) for t in texts)
        results.append({"backend": name, "answers": len(texts), "seconds": seconds,
                        "answers_per_min": 60 * len(texts) / seconds,
                        "new_tokens_per_s": tokens / seconds,
                        "prompt_tokens": sum(len(p) for p in prompts),
                        "same_as_llama_cpp": sum(a == b for a, b in zip(texts, reference))})
    rows = [[r["backend"], f"{r['seconds']:.1f}", f"{r['answers_per_min']:.1f}",
             f"{r['new_tokens_per_s']:.1f}", f"{r['same_as_llama_cpp']}/{r['answers']}"]
            for r in results]
    report(results, ["backend", "seconds", "answers/min", "new tokens/s", "same as llama.cpp"],
           rows, args.out, environment=environment(["llama-cpp-python", "transformers", "torch"]),
           context=args.context, questions=len(examples), model=args.model)


if __name__ == "__main__":
    main()
