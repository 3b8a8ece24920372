"""Errors raised below the CLI reach the user as one line on stderr with the right exit status:
2 for a bad option or value (UsageError), 1 for a bad file or model folder; never a
traceback."""

from __future__ import annotations

import pytest

from ragsift.cli.main import EXIT_DATA, EXIT_USAGE, main


def failure(capsys: pytest.CaptureFixture, argv: list[str]) -> tuple[int, str]:
    """The exit status of ``argv`` and its error line: the only one, and the last line on
    stderr (progress bars of the work done before the error aside)."""
    status = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "rerun with -v" not in err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, errors
    assert err.rstrip().splitlines()[-1] == errors[0]
    assert errors[0].startswith(f"ragsift {argv[0]}: error: ")
    return status, errors[0]


def test_option_values_that_cannot_work_exit_2(tiny_beir, tmp_path, capsys):
    run = tmp_path / "run.trec"
    status, line = failure(capsys, ["search", "--data", str(tiny_beir), "--split", "test",
                                    "--retriever", "bm25", "--out", str(run),
                                    "--tag", "two words"])
    assert status == EXIT_USAGE and "run tag 'two words' (--tag): contains whitespace" in line
    assert not run.exists()
    status, line = failure(capsys, ["mine", "--data", str(tiny_beir), "--split", "test",
                                    "--retriever", "bm25", "--filter", "margin",
                                    "--out", str(tmp_path / "mined.jsonl")])
    assert status == EXIT_USAGE and "the margin filter needs a teacher: pass --teacher" in line
    status, line = failure(capsys, ["datasets", "docstrings", "--out", str(tmp_path / "d"),
                                    "--queries", "20", "--documents", "10"])
    assert status == EXIT_USAGE and "n_queries (20) cannot exceed n_documents (10)" in line


def test_a_rag_config_value_that_cannot_work_exits_2(tmp_path, capsys):
    status, line = failure(capsys, ["rag", "--questions", str(tmp_path / "qa.jsonl"),
                                    "--out", str(tmp_path / "out"), "--set", "retriever=bm26"])
    assert status == EXIT_USAGE and 'field "retriever": unknown retriever spec \'bm26\'' in line


def test_a_model_folder_of_no_known_family_exits_1(tiny_beir, tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"architectures": ["MysteryModel"]}')
    run = tmp_path / "first.trec"
    run.write_text("q1 Q0 d1 1 1.0 t\n")
    status, line = failure(capsys, ["rerank", "--data", str(tiny_beir), "--run", str(run),
                                    "--model", str(model), "--out", str(tmp_path / "r.trec")])
    assert status == EXIT_DATA
    assert f'{model / "config.json"}, field "architectures": cannot tell the reranker' in line
    status, line = failure(capsys, ["rerank", "--data", str(tiny_beir), "--run", str(run),
                                    "--model", str(model), "--family", "nope",
                                    "--out", str(tmp_path / "r.trec")])
    assert status == EXIT_USAGE and "unknown reranker family 'nope'" in line
