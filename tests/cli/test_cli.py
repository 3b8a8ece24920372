"""The CLI contract, run in-process through ``ragsift.cli.main.main``."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from ragsift.cli.main import main
from ragsift.data.beir import load_beir
from ragsift.data.trec import read_run
from ragsift.evaluate import evaluate
from ragsift.retrieve import BM25Retriever


def test_search_bm25_writes_the_run_bm25_gives(tiny_beir, tmp_path):
    out = tmp_path / "bm25.trec"
    assert main(["search", "--data", str(tiny_beir), "--split", "test", "--retriever", "bm25",
                 "--k", "100", "--out", str(out)]) == 0
    data = load_beir(tiny_beir)
    reference = BM25Retriever()
    reference.index(data.corpus)
    expected = reference.search(data.queries, 100)
    got = read_run(out)
    assert got.keys() == expected.keys()
    for qid in expected:
        assert list(got[qid]) == list(expected[qid])
    line = out.read_text().splitlines()[0].split()
    assert len(line) == 6 and line[1] == "Q0" and line[3] == "1" and line[5] == "ragsift"


def test_search_dense_and_hybrid_with_local_model(tiny_beir, tmp_path, tiny_model_dir):
    for spec, name in ((f"dense:{tiny_model_dir}", "dense"),
                       (f"hybrid:bm25+dense:{tiny_model_dir}", "hybrid")):
        out = tmp_path / f"{name}.trec"
        assert main(["search", "--data", str(tiny_beir), "--retriever", spec, "--k", "5",
                     "--out", str(out)]) == 0
        run = read_run(out)
        assert set(run) == {"q1", "q2", "q3", "q4", "q5"}
        assert all(len(docs) == 5 for docs in run.values())
    convex = tmp_path / "convex.trec"
    assert main(["search", "--data", str(tiny_beir), "--retriever",
                 f"hybrid:bm25+dense:{tiny_model_dir}", "--fusion", "convex", "--weights",
                 "0.7,0.3", "--k", "5", "--out", str(convex)]) == 0
    assert read_run(convex) != read_run(tmp_path / "hybrid.trec")
    onnx = tmp_path / "onnx.trec"
    assert main(["search", "--data", str(tiny_beir), "--retriever", f"dense:{tiny_model_dir}",
                 "--backend", "onnx", "--k", "5", "--out", str(onnx)]) == 0
    for qid, docs in read_run(tmp_path / "dense.trec").items():
        assert read_run(onnx)[qid] == pytest.approx(docs, abs=1e-4)


def test_index_then_search_index_equals_direct_search(tiny_beir, tmp_path):
    assert main(["index", "--data", str(tiny_beir), "--retriever", "bm25:bm25l",
                 "--out", str(tmp_path / "idx")]) == 0
    main(["search", "--data", str(tiny_beir), "--index", str(tmp_path / "idx"),
          "--out", str(tmp_path / "a.trec")])
    main(["search", "--data", str(tiny_beir), "--retriever", "bm25:bm25l",
          "--out", str(tmp_path / "b.trec")])
    assert (tmp_path / "a.trec").read_text() == (tmp_path / "b.trec").read_text()


def test_search_index_refuses_another_model_or_kind(tiny_beir, tmp_path, tiny_model_dir, capsys):
    assert main(["index", "--data", str(tiny_beir), "--retriever", f"dense:{tiny_model_dir}",
                 "--out", str(tmp_path / "idx")]) == 0
    assert main(["search", "--data", str(tiny_beir), "--index", str(tmp_path / "idx"),
                 "--retriever", f"dense:{tiny_model_dir}", "--out", str(tmp_path / "a.trec")]) == 0
    assert main(["search", "--data", str(tiny_beir), "--index", str(tmp_path / "idx"),
                 "--retriever", "dense:minilm-l6", "--out", str(tmp_path / "b.trec")]) == 1
    assert "refusing to query it" in capsys.readouterr().err
    assert main(["search", "--data", str(tiny_beir), "--index", str(tmp_path / "idx"),
                 "--retriever", f"colbert:{tiny_model_dir}", "--out", str(tmp_path / "c.trec")]
                ) == 1
    assert "holds a 'dense' index" in capsys.readouterr().err
    assert not (tmp_path / "b.trec").exists() and not (tmp_path / "c.trec").exists()


def test_evaluate_table_json_and_significance(tiny_beir, tmp_path, capsys):
    qrels = str(tiny_beir / "qrels" / "test.tsv")
    main(["search", "--data", str(tiny_beir), "--retriever", "bm25", "--out",
          str(tmp_path / "a.trec")])
    main(["search", "--data", str(tiny_beir), "--retriever", "bm25", "--stemmer", "none",
          "--out", str(tmp_path / "b.trec")])
    capsys.readouterr()
    assert main(["evaluate", "--qrels", qrels, str(tmp_path / "a.trec"), str(tmp_path / "b.trec"),
                 "--metrics", "ndcg@10,recall@100", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    expected = evaluate(load_beir(tiny_beir).qrels, read_run(tmp_path / "a.trec"),
                        ["ndcg@10", "recall@100"]).mean
    assert payload["runs"][str(tmp_path / "a.trec")]["mean"] == pytest.approx(expected)
    assert {c["metric"] for c in payload["comparisons"]} == {"ndcg@10", "recall@100"}
    assert main(["evaluate", "--qrels", qrels, str(tmp_path / "a.trec")]) == 0
    table = capsys.readouterr().out
    assert "| run " in table and "ndcg@10" in table and "a.trec" in table


def test_bad_input_exits_1_naming_file_and_line(tiny_beir, tmp_path, capsys):
    with open(tiny_beir / "corpus.jsonl", "a") as f:
        f.write('{"_id": "d9", "title": "no text"}\n')
    code = main(["search", "--data", str(tiny_beir), "--retriever", "bm25",
                 "--out", str(tmp_path / "x.trec")])
    err = capsys.readouterr().err
    assert code == 1 and "corpus.jsonl, line 9" in err and '"text"' in err
    assert not (tmp_path / "x.trec").exists()


@pytest.mark.parametrize("spec", ["bm24", "dense", "hybrid:bm25", "bm25:okapi"])
def test_bad_specs_are_usage_errors(tiny_beir, tmp_path, spec):
    with pytest.raises(SystemExit) as info:
        main(["search", "--data", str(tiny_beir), "--retriever", spec,
              "--out", str(tmp_path / "x.trec")])
    assert info.value.code == 2


def test_a_second_retriever_is_refused_not_silently_kept(tiny_beir, tmp_path, capsys):
    out = tmp_path / "x.trec"
    with pytest.raises(SystemExit) as info:
        main(["search", "--data", str(tiny_beir), "--retriever", "dense:m", "--retriever", "bm25",
              "--out", str(out)])
    assert info.value.code == 2
    assert ("--retriever given twice ('dense:m', then 'bm25'); to fuse retrievers give one "
            "spec: --retriever hybrid:dense:m+bm25") in capsys.readouterr().err
    assert not out.exists()


def test_help_everywhere(capsys):
    for command in ([], ["search"], ["evaluate"], ["index"], ["rerank"], ["demo"], ["datasets"]):
        with pytest.raises(SystemExit) as info:
            main([*command, "--help"])
        assert info.value.code == 0
        assert "usage: ragsift" in capsys.readouterr().out


def test_demo_with_a_local_model(tmp_path, tiny_model_dir, capsys):
    assert main(["demo", "--model", str(tiny_model_dir), "--queries", "30", "--documents",
                 "120", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    for label in ("bm25", "dense:", "hybrid-rrf", "hybrid-convex", "ndcg@10"):
        assert label in out
    summary = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert summary["queries"] == 30 and summary["documents"] == 120
    assert 0.0 < summary["metrics"]["bm25"]["ndcg@10"] <= 1.0


def test_rerank_cli_equals_library(tiny_beir, tmp_path, tiny_cross_encoder):
    from ragsift.rerank import Reranker

    first = tmp_path / "bm25.trec"
    main(["search", "--data", str(tiny_beir), "--retriever", "bm25", "--out", str(first)])
    out = tmp_path / "reranked.trec"
    assert main(["rerank", "--data", str(tiny_beir), "--split", "test", "--run", str(first),
                 "--model", str(tiny_cross_encoder), "--long-doc", "max", "--k", "3",
                 "--max-length", "64", "--out", str(out)]) == 0
    data = load_beir(tiny_beir)
    expected = Reranker.load(tiny_cross_encoder, max_length=64, device="cpu").rerank(
        data.queries, data.corpus, read_run(first), k=3)
    got = read_run(out)
    assert got.keys() == expected.keys()
    for qid in expected:
        assert list(got[qid]) == [d for d, _ in sorted(expected[qid].items(),
                                                       key=lambda x: (-x[1], x[0]))]
    onnx_out = tmp_path / "onnx.trec"
    assert main(["rerank", "--data", str(tiny_beir), "--run", str(first), "--model",
                 str(tiny_cross_encoder), "--backend", "onnx", "--k", "3", "--max-length", "64",
                 "--out", str(onnx_out)]) == 0
    assert read_run(onnx_out).keys() == got.keys()
    for qid in got:
        assert read_run(onnx_out)[qid] == pytest.approx(got[qid], abs=1e-4)


def one_error_line(capsys: pytest.CaptureFixture, command: str) -> str:
    """The stderr of a failed command: exactly one line, ``ragsift COMMAND: error: ...``."""
    lines = [line for line in capsys.readouterr().err.splitlines() if " ERROR " not in line]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"ragsift {command}: error: ")
    return lines[0]


def test_unknown_metric_is_a_usage_error(tiny_beir, tmp_path, capsys):
    run = tmp_path / "a.trec"
    run.write_text("q1 Q0 d1 1 1.0 t\n")
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--qrels", str(tiny_beir / "qrels" / "test.tsv"), str(run),
              "--metrics", "foo@10"])
    assert info.value.code == 2
    assert "unknown metric 'foo@10'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--qrels", str(tiny_beir / "qrels" / "test.tsv"), str(run),
              "--metrics", "recall"])
    assert info.value.code == 2


def test_os_errors_are_one_line(tiny_beir, tmp_path, capsys):
    run = tmp_path / "a.trec"
    run.write_text("q1 Q0 d1 1 1.0 t\n")
    assert main(["evaluate", "--qrels", str(tmp_path), str(run)]) == 1
    assert "is a folder" in one_error_line(capsys, "evaluate")
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.tsv"
        shutil.copy(tiny_beir / "qrels" / "test.tsv", locked)
        locked.chmod(0)
        assert main(["evaluate", "--qrels", str(locked), str(run)]) == 1
        assert "Permission denied" in one_error_line(capsys, "evaluate")


def test_bad_run_and_qrels_values_name_file_and_line(tiny_beir, tmp_path, capsys):
    qrels = str(tiny_beir / "qrels" / "test.tsv")
    run = tmp_path / "nan.trec"
    run.write_text("q1 Q0 d1 1 nan t\n")
    assert main(["evaluate", "--qrels", qrels, str(run)]) == 1
    assert "nan.trec, line 1, field \"score\"" in one_error_line(capsys, "evaluate")
    big = tmp_path / "big.tsv"
    big.write_text("q1\td1\t99999999999999999999\n")
    run.write_text("q1 Q0 d1 1 1.0 t\n")
    assert main(["evaluate", "--qrels", str(big), str(run)]) == 1
    assert "big.tsv, line 1" in one_error_line(capsys, "evaluate")


def test_unexpected_errors_are_one_line_unless_verbose(tiny_beir, tmp_path, capsys,
                                                       monkeypatch):
    import ragsift.cli.evaluate as command

    def broken(args):
        raise RuntimeError("something internal\nwith a second line")

    monkeypatch.setattr(command, "run", broken)
    argv = ["evaluate", "--qrels", str(tiny_beir / "qrels" / "test.tsv"), "x.trec"]
    assert main(argv) == 1
    line = one_error_line(capsys, "evaluate")
    assert "RuntimeError" in line and line.endswith("rerun with -v for the traceback")
    with pytest.raises(RuntimeError):
        main(["-v", *argv])

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "run", interrupted)
    assert main(argv) == 130


def test_sigterm_cleans_up_like_ctrl_c_and_exits_143(tiny_beir, tmp_path, monkeypatch, capsys):
    import os
    import signal

    from ragsift.atomic import atomic_file
    from ragsift.cli import evaluate as command

    target = tmp_path / "out" / "out.txt"
    target.parent.mkdir()

    def killed_while_writing(args):
        with atomic_file(target) as f:
            f.write("half")
            os.kill(os.getpid(), signal.SIGTERM)  # a scheduler stopping the job
            f.write(" of it")
        return 0

    monkeypatch.setattr(command, "run", killed_while_writing)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["evaluate", "--qrels", str(tiny_beir / "qrels" / "test.tsv"), "x.trec"]) == 143
    assert capsys.readouterr().err.strip() == "ragsift evaluate: terminated"
    assert list(target.parent.iterdir()) == []  # neither the file nor its temporary copy
    assert signal.getsignal(signal.SIGTERM) is before


def test_datasets_validate_names_the_file_of_broken_inputs(tiny_beir, capsys):
    (tiny_beir / "corpus.jsonl.gz").write_bytes(b"plain text, not gzip\n")
    (tiny_beir / "corpus.jsonl").unlink()
    assert main(["datasets", "validate", str(tiny_beir)]) == 1
    out = capsys.readouterr().out
    assert "corpus.jsonl.gz, line 1" in out and "not a gzip file" in out


def test_document_ids_with_whitespace_are_refused(tiny_beir, tmp_path, capsys):
    with open(tiny_beir / "corpus.jsonl", "a") as f:
        f.write(json.dumps({"_id": "d 9", "text": "two words"}) + "\n")
    assert main(["datasets", "validate", str(tiny_beir)]) == 1
    out = capsys.readouterr().out
    assert 'corpus.jsonl, line 9, field "_id"' in out and "whitespace" in out
    assert main(["search", "--data", str(tiny_beir), "--retriever", "bm25", "--out",
                 str(tmp_path / "x.trec")]) == 1
    assert not (tmp_path / "x.trec").exists()


def test_index_model_outside_the_folder_needs_naming(tiny_beir, tmp_path, tiny_model_dir,
                                                     capsys):
    index = tmp_path / "idx"
    assert main(["index", "--data", str(tiny_beir), "--retriever", f"dense:{tiny_model_dir}",
                 "--out", str(index)]) == 0
    search = ["search", "--data", str(tiny_beir), "--index", str(index), "--out",
              str(tmp_path / "a.trec")]
    capsys.readouterr()
    assert main(search) == 1
    assert "outside the index folder" in one_error_line(capsys, "search")
    assert main([*search, "--retriever", f"dense:{tiny_model_dir}"]) == 0
    inside = tmp_path / "idx2"
    shutil.copytree(index, inside)
    shutil.copytree(tiny_model_dir, inside / "model")
    manifest = json.loads((inside / "manifest.json").read_text())
    (inside / "manifest.json").write_text(json.dumps({**manifest, "model": "model"}))
    assert main(["search", "--data", str(tiny_beir), "--index", str(inside), "--out",
                 str(tmp_path / "b.trec")]) == 0  # resolved against the index, not the cwd
    assert read_run(tmp_path / "b.trec") == read_run(tmp_path / "a.trec")


def test_index_resumes_from_cached_blocks_after_a_kill(tmp_path, tiny_model_dir, monkeypatch):
    from ragsift.retrieve.dense import DenseRetriever
    from ragsift.retrieve.embedding_cache import EmbeddingCache

    corpus = tmp_path / "corpus.jsonl"
    with open(corpus, "w") as f:
        for i in range(600):
            f.write(json.dumps({"_id": f"d{i}", "text": f"document number {i} about wolves"})
                    + "\n")
    caches: list[EmbeddingCache] = []
    init = EmbeddingCache.__init__
    monkeypatch.setattr(EmbeddingCache, "__init__",
                        lambda self, *a: init(self, *a) or caches.append(self))
    encode = DenseRetriever._encode_block
    calls: list[int] = []

    def dying(self, texts):
        calls.append(len(texts))
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while encoding the second block
        return encode(self, texts)

    monkeypatch.setattr(DenseRetriever, "_encode_block", dying)
    argv = ["index", "--data", str(corpus), "--retriever", f"dense:{tiny_model_dir}",
            "--out", str(tmp_path / "idx")]
    assert main(argv) == 130
    assert calls == [256, 256]  # the command line's block size, not DenseRetriever's 4096
    monkeypatch.setattr(DenseRetriever, "_encode_block", encode)
    assert main(argv) == 0
    assert (caches[-1].hits, caches[-1].misses) == (1, 2)  # the finished block was reused
    assert Path(tmp_path / "idx" / "manifest.json").is_file()


@pytest.mark.parametrize("argv", [["serve"], ["collection", "delete", "DIR"],
                                  ["train", "embedding", "--data", "x", "--model", "m",
                                   "--out", "o", "--set", "novalue"]])
def test_usage_errors_exit_2_with_one_line(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ragsift {argv[0]}: error:") and "\n" not in err


def test_retriever_settings_that_cannot_work_are_usage_errors(tiny_beir, tmp_path, capsys,
                                                              tiny_model_dir):
    search = ["search", "--data", str(tiny_beir), "--out", str(tmp_path / "x.trec")]
    assert main([*search, "--retriever", "hybrid:bm25+bm25:atire", "--weights", "1,2,3"]) == 2
    assert "3 fusion weights for 2 retrievers" in one_error_line(capsys, "search")
    # tiny_model_dir's vectors have 32 dimensions
    assert main([*search, "--retriever", f"dense:{tiny_model_dir}", "--truncate-dim", "33"]) == 2
    assert "must be in 1..32 for this model, got 33" in one_error_line(capsys, "search")
    assert not (tmp_path / "x.trec").exists()
