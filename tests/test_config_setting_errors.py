"""Settings that cannot work together (a config's own ``__post_init__`` checks) reach the CLI
user as one error line naming the config file, the line of the key and the key, with exit
status 2 (a usage error), for training and RAG configs alike; a value set on the command line
is named as ``<command line>``."""

from __future__ import annotations

import pytest

from ragsift.cli.main import EXIT_USAGE, main


def line_of(text: str, key: str) -> int:
    """The 1-based line of ``text`` on which ``key:`` starts."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(f"{key}:"))


def one_error_line(capsys: pytest.CaptureFixture, argv: list[str]) -> tuple[int, str]:
    """The exit status of ``argv`` and its stderr, which must be one error line."""
    status = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"ragsift {argv[0]}: error: ")
    return status, lines[0]


@pytest.mark.parametrize("task, settings, key, words", [
    ("reranker", "loss: listwise\nhidden_distill_weight: 0.5\n", "hidden_distill_weight",
     "needs layers"),
    ("embedding", "matryoshka_dims: [384, 128]\nmatryoshka_weights: [1.0]\n",
     "matryoshka_weights", "1 weights for 2 matryoshka_dims"),
])
def test_a_train_config_conflict_names_file_and_line_and_exits_2(tmp_path, capsys, task,
                                                                   settings, key, words):
    out = tmp_path / "model"
    text = f"model: m\ndata: d\nout: {out}\n{settings}"
    path = tmp_path / "train.yaml"
    path.write_text(text)
    status, line = one_error_line(capsys, ["train", task, "--config", str(path)])
    assert status == EXIT_USAGE
    assert f'{path}, line {line_of(text, key)}, field "{key}": {words}' in line
    assert not out.exists()


@pytest.mark.parametrize("settings, key, words", [
    ("k: 2\nselector: threshold\n", "selector", "threshold keeps passages by reranker"),
    ("k: 2\nselector: top-k\nretriever: bm26\n", "retriever", "unknown retriever spec 'bm26'"),
])
def test_a_rag_config_conflict_names_file_and_line_and_exits_2(tmp_path, capsys, settings,
                                                                 key, words):
    path = tmp_path / "rag.yaml"
    path.write_text(settings)
    out = tmp_path / "out"
    status, line = one_error_line(capsys, ["rag", "--questions", str(tmp_path / "qa.jsonl"),
                                           "--config", str(path), "--out", str(out)])
    assert status == EXIT_USAGE
    assert f'{path}, line {line_of(settings, key)}, field "{key}": {words}' in line
    assert not out.exists()


def test_a_conflict_set_on_the_command_line_is_named_so(tmp_path, capsys):
    path = tmp_path / "rag.yaml"
    path.write_text("k: 2\n")
    status, line = one_error_line(capsys, ["rag", "--questions", str(tmp_path / "qa.jsonl"),
                                           "--config", str(path), "--out", str(tmp_path / "o"),
                                           "--set", "selector=threshold"])
    assert status == EXIT_USAGE
    assert '<command line>, field "selector": threshold keeps passages' in line


def test_a_bad_server_option_names_its_item_at_the_key_line_and_exits_2(tmp_path, capsys):
    text = 'k: 1\nserver_options:\n  - seed=1\n  - nokey\n'
    path = tmp_path / "rag.yaml"
    path.write_text(text)
    status, line = one_error_line(capsys, ["rag", "--questions", str(tmp_path / "qa.jsonl"),
                                           "--config", str(path), "--out", str(tmp_path / "o")])
    assert status == EXIT_USAGE
    assert f'{path}, line 2, field "server_options[1]": expected KEY=VALUE' in line, line


def test_a_train_config_without_its_model_exits_2(tmp_path, capsys):
    path = tmp_path / "train.yaml"
    path.write_text(f"data: d\nout: {tmp_path / 'model'}\n")
    status, line = one_error_line(capsys, ["train", "embedding", "--config", str(path)])
    assert status == EXIT_USAGE
    assert "embedding training needs 'model' (config file or --model)" in line
