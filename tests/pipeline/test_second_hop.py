"""The second hop: hop queries, its training rows (``ragsift hop-pairs``) and the re-ordering
stage, each checked against a hand computation over the model's own pair scores."""

from __future__ import annotations

import json

import pytest

from ragsift.cli.main import main
from ragsift.data.beir import load_beir
from ragsift.data.second_hop import hop_query, hop_training_examples
from ragsift.errors import DataFormatError
from ragsift.pipeline.config import PipelineConfig, load_pipeline
from ragsift.pipeline.runner import RetrievalPipeline
from ragsift.pipeline.second_hop import second_hop
from ragsift.rerank import Reranker
from ragsift.types import Document
from tests.conftest import DOCS, QRELS


def test_hop_query_cuts_the_first_document_to_its_first_words():
    doc = Document("d", "one two  three\nfour", title="Title")
    assert hop_query("q?", doc, words=3) == "q? [SEP] Title: one two three"
    assert hop_query("q?", Document("d", "one two"), words=5) == "q? [SEP] one two"


def test_training_rows_pair_each_relevant_document_with_the_other(tiny_beir):
    data = load_beir(tiny_beir)
    run = {"q5": {"d2": 5.0, "d8": 4.0, "d7": 3.0, "d1": 2.0, "d3": 1.0},
           "q2": {"d1": 2.0, "d6": 1.0},  # q2's negatives: d1 only
           "q1": {"d2": 1.0}}  # one relevant document: no row
    rows = hop_training_examples(data, run, depth=4, words=3)
    got = {(row.query_id, row.pos_ids[0]): row for row in rows}
    # q2 is judged d3 (2), d6 (1); q5 is d7, d2: two ordered pairs each
    assert sorted(got) == [("q2", "d3"), ("q2", "d6"), ("q5", "d2"), ("q5", "d7")]
    row = got[("q5", "d2")]
    assert row.query == "where do wolves hunt [SEP] Wolves: Wolves live and"
    assert row.pos == ["Dogs " + DOCS["d2"][1]]
    assert row.neg_ids == ["d8", "d1"]  # the top 4 minus the relevant d2 and d7
    assert row.neg == [" ".join(DOCS[d]) for d in ("d8", "d1")]
    assert got[("q2", "d6")].query.startswith("programming language readability [SEP] Python:")
    assert got[("q2", "d6")].neg_ids == ["d1"]
    assert set(QRELS["q2"]) | set(QRELS["q5"]) == {"d3", "d6", "d7", "d2"}


def test_hop_pairs_cli_writes_the_rows_and_refuses_data_without_two_relevant_documents(
        tiny_beir, tmp_path, capsys):
    run_file = tmp_path / "run.trec"
    run_file.write_text("q5 Q0 d2 1 5 r\nq5 Q0 d8 2 4 r\nq5 Q0 d7 3 3 r\n"
                        "q1 Q0 d1 1 2 r\nq1 Q0 d3 2 1 r\n")
    out = tmp_path / "hop.jsonl"
    assert main(["hop-pairs", "--data", str(tiny_beir), "--split", "test", "--run",
                 str(run_file), "--context-words", "2", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["query"], r["pos_ids"], r["neg_ids"]) for r in rows] == [
        ("where do wolves hunt [SEP] Wolves: Wolves live", ["d2"], ["d8"]),
        ("where do wolves hunt [SEP] Dogs: Dogs were", ["d7"], ["d8"])]
    only_q1 = tmp_path / "q1.trec"
    only_q1.write_text("q1 Q0 d1 1 2 r\nq1 Q0 d3 2 1 r\n")
    assert main(["hop-pairs", "--data", str(tiny_beir), "--split", "test", "--run",
                 str(only_q1), "--out", str(tmp_path / "none.jsonl")]) != 0
    assert "no training rows" in capsys.readouterr().err
    assert not (tmp_path / "none.jsonl").exists()


def hop_by_hand(run: dict[str, float], query: str, corpus, reranker, depth: int, w: float,
                c: float) -> list[str]:
    """The module docstring's steps 1-2 for one query, from the model's own pair scores."""
    order = sorted(run, key=lambda d: (-run[d], d))
    middle = order[1:depth]
    hop = hop_query(query, corpus[order[0]], 64)
    scores = reranker.score([(hop, corpus[d].full_text()) for d in middle])
    hop_rank = {d: r for r, d in enumerate(
        sorted(middle, key=lambda d: (-scores[middle.index(d)], d)), start=1)}
    fused = {d: (1 - w) / (c + i) + w / (c + hop_rank[d]) for i, d in enumerate(middle, 1)}
    return [order[0], *sorted(middle, key=lambda d: -fused[d]), *order[depth:]]


def test_second_hop_reorders_ranks_two_to_depth_and_keeps_the_scores(tiny_beir,
                                                                      tiny_cross_encoder):
    data = load_beir(tiny_beir)
    reranker = Reranker.load(tiny_cross_encoder)
    run = {"q5": {d: float(8 - i) for i, d in enumerate(sorted(DOCS))},
           "q1": {"d1": 1.0, "d2": 0.5}}  # two documents: nothing to re-order
    out = second_hop(run, data.queries, data.corpus, reranker, depth=6, weight=0.7, rrf_k=2.0)
    expected = hop_by_hand(run["q5"], data.queries["q5"], data.corpus, reranker, 6, 0.7, 2.0)
    got = sorted(out["q5"], key=lambda d: -out["q5"][d])
    assert got == expected
    assert got[6:] == ["d7", "d8"] and got[0] == "d1"
    assert sorted(out["q5"].values(), reverse=True) == sorted(run["q5"].values(), reverse=True)
    assert out["q1"] == run["q1"]
    assert expected[1:6] != ["d2", "d3", "d4", "d5", "d6"]  # the hop did move something


def test_a_pipeline_with_a_hop_model_equals_its_run_without_it_after_second_hop(
        tiny_beir, tiny_cross_encoder):
    data = load_beir(tiny_beir)
    without = PipelineConfig(first_stage=["bm25"], rerank_model=str(tiny_cross_encoder),
                             rerank_top_n=8, k=8)
    with_hop = PipelineConfig(first_stage=["bm25"], rerank_model=str(tiny_cross_encoder),
                              rerank_top_n=8, k=8, hop_model=str(tiny_cross_encoder),
                              hop_depth=5, hop_weight=0.4, hop_rrf_k=3.0)
    runs = []
    for config in (without, with_hop):
        pipeline = RetrievalPipeline(config)
        pipeline.index(data.corpus)
        runs.append(pipeline.search(data.queries))
    assert runs[1] == second_hop(runs[0], data.queries, data.corpus,
                                 Reranker.load(tiny_cross_encoder), 5, 0.4, 3.0)


@pytest.mark.parametrize("line,problem", [("hop_depth: 1", "hop_depth"),
                                          ("hop_weight: 1.5", "hop_weight"),
                                          ("hop_rrf_k: 0", "hop_rrf_k")])
def test_hop_settings_out_of_range_name_the_key_and_line(tmp_path, line, problem):
    path = tmp_path / "p.yaml"
    path.write_text(f"first_stage: [bm25]\n{line}\n")
    with pytest.raises(DataFormatError) as caught:
        load_pipeline(path)
    assert (caught.value.line, caught.value.field) == (2, problem)
