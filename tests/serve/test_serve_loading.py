"""Loading rerankers for the server: --reranker-family, one-line errors, and no cross-encoder
with a randomly initialised scoring head unless asked for."""

from __future__ import annotations

import argparse
import json

import pytest

from ragsift.errors import UsageError

pytest.importorskip("fastapi")

from ragsift.cli import main as cli_main  # noqa: E402
from ragsift.cli import serve as serve_cli  # noqa: E402
from ragsift.serve.loading import checkpoint_keys, untrained_head  # noqa: E402


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve_cli.register(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])


def one_line_error(capsys, monkeypatch, *argv: str) -> str:
    """Run ``ragsift serve ARGV``, which must fail with exit code 1 (its error caught, not
    raised) and end stderr with a one-line error; returns that line."""
    monkeypatch.setattr(cli_main, "configure_logging", lambda verbose: None)
    assert cli_main.main(["serve", *argv]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("ragsift serve: error: reranker "), last
    return last


def test_the_family_choices_are_the_registered_families():
    from ragsift.rerank.base import _FAMILIES

    assert list(serve_cli.RERANKER_FAMILIES) == sorted(_FAMILIES)


def test_a_bi_encoder_reranker_says_to_name_the_family(capsys, monkeypatch):
    err = one_line_error(capsys, monkeypatch, "--reranker", "minilm-l6")
    assert "cannot tell the reranker family" in err and "--reranker-family" in err


def test_a_cross_encoder_without_its_head_is_refused(capsys, monkeypatch):
    err = one_line_error(capsys, monkeypatch, "--reranker", "minilm-l6",
                         "--reranker-family", "cross-encoder")
    assert "'minilm-l6'" in err and "classifier.weight" in err
    assert "--allow-untrained-head" in err


def test_allow_untrained_head_serves_it(tiny_model_dir):
    from fastapi.testclient import TestClient

    from ragsift.serve.app import create_app

    config = serve_cli.config_from_args(parse(
        "--reranker", str(tiny_model_dir), "--reranker-family", "cross-encoder",
        "--allow-untrained-head"))
    assert config.rerankers["tiny-bert"].options == {"family": "cross-encoder",
                                                     "allow_untrained_head": True}
    with TestClient(create_app(config)) as client:
        ranks = client.post("/rerank", json={"query": "q", "texts": ["a", "b"]})
        assert ranks.status_code == 200 and len(ranks.json()) == 2


def test_the_flags_need_a_reranker():
    with pytest.raises(UsageError, match="--reranker"):
        serve_cli.config_from_args(parse("--index", "i", "--reranker-family", "llm"))


def test_an_unknown_option_is_one_line(capsys, monkeypatch, tiny_cross_encoder, tmp_path):
    config = tmp_path / "serve.yaml"
    config.write_text(json.dumps({"rerankers": {"r": {"model": str(tiny_cross_encoder),
                                                      "options": {"batch_sise": 8}}}}))
    assert "batch_sise" in one_line_error(capsys, monkeypatch, "--config", str(config))


def test_the_missing_head_is_what_transformers_initialises(tiny_model_dir, tiny_cross_encoder):
    from transformers import AutoModelForSequenceClassification

    from ragsift.rerank import Reranker

    for folder, expected in ((tiny_model_dir, {"classifier.weight", "classifier.bias"}),
                             (tiny_cross_encoder, set())):
        reranker = Reranker.load(folder, family="cross-encoder")
        _, info = AutoModelForSequenceClassification.from_pretrained(folder,
                                                                     output_loading_info=True)
        assert set(untrained_head(reranker, folder)) == set(info["missing_keys"]) == expected


def test_checkpoint_keys_of_every_layout(tmp_path):
    import torch

    (tmp_path / "bin").mkdir()
    torch.save({"bert.x": torch.zeros(1), "classifier.bias": torch.zeros(1)},
               tmp_path / "bin" / "pytorch_model.bin")
    assert checkpoint_keys(tmp_path / "bin") == {"bert.x", "classifier.bias"}
    (tmp_path / "sharded").mkdir()
    index = {"weight_map": {"bert.x": "model-00001.safetensors"}}
    (tmp_path / "sharded" / "model.safetensors.index.json").write_text(json.dumps(index))
    assert checkpoint_keys(tmp_path / "sharded") == {"bert.x"}
    assert checkpoint_keys(tmp_path) is None
