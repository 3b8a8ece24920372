"""YAML configs: validation with file/line/key errors, types, overrides."""

from __future__ import annotations

import pytest

from ragsift.errors import DataFormatError, RagsiftError, UsageError
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
    from ragsift.train.config import TASKS

    # training configs are named after their task (longest name first: llm-reranker before
    # reranker); others (rag-*.yaml) belong to other commands
    tasks = sorted(TASKS, key=len, reverse=True)
    files = [(path, next(t for t in tasks if path.name.startswith(f"{t}-")))
             for path in sorted(folder.glob("*.yaml"))
             if any(path.name.startswith(f"{t}-") for t in tasks)]
    assert len(files) >= 12
    for path, task in files:
        config = load_config(task, path)
        assert config.model and config.data and config.out


BASE = "model: m\ndata: d\nout: o\n"


@pytest.mark.parametrize(("extra", "line", "key", "message"), [
    ("batch_size: true\n", 4, "batch_size", "expected an integer"),
    ("matryoshka_dims: [1.5, 2.7]\n", 4, "matryoshka_dims[0]", "expected an integer"),
    ("learning_rate: .nan\n", 4, "learning_rate", "finite"),
    ("learning_rate: .inf\n", 4, "learning_rate", "finite"),
    ("learning_rate: -1\n", 4, "learning_rate", "must be > 0"),
    ("batch_size: -8\n", 4, "batch_size", "must be >= 1"),
    ("batch_size: 99999999999999999999\n", 4, "batch_size", "must be <="),
    ("batch_size: " + "9" * 5000 + "\n", 4, "batch_size", "integer too long"),
    ("warmup_ratio: 1.5\n", 4, "warmup_ratio", "must be <= 1"),
    ("temperature: 0\n", 4, "temperature", "must be > 0"),
    ("symmetric: 1\n", 4, "symmetric", "true or false"),
    ("pooling: 3\n", 4, "pooling", "must be one of"),
    ("batch_size: 4\nbatch_size: 8\n", 5, "batch_size", "duplicate key (first on line 4)"),
    ("query_prompt: {a: 1, a: 2}\n", 4, "query_prompt", "duplicate key 'a'"),
    ("query_prompt: !!python/name:os.system\n", 4, "query_prompt", "constructor"),
])
def test_values_are_checked_not_coerced(tmp_path, extra, line, key, message):
    path = tmp_path / "cfg.yaml"
    path.write_text(BASE + extra)
    with pytest.raises(DataFormatError) as info:
        load_config("embedding", path)
    error = info.value
    assert (error.path, error.line, error.field) == (str(path), line, key), str(error)
    assert message in str(error)


@pytest.mark.parametrize(("text", "key"), [
    ("model: m\ndata: null\nout: o\n", "data"),
    ("model: {name: x}\ndata: d\nout: o\n", "model"),
    ("model: m\ndata: [a, b]\nout: o\n", "data"),
    ("model: m\ndata: 2024\nout: o\n", "data"),
])
def test_strings_are_not_made_from_other_values(tmp_path, text, key):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=f'field "{key}": expected a string'):
        load_config("reranker", path)


def test_anchors_and_aliases_are_refused(tmp_path):
    path = tmp_path / "bomb.yaml"
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{c}: &{c} [{','.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]
    path.write_text(BASE + "\n".join(lines) + "\n")
    assert len(path.read_bytes()) < 600
    with pytest.raises(DataFormatError, match=r"bomb\.yaml, line 4: .*anchors"):
        load_config("embedding", path)
    path.write_text(BASE + "query_prompt: *x\n")
    with pytest.raises(DataFormatError, match="aliases"):
        load_config("embedding", path)


def test_broken_files_name_the_file(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_bytes(BASE.encode() + b"split: tr\xe9in\n")
    with pytest.raises(DataFormatError, match=r"cfg\.yaml, line 4: invalid UTF-8"):
        load_config("embedding", path)
    path.write_text(BASE + "matryoshka_dims: " + "[" * 20000 + "]" * 20000 + "\n")
    with pytest.raises(DataFormatError, match=r"cfg\.yaml"):
        load_config("embedding", path)
    path.write_text(BASE + "? [a, b]\n: 1\n")
    with pytest.raises(DataFormatError, match="keys must be plain names"):
        load_config("embedding", path)


def test_command_line_strings_are_parsed_strictly():
    base = {"model": "m", "data": "d", "out": "o"}
    config = load_config("embedding", None, {**base, "learning_rate": "3e-5",
                                             "matryoshka_dims": "384,128", "symmetric": "yes"})
    assert config.learning_rate == 3e-5 and config.matryoshka_dims == [384, 128]
    assert config.symmetric is True
    for key, value in (("batch_size", "8.0"), ("batch_size", "1_0"), ("learning_rate", "nan"),
                       ("batch_size", "-8"), ("matryoshka_dims", "1.5,2"), ("seed", "-1")):
        with pytest.raises(DataFormatError, match=f'<command line>, field "{key}'):
            load_config("embedding", None, {**base, key: value})
    with pytest.raises(DataFormatError, match="batch_size"):
        load_config("embedding", None, {**base, "batch_size": -8})  # an argparse int


def test_settings_that_cannot_work_together_are_usage_errors():
    base = {"model": "m", "data": "d", "out": "o"}
    config = load_config("embedding", None, {**base, "matryoshka_dims": "384,128",
                                             "matryoshka_weights": "1,0.5"})
    assert config.matryoshka_weights == [1.0, 0.5]
    with pytest.raises(UsageError,
                       match='field "matryoshka_weights": 1 weights for 2 matryoshka_dims'):
        load_config("embedding", None, {**base, "matryoshka_dims": "384,128",
                                        "matryoshka_weights": "1"})
    with pytest.raises(UsageError, match='field "hidden_distill_weight": needs layers'):
        load_config("reranker", None, {**base, "hidden_distill_weight": "0.5"})
    assert load_config("reranker", None, {**base, "hidden_distill_weight": "0.5",
                                          "layers": "2"}).layers == 2


def test_integer_values_of_float_keys_are_fine(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(BASE + "epochs: 2\nattention_dropout: 0\nlearning_rate: 1.0e-4\n")
    config = load_config("embedding", path)
    assert config.epochs == 2.0 and isinstance(config.epochs, float)
    assert config.attention_dropout == 0.0


def test_a_field_range_can_exceed_32_bits():
    config = load_config("embedding", None, {"model": "m", "data": "d", "out": "o",
                                             "seed": 2**32 - 1})
    assert config.seed == 2**32 - 1


def test_optional_keys_take_null_or_stay_unset(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(BASE + "max_steps: null\ndistill: kl\n")
    config = load_config("reranker", path)
    assert config.max_steps is None and config.distill == "kl"
    assert config.attention_dropout is None and config.layers is None  # absent: the default
    # on the command line: null, none or nothing unsets; a value is checked as before
    for text in ("null", "None", ""):
        assert load_config("reranker", path, {"distill": text}).distill is None
    assert load_config("reranker", path, {"max_steps": "12"}).max_steps == 12
    # the old sentinels are now errors that name the key
    for text, key in (("distill: ''\n", "distill"), ("max_steps: -1\n", "max_steps"),
                      ("attention_dropout: -1\n", "attention_dropout")):
        path.write_text(BASE + text)
        with pytest.raises(DataFormatError) as info:
            load_config("reranker", path)
        assert (info.value.line, info.value.field) == (4, key)


def test_every_key_of_every_task_has_help_and_the_cli_prints_it():
    from dataclasses import fields

    from ragsift.cli.train import keys_help
    from ragsift.config_file import fields_help
    from ragsift.train.config import TASKS

    text = keys_help()
    for name, entry in TASKS.items():
        rows = fields_help(entry.config)
        assert [row[0] for row in rows] == [f.name for f in fields(entry.config)]
        for key, _, _, help_text in rows:
            assert help_text, f"{name}.{key} has no help"
            assert f"  {key} (" in text
        assert f"  {name}: {entry.help}" in text


def test_tables_drive_the_parser_and_the_builder(tiny_model_dir):
    from typing import get_args, get_type_hints

    from ragsift.errors import UsageError
    from ragsift.train.config import TASKS, LLMRerankerConfig, RerankerConfig
    from ragsift.train.registry import GROUP_LOSSES
    from ragsift.train.task import TrainingTask
    from ragsift.train.tasks import build_task

    for cls in (RerankerConfig, LLMRerankerConfig):
        assert get_args(get_type_hints(cls)["loss"]) == tuple(GROUP_LOSSES)
    for entry in GROUP_LOSSES.values():
        assert callable(entry.load())
    for entry in TASKS.values():
        assert issubclass(entry.load(), TrainingTask)
    task = build_task("reranker", load_config("reranker", None, {
        "model": str(tiny_model_dir), "data": "d", "out": "o", "loss": "lambdaloss"}))
    assert task.label_loss is GROUP_LOSSES["lambdaloss"].load()
    with pytest.raises(UsageError, match="unknown training task"):
        build_task("sparse", task.config)
