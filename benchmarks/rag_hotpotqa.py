"""The RAG chain on HotpotQA: answer EM / F1 for each way of choosing the generator's context.

Settings (each one ``ragsift.rag.pipeline.Pipeline`` run over the same questions with the same
generator and prompt): no context, all paragraphs, BM25 top-k, dense top-k, reranker top-k
(``--reranker``), GainRAG selector top-k (``--selector``, a reranker trained on gain labels), and
the gold (supporting) paragraphs; ``--settings`` keeps some of them (``none,all,bm25,dense,
reranker,selector,gold``). The base config is ``--config`` (a YAML of ``RagConfig`` keys, e.g.
``configs/rag-hotpotqa.yaml``: prompt, few-shot examples, stop sequences, answer extraction)
with ``--generator``, ``--k``, ``--threads`` and ``--max-passage-tokens`` on top when given.

Closed setting (the default): each ranked setting ranks the question's own 10 paragraphs; the
reranker and selector re-score all 10 (BM25 order breaks their ties).

Open setting (``--collection DIR``, a folder made by ``ragsift collection`` or by
``--build-collection CORPUS``): each ranked setting retrieves from the whole collection
(``RagConfig.collection``) instead: ``bm25``, ``dense`` (the collection's embedder) and
``hybrid`` (the collection's fusion, RRF by default) are its retrievers' top-k; ``reranker`` and
``selector`` re-score the ``--candidates`` (20) best passages of the hybrid retriever and keep
their top-k. ``none`` and ``gold`` do not retrieve and are the closed table's; ``all`` has no
meaning without a fixed set of paragraphs per question and is refused.

Reported per setting: EM, F1, supporting recall@1 of the ranking (for the ranked settings), the
selected passages' supporting recall, seconds, and the paired randomization-test p-value of the
F1 difference against the BM25 top-k setting (over the questions both answered: ``--all-limit
N`` runs the costly all-paragraphs setting on the first N questions only). Each selector row
also has the p-values of its EM and F1 against each reranker row (the GainRAG claim: a selector
trained on gain labels beats a top-1 relevance reranker).

Each setting's run folder (``--runs DIR/<setting>``: rankings, predictions, metrics) is reused
when its metrics were computed with the same config and questions, so an interrupted table
resumes where it stopped.

Usage:
    python -m benchmarks.rag_hotpotqa [--questions FILE.jsonl] [--limit 100] \
        [--config configs/rag-hotpotqa.yaml] [--settings none,bm25,gold] [--k 1] \
        [--reranker MODEL ...] [--selector MODEL ...] [--dense minilm-l6] [--threads N] \
        [--generator smollm2-135m] [--all-limit N] [--runs runs/rag-hotpotqa] [--out FILE.json] \
        [--collection DIR [--build-collection CORPUS] [--candidates 20]]
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
OPEN_SETTINGS = ("none", "bm25", "dense", "hybrid", "reranker", "selector", "gold")
Setting = tuple[str, str, RagConfig]  # key (of --settings), name (in the table), config


def check_settings(keys: list[str], open_retrieval: bool) -> str | None:
    """Why ``keys`` (of ``--settings``) cannot be run, or None when they can.

    Example:
        >>> check_settings(["bm25", "all"], open_retrieval=True)[:40]
        '--settings all: open retrieval has no fi'
    """
    if open_retrieval and "all" in keys:
        return ("--settings all: open retrieval has no fixed set of paragraphs per question "
                "to give the generator; leave it out with --collection")
    allowed = OPEN_SETTINGS if open_retrieval else SETTINGS
    unknown = [key for key in keys if key not in allowed]
    return f"--settings: unknown {','.join(unknown)}; known: {','.join(allowed)}" \
        if unknown else None


def first_stages(base: RagConfig, args: argparse.Namespace) -> tuple[list[Setting], RagConfig,
                                                                      str]:
    """The retrieval-only rows, the config the reranker and selector rows add their model to,
    and how their names say what they re-score: BM25 over the question's paragraphs, or (with
    ``--collection``) the collection's hybrid candidates."""
    top = f"top-{base.k}"
    if args.collection is None:
        rows = [("bm25", f"bm25 {top}", replace(base, retriever="bm25")),
                ("dense", f"dense {top} ({args.dense})",
                 replace(base, retriever=f"dense:{args.dense}"))]
        return rows, replace(base, retriever="bm25"), ""
    opened = replace(base, collection=str(args.collection))
    rows = [(side, f"open {side} {top}", replace(opened, collection_retriever=side))
            for side in ("bm25", "dense", "hybrid")]
    return rows, replace(opened, collection_retriever="hybrid"), \
        f", of {opened.candidates} hybrid"


def settings(args: argparse.Namespace) -> list[Setting]:
    """(key, name, config) of every setting of the table kept by ``--settings``, in table
    order."""
    overrides = {"generator": args.generator, "k": args.k, "threads": args.threads,
                 "max_passage_tokens": args.max_passage_tokens, "retriever": "none",
                 "collection": "", "candidates": args.candidates}
    base = load_dataclass(RagConfig, args.config, overrides, what="the RAG pipeline")
    retrieval, first_stage, over = first_stages(base, args)
    rows = [("none", "no context", replace(base, selector="none")),
            ("all", "all paragraphs", replace(base, selector="all")), *retrieval]
    for key, kind, models in (("reranker", "reranker", args.reranker),
                              ("selector", "GainRAG selector", args.selector)):
        rows += [(key, f"{kind} top-{base.k} ({Path(model).name}{over})",
                  replace(first_stage, reranker=model)) for model in models]
    rows.append(("gold", "gold paragraphs", replace(base, selector="gold")))
    keep = set(args.settings.split(","))
    return [row for row in rows if row[0] in keep]


def run_setting(config: RagConfig, examples: list, folder: Path
                ) -> tuple[dict, dict[str, dict[str, float]]]:
    """Metrics and per-question EM and F1 (``{"em": {id: value}, "f1": {...}}``) of one
    setting, computed or read back from ``folder``."""
    metrics_file = folder / "metrics.json"
    done = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    if not (done and done["config"] == asdict(config) and done["questions"] == len(examples)):
        done = Pipeline(config).run(examples, folder)
    predictions = [json.loads(line) for line in (folder / "predictions.jsonl").open()]
    return done, {metric: {p["id"]: p[metric] for p in predictions} for metric in ("em", "f1")}


def paired_p(a: dict[str, float], b: dict[str, float], metric: str) -> float:
    """Randomization-test p-value of ``b`` against ``a`` (per-question values) over the
    questions both answered (:func:`ragsift.evaluate.paired_tests`)."""
    common = a.keys() & b.keys()
    return paired_tests({q: a[q] for q in common}, {q: b[q] for q in common},
                        metric).randomization_p


def p_vs_rerankers(selector: dict[str, dict[str, float]],
                   rerankers: list[tuple[str, dict[str, dict[str, float]]]]
                   ) -> dict[str, dict[str, float]]:
    """Per reranker row (name, per-question values): the EM and F1 p-values of the
    ``selector`` row's per-question values against it."""
    return {name: {metric: paired_p(values[metric], selector[metric], metric)
                   for metric in ("em", "f1")} for name, values in rerankers}


def table(setting_list: list[Setting], done: dict[str, tuple[dict, dict]]
          ) -> tuple[list[dict], list[list]]:
    """The JSON results and the printed rows of the measured settings, with the p-values
    against BM25 top-k (F1) and of each selector against each reranker (EM and F1)."""
    baseline = next((name for key, name, _ in setting_list if key == "bm25"), None)
    rerankers = [(name, done[name][1]) for key, name, _ in setting_list if key == "reranker"]
    models = {name: Path(config.reranker).name for _, name, config in setting_list}
    results, rows = [], []
    for key, name, _ in setting_list:
        metrics, values = done[name]
        p_value = None if baseline is None or name == baseline else \
            paired_p(done[baseline][1]["f1"], values["f1"], "f1")
        versus = p_vs_rerankers(values, rerankers) if key == "selector" else {}
        recall = metrics["supporting_recall@1"] if metrics["config"]["selector"] == "top-k" \
            else None
        results.append({"setting": name, "em": metrics["em"], "f1": metrics["f1"],
                        "supporting_recall@1": recall,
                        "selected_supporting_recall": metrics["selected_supporting_recall"],
                        "f1_p_vs_bm25": p_value, "p_vs_rerankers": versus or None,
                        "seconds": metrics["seconds"], "questions": metrics["questions"],
                        "config": metrics["config"]})
        rows.append([name, metrics["questions"], f"{metrics['em']:.4f}", f"{metrics['f1']:.4f}",
                     "-" if recall is None else f"{recall:.4f}",
                     f"{metrics['selected_supporting_recall']:.4f}",
                     "-" if p_value is None else f"{p_value:.3f}",
                     "; ".join(f"{p['em']:.3f} / {p['f1']:.3f} ({models[other]})"
                               for other, p in versus.items()) or "-",
                     f"{metrics['seconds']:.0f}"])
    return results, rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, checked (``--settings`` defaults to every setting of the mode)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=SHARED / "hotpotqa" / "test.jsonl")
    parser.add_argument("--limit", type=int, default=None, help="first N questions only")
    parser.add_argument("--config", type=Path, default=None,
                        help="base RagConfig YAML (prompt, few-shot, stop, extraction)")
    parser.add_argument("--settings", default=None,
                        help=f"comma-separated subset of {','.join(SETTINGS)} (default: all), or "
                             f"with --collection of {','.join(OPEN_SETTINGS)} (default: all)")
    parser.add_argument("--generator", default=None, help="default: the config's")
    parser.add_argument("--k", type=int, default=None, help="passages of the ranked settings")
    parser.add_argument("--threads", type=int, default=None,
                        help="llama.cpp threads (1 is often fastest on busy cores)")
    parser.add_argument("--dense", default="minilm-l6",
                        help="dense retriever (closed) or embedder of --build-collection")
    parser.add_argument("--reranker", action="append", default=[],
                        help="relevance reranker, one top-1 row each (repeatable)")
    parser.add_argument("--selector", action="append", default=[],
                        help="GainRAG selector, one top-1 row each (repeatable)")
    parser.add_argument("--max-passage-tokens", type=int, default=None)
    parser.add_argument("--all-limit", type=int, default=None, metavar="N",
                        help="the all-paragraphs setting on the first N questions only (its "
                             "prompts are ~10x longer)")
    parser.add_argument("--collection", type=Path, default=None, metavar="DIR",
                        help="open retrieval: ranked settings search this collection")
    parser.add_argument("--build-collection", type=Path, default=None, metavar="CORPUS",
                        help="first create or top up --collection with this BEIR folder "
                             "(hybrid: BM25 + --dense), e.g. ../shared/datasets/hotpotqa-beir")
    parser.add_argument("--candidates", type=int, default=None,
                        help="open retrieval: hybrid passages the reranker and selector "
                             "re-score (default: the config's, 20)")
    parser.add_argument("--runs", type=Path, default=Path("runs/rag-hotpotqa"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    open_retrieval = args.collection is not None
    args.settings = args.settings or ",".join(OPEN_SETTINGS if open_retrieval else SETTINGS)
    problem = check_settings(args.settings.split(","), open_retrieval)
    if problem:
        parser.error(problem)
    if args.build_collection is not None and not open_retrieval:
        parser.error("--build-collection needs --collection DIR (where to build it)")
    if not args.questions.is_file():
        parser.error(f"no questions file at {args.questions}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.build_collection is not None:
        from benchmarks.rag_open_retrieval import build_collection

        added = build_collection(args.collection, args.build_collection, args.dense)
        print(f"{args.collection}: {added.added} added, {added.unchanged} unchanged",
              file=sys.stderr)
    examples = load_qa(args.questions)[:args.limit]
    setting_list = settings(args)
    done = {}
    # the all-paragraphs prompts are ~10x longer: computed last, shown in table order
    for _, name, config in sorted(setting_list, key=lambda row: row[2].selector == "all"):
        slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        chosen = examples[:args.all_limit] if config.selector == "all" else examples
        done[name] = run_setting(config, chosen, args.runs / slug)
        print(f"{name}: EM {done[name][0]['em']:.4f} F1 {done[name][0]['f1']:.4f}",
              file=sys.stderr, flush=True)
    results, rows = table(setting_list, done)
    report(results, ["setting", "questions", "EM", "F1", "supp. R@1", "selected supp. recall",
                     "F1 p vs BM25", "selector vs reranker p (EM / F1)", "seconds"], rows,
           args.out, environment=environment(["llama-cpp-python", "transformers"]),
           questions=str(args.questions), config=str(args.config),
           collection=None if args.collection is None else str(args.collection),
           generator=setting_list[0][2].generator)


if __name__ == "__main__":
    main()
