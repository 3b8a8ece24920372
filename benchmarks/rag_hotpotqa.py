"""The RAG chain on HotpotQA: answer EM / F1 for each way of choosing the generator's context.

Settings (each one ``ragsift.rag.pipeline.Pipeline`` run over the same questions with the same
generator and prompt): no context, all paragraphs, BM25 top-k, dense top-k, reranker top-k
(``--reranker``), GainRAG selector top-k (``--selector``, a reranker trained on gain labels), and
the gold (supporting) paragraphs; ``--settings`` keeps some of them (``none,all,bm25,dense,
reranker,selector,gold``). The base config is ``--config`` (a YAML of ``RagConfig`` keys, e.g.
``configs/rag-hotpotqa.yaml``: prompt, few-shot examples, stop sequences, answer extraction)
with ``--generator``, ``--k``, ``--threads`` and ``--max-passage-tokens`` on top when given.
Reported per setting: EM, F1, supporting recall@1 of the ranking (for the ranked settings), the
selected passages' supporting recall, seconds, and the paired randomization-test p-value of the
F1 difference against the BM25 top-k setting (over the questions both answered: ``--all-limit
N`` runs the costly all-paragraphs setting on the first N questions only).

Each setting's run folder (``--runs DIR/<setting>``: rankings, predictions, metrics) is reused
when its metrics were computed with the same config and questions, so an interrupted table
resumes where it stopped.

Usage:
    python -m benchmarks.rag_hotpotqa [--questions FILE.jsonl] [--limit 100] \
        [--config configs/rag-hotpotqa.yaml] [--settings none,bm25,gold] [--k 1] \
        [--reranker MODEL ...] [--selector MODEL ...] [--dense minilm-l6] [--threads N] \
        [--generator smollm2-135m] [--all-limit N] [--runs runs/rag-hotpotqa] [--out FILE.json]
Default questions: ../shared/datasets/hotpotqa/test.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

from benchmarks.common import SHARED, environment, report
from ragsift.config_file import load_dataclass
from ragsift.data.qa import load_qa
from ragsift.evaluate import paired_tests
from ragsift.rag.pipeline import Pipeline, RagConfig

SETTINGS = ("none", "all", "bm25", "dense", "reranker", "selector", "gold")


def settings(args: argparse.Namespace) -> list[tuple[str, RagConfig]]:
    """(name, config) of every setting of the table kept by ``--settings``, in table order."""
    overrides = {"generator": args.generator, "k": args.k, "threads": args.threads,
                 "max_passage_tokens": args.max_passage_tokens, "retriever": "none"}
    base = load_dataclass(RagConfig, args.config, overrides, what="the RAG pipeline")
    top = f"top-{base.k}"
    rows = [("none", "no context", replace(base, selector="none")),
            ("all", "all paragraphs", replace(base, selector="all")),
            ("bm25", f"bm25 {top}", replace(base, retriever="bm25")),
            ("dense", f"dense {top} ({args.dense})",
             replace(base, retriever=f"dense:{args.dense}"))]
    for key, kind, models in (("reranker", "reranker", args.reranker),
                              ("selector", "GainRAG selector", args.selector)):
        rows += [(key, f"{kind} {top} ({Path(model).name})",
                  replace(base, retriever="bm25", reranker=model)) for model in models]
    rows.append(("gold", "gold paragraphs", replace(base, selector="gold")))
    keep = set(args.settings.split(","))
    return [(name, config) for key, name, config in rows if key in keep]


def run_setting(config: RagConfig, examples: list, folder: Path) -> tuple[dict, dict[str, float]]:
    """Metrics and per-question F1 of one setting, computed or read back from ``folder``."""
    metrics_file = folder / "metrics.json"
    done = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    if not (done and done["config"] == asdict(config) and done["questions"] == len(examples)):
        done = Pipeline(config).run(examples, folder)
    predictions = [json.loads(line) for line in (folder / "predictions.jsonl").open()]
    return done, {p["id"]: p["f1"] for p in predictions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=SHARED / "hotpotqa" / "test.jsonl")
    parser.add_argument("--limit", type=int, default=None, help="first N questions only")
    parser.add_argument("--config", type=Path, default=None,
                        help="base RagConfig YAML (prompt, few-shot, stop, extraction)")
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help=f"comma-separated subset of {','.join(SETTINGS)}")
    parser.add_argument("--generator", default=None, help="default: the config's")
    parser.add_argument("--k", type=int, default=None, help="passages of the ranked settings")
    parser.add_argument("--threads", type=int, default=None,
                        help="llama.cpp threads (1 is often fastest on busy cores)")
    parser.add_argument("--dense", default="minilm-l6")
    parser.add_argument("--reranker", action="append", default=[],
                        help="relevance reranker, one top-1 row each (repeatable)")
    parser.add_argument("--selector", action="append", default=[],
                        help="GainRAG selector, one top-1 row each (repeatable)")
    parser.add_argument("--max-passage-tokens", type=int, default=None)
    parser.add_argument("--all-limit", type=int, default=None, metavar="N",
                        help="the all-paragraphs setting on the first N questions only (its "
                             "prompts are ~10x longer)")
    parser.add_argument("--runs", type=Path, default=Path("runs/rag-hotpotqa"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not args.questions.is_file():
        raise SystemExit(f"no questions file at {args.questions}")
    examples = load_qa(args.questions)[:args.limit]
    table = settings(args)
    done = {}
    # the all-paragraphs prompts are ~10x longer: computed last, shown in table order
    for name, config in sorted(table, key=lambda setting: setting[1].selector == "all"):
        slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        chosen = examples[:args.all_limit] if config.selector == "all" else examples
        done[name] = run_setting(config, chosen, args.runs / slug)
        print(f"{name}: EM {done[name][0]['em']:.4f} F1 {done[name][0]['f1']:.4f}",
              file=sys.stderr, flush=True)
    measured = [(name, *done[name]) for name, _ in table]
    # p-values against BM25 top-k when it is in the table
    baseline_name = next((name for name, _ in table if name.startswith("bm25 ")), None)
    baseline = done[baseline_name][1] if baseline_name else None
    results, rows = [], []
    for name, metrics, f1 in measured:  # p over the questions both settings answered
        p_value = None if baseline is None or name == baseline_name else \
            paired_tests({q: baseline[q] for q in f1}, f1, "f1").randomization_p
        ranked = metrics["config"]["selector"] == "top-k"
        recall = metrics["supporting_recall@1"] if ranked else None
        results.append({"setting": name, "em": metrics["em"], "f1": metrics["f1"],
                        "supporting_recall@1": recall,
                        "selected_supporting_recall": metrics["selected_supporting_recall"],
                        "f1_p_vs_bm25": p_value, "seconds": metrics["seconds"],
                        "questions": metrics["questions"], "config": metrics["config"]})
        rows.append([name, metrics["questions"], f"{metrics['em']:.4f}", f"{metrics['f1']:.4f}",
                     "-" if recall is None else f"{recall:.4f}",
                     f"{metrics['selected_supporting_recall']:.4f}",
                     "-" if p_value is None else f"{p_value:.3f}",
                     f"{metrics['seconds']:.0f}"])
    report(results, ["setting", "questions", "EM", "F1", "supp. R@1", "selected supp. recall",
                     "F1 p vs BM25", "seconds"], rows, args.out,
           environment=environment(["llama-cpp-python", "transformers"]),
           questions=str(args.questions), config=str(args.config),
           generator=table[0][1].generator)


if __name__ == "__main__":
    main()
