"""YAML configs: validation with file/line/key errors, types, overrides."""

from __future__ import annotations

import pytest

from ragsift.errors import DataFormatError, RagsiftError
from ragsift.train.config import ColbertConfig, EmbeddingConfig, load_config


def test_yaml_overrides_and_types(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("model: minilm-l6\ndata: d\nout: o\nlearning_rate: 3.0e-5\n"
                    "matryoshka_dims: [384, 128]\nsymmetric: true\n")
    config = load_config("embedding", path, {"batch_size": 8, "seed": None})
    assert isinstance(config, EmbeddingConfig)
    assert config.learning_rate == 3e-5 and config.matryoshka_dims == [384, 128]
    assert config.symmetric is True and config.batch_size == 8 and config.seed == 0
    # command-line strings are converted
    config = load_config("colbert", None,
                         {"model": "m", "data": "d", "out": "o", "embedding_size": "96",
                          "gather": "false"})
    assert isinstance(config, ColbertConfig)
    assert config.embedding_size == 96 and config.gather is False


def test_unknown_key_names_file_line_and_key(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("model: m\ndata: d\nout: o\n\nlearnin_rate: 1e-5\n")
    with pytest.raises(DataFormatError) as error:
        load_config("reranker", path)
    message = str(error.value)
    assert "cfg.yaml" in message and "5" in message and "learnin_rate" in message


def test_bad_values_and_missing_fields(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("model: m\ndata: d\nout: o\nloss: hinge\n")
    with pytest.raises(DataFormatError, match="listwise"):
        load_config("reranker", path)
    path.write_text("model: m\ndata: d\nout: o\nbatch_size: 2.5\n")
    with pytest.raises(DataFormatError, match="integer"):
        load_config("reranker", path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(DataFormatError, match="mapping"):
        load_config("reranker", path)
    with pytest.raises(RagsiftError, match="'model'"):
        load_config("embedding", None, {"data": "d", "out": "o"})
    with pytest.raises(ValueError, match="unknown training task"):
        load_config("sparse", None, {})


def test_shipped_configs_parse():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "configs"
    files = sorted(folder.glob("*.yaml"))
    assert files
    for path in files:
        tasks = ("llm-reranker", "vector-distill", "embedding", "reranker", "colbert")
        task = next(t for t in tasks if path.name.startswith(t))
        config = load_config(task, path)
        assert config.model and config.data and config.out
