"""benchmarks.rag_hotpotqa in the open-retrieval setting (``--collection``): on a tiny hybrid
collection, the BM25 row gives the generator what BM25 over the collection's documents returns
(bm25s via ``BM25Retriever``, an index built apart from the collection), the selector row has
paired p-values against the reranker row, finished settings are reused, and ``all`` is
refused."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

import benchmarks.rag_hotpotqa as rag_table
from ragsift.evaluate import paired_tests
from ragsift.retrieve.bm25 import BM25Retriever
from ragsift.types import Document

DOCS = {"eiffel": ("Eiffel Tower", "The Eiffel Tower is a landmark in Paris."),
        "gustave": ("Gustave Eiffel", "Gustave Eiffel was an engineer who built towers."),
        "bananas": ("Bananas", "Ripe bananas are yellow."),
        "thames": ("River Thames", "The Thames flows through London."),
        "westminster": ("Westminster", "A borough with many old buildings."),
        **{f"n{i}": ("", f"Unrelated note number {i} about trains and mountains.")
           for i in range(20)}}
QUESTIONS = [("q1", "Where is the Eiffel Tower?", "Paris", {"eiffel", "gustave"}),
             ("q2", "What colour are ripe bananas?", "yellow", {"bananas"}),
             ("q3", "Which river flows through London?", "Thames", {"thames", "westminster"})]
K = 2


def qa_row(qid: str, question: str, answer: str, gold: set[str]) -> dict:
    """A HotpotQA-style row: the gold paragraphs plus one distractor."""
    names = sorted(gold) + ["n0"]
    return {"id": qid, "question": question, "answer": answer,
            "paragraphs": [{"title": DOCS[n][0], "text": DOCS[n][1], "is_supporting": n in gold}
                           for n in names]}


@pytest.fixture
def table_args(tmp_path, tiny_model_dir, tiny_llm, tiny_cross_encoder, tiny_cross_encoder_2):
    from ragsift.collection import Collection

    questions = tmp_path / "qa.jsonl"
    questions.write_text("".join(json.dumps(qa_row(*q)) + "\n" for q in QUESTIONS))
    col = Collection.create(tmp_path / "col", retriever="hybrid", embedder=str(tiny_model_dir))
    col.add([{"id": i, "title": title, "text": text} for i, (title, text) in DOCS.items()])
    col.close()
    config = tmp_path / "rag.yaml"
    config.write_text("max_new_tokens: 4\nbatch_size: 4\n")
    return ["--questions", str(questions), "--collection", str(tmp_path / "col"),
            "--config", str(config), "--generator", str(tiny_llm), "--k", str(K),
            "--candidates", "5", "--reranker", str(tiny_cross_encoder),
            "--selector", str(tiny_cross_encoder_2), "--runs", str(tmp_path / "runs"),
            "--out", str(tmp_path / "table.json"),
            "--settings", "none,bm25,hybrid,reranker,selector,gold"]


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_open_table_bm25_rows_and_selector_vs_reranker(table_args, tmp_path):
    rag_table.main(table_args)
    results = {r["setting"]: r for r in json.loads((tmp_path / "table.json").read_text())
               ["results"]}
    assert list(results) == ["no context", "open bm25 top-2", "open hybrid top-2",
                             "reranker top-2 (one-label, of 5 hybrid)",
                             "GainRAG selector top-2 (two-labels, of 5 hybrid)",
                             "gold paragraphs"]

    reference = BM25Retriever()  # BM25 over the same documents, indexed apart
    reference.index({i: Document(i, text, title) for i, (title, text) in DOCS.items()})
    run = tmp_path / "runs" / "open-bm25-top-2"
    rankings = read_jsonl(run / "rankings.jsonl")
    predictions = read_jsonl(run / "predictions.jsonl")
    recalls = []
    for (qid, question, _, gold), row, prediction in zip(QUESTIONS, rankings, predictions):
        hits = reference.search({qid: question}, k=K)[qid]
        expected = [doc_id for doc_id, score in hits.items() if score > 0]
        assert [row["passages"][i] for i in prediction["selected"]] == expected
        recalls.append(len(set(expected) & gold) / len(gold))
    assert recalls == [1.0, 1.0, 0.5]  # Westminster shares no term with q3
    bm25 = results["open bm25 top-2"]
    assert bm25["selected_supporting_recall"] == pytest.approx(np.mean(recalls))
    assert bm25["config"]["collection_retriever"] == "bm25"
    assert results["no context"]["config"]["collection"] == ""  # none and gold do not retrieve

    selector = results["GainRAG selector top-2 (two-labels, of 5 hybrid)"]
    reranker_name = "reranker top-2 (one-label, of 5 hybrid)"
    assert set(selector["p_vs_rerankers"]) == {reranker_name}
    assert results[reranker_name]["config"]["collection_retriever"] == "hybrid"
    per_question = {name: read_jsonl(tmp_path / "runs" / folder / "predictions.jsonl")
                    for name, folder in (("reranker", "reranker-top-2--one-label--of-5-hybrid"),
                                         ("selector",
                                          "GainRAG-selector-top-2--two-labels--of-5-hybrid"))}
    for metric in ("em", "f1"):
        p = selector["p_vs_rerankers"][reranker_name][metric]
        assert 0.0 <= p <= 1.0
        a, b = ({r["id"]: r[metric] for r in per_question[name]}
                for name in ("reranker", "selector"))
        assert p == paired_tests(a, b, metric).randomization_p
    assert results[reranker_name]["p_vs_rerankers"] is None


def test_finished_settings_are_reused(table_args, tmp_path):
    rag_table.main(table_args[:-2] + ["--settings", "none,bm25"])
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/metrics.json")}
    assert len(stamps) == 2
    rag_table.main(table_args[:-2] + ["--settings", "none,bm25"])
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_all_paragraphs_and_unknown_settings_are_refused(table_args, capsys):
    for settings, message in (("bm25,all", "open retrieval has no fixed set"),
                              ("bm25,hybird", "unknown hybird")):
        with pytest.raises(SystemExit) as exit_info:
            rag_table.main(table_args[:-2] + ["--settings", settings])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert rag_table.check_settings(["hybrid"], open_retrieval=False).startswith(
        "--settings: unknown hybrid")
    assert doctest.testmod(rag_table).failed == 0
