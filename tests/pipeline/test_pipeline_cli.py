"""``ragsift search --pipeline``: the run it writes is the pipeline's, and evaluate reads it."""

from __future__ import annotations

import json
import math

import pytest

from ragsift.cli.main import main
from ragsift.data.beir import load_beir
from ragsift.data.trec import read_run
from ragsift.pipeline.config import load_pipeline
from ragsift.pipeline.runner import RetrievalPipeline


@pytest.fixture
def config_file(tmp_path, tiny_cross_encoder):
    path = tmp_path / "pipeline.yaml"
    path.write_text("first_stage: [bm25, 'bm25:bm25l']\n"
                    f"rerank_model: {tiny_cross_encoder}\n"
                    "rerank_top_n: 5\n"
                    "final_fusion: rrf\n"
                    "final_weight: 0.6\n"
                    "k: 4\n")
    return path


def test_search_pipeline_writes_the_pipelines_run_and_evaluate_reads_it(
        tiny_beir, tmp_path, config_file, capsys):
    out = tmp_path / "pipeline.trec"
    assert main(["search", "--data", str(tiny_beir), "--pipeline", str(config_file),
                 "--out", str(out)]) == 0
    data = load_beir(tiny_beir)
    pipeline = RetrievalPipeline(load_pipeline(config_file))
    pipeline.index(data.corpus)
    expected = pipeline.search(data.queries)
    got = read_run(out)
    assert got.keys() == expected.keys()
    for qid, docs in expected.items():
        assert list(got[qid]) == list(docs)
        assert list(got[qid].values()) == pytest.approx(list(docs.values()), rel=1e-5)
        assert len(docs) == 4
    capsys.readouterr()
    qrels = str(tiny_beir / "qrels" / "test.tsv")
    assert main(["evaluate", "--qrels", qrels, str(out), "--metrics", "ndcg@10",
                 "--json"]) == 0
    mean = json.loads(capsys.readouterr().out)["runs"][str(out)]["mean"]
    assert mean["ndcg@10"] == pytest.approx(ndcg_by_hand(data.qrels, got, 10), abs=1e-4)


def ndcg_by_hand(qrels: dict, run: dict, k: int) -> float:
    """Mean nDCG@k with linear gains (trec_eval's), 0 for a judged query the run misses."""
    total = 0.0
    for qid, judged in qrels.items():
        docs = sorted(run.get(qid, {}), key=lambda d: (-run[qid][d], d))[:k]
        dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(docs))
        ideal = sorted(judged.values(), reverse=True)[:k]
        total += dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return total / len(qrels)


def test_k_overrides_the_configs_k(tiny_beir, tmp_path, config_file):
    out = tmp_path / "k2.trec"
    assert main(["search", "--data", str(tiny_beir), "--pipeline", str(config_file),
                 "--k", "2", "--out", str(out)]) == 0
    assert all(len(docs) == 2 for docs in read_run(out).values())


def test_pipeline_excludes_retriever_and_index(tiny_beir, tmp_path, config_file, capsys):
    for extra in (["--retriever", "bm25"], ["--index", str(tmp_path)]):
        assert main(["search", "--data", str(tiny_beir), "--pipeline", str(config_file),
                     *extra, "--out", str(tmp_path / "x.trec")]) == 2
        assert "without --retriever and --index" in capsys.readouterr().err
    assert not (tmp_path / "x.trec").exists()


def test_a_bad_pipeline_file_is_one_located_error_line(tiny_beir, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("k: 5\nrerank_top_n: 0\n")
    assert main(["search", "--data", str(tiny_beir), "--pipeline", str(path),
                 "--out", str(tmp_path / "x.trec")]) != 0
    err = [line for line in capsys.readouterr().err.splitlines() if " ERROR " not in line]
    assert err == [f'ragsift search: error: {path}, line 2, field "rerank_top_n": must be >= 1 '
                   "(got 0)"]
