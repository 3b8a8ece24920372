"""Bad retriever and model settings, checked in ``ragsift.retrieve`` and ``ragsift.models``,
reach the command line as one error line, not a traceback: exit status 2 for a bad option
(UsageError), 1 for a bad model file (DataFormatError, naming the file and field)."""

from __future__ import annotations

import json
import shutil

import pytest

from ragsift.cli.main import EXIT_DATA, EXIT_USAGE, main


def error_line(capsys: pytest.CaptureFixture) -> str:
    """The last line on stderr, after checking that no traceback came before it."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and "rerun with -v" not in err
    return err.rstrip().splitlines()[-1]


@pytest.mark.parametrize(("retriever", "options", "message"), [
    ("colbert", ["--pool-factor", "0"], "pool_factor must be >= 1, got 0"),
    ("dense", ["--batch-size", "0"], "batch_size must be >= 1, got 0"),
])
def test_bad_retriever_settings_exit_2_with_one_line(tiny_beir, tiny_model_dir, tmp_path,
                                                      capsys, retriever, options, message):
    out = tmp_path / "run.trec"
    status = main(["search", "--data", str(tiny_beir), "--split", "test", "--retriever",
                   f"{retriever}:{tiny_model_dir}", *options, "--out", str(out)])
    assert status == EXIT_USAGE
    assert error_line(capsys) == f"ragsift search: error: {message}"
    assert not out.exists()


def test_a_model_folder_with_two_pooling_modes_exits_1_naming_the_file(
        tiny_beir, tiny_model_dir, tmp_path, capsys):
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    pooling = model / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=True, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    status = main(["search", "--data", str(tiny_beir), "--split", "test", "--retriever",
                   f"dense:{model}", "--out", str(tmp_path / "run.trec")])
    assert status == EXIT_DATA
    line = error_line(capsys)
    assert line.startswith(f"ragsift search: error: {pooling}, field \"pooling_mode\": ")
    assert "expected exactly one pooling mode enabled" in line
