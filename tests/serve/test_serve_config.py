"""The server config refuses numbers the server cannot live with, naming file and key."""

from __future__ import annotations

import pytest

from ragsift.errors import DataFormatError
from ragsift.serve.config import Limits, ServeConfig


@pytest.mark.parametrize("key, value", [
    ("max_wait_ms", ".inf"),
    ("max_wait_ms", "1.0e+12"),
    ("max_wait_ms", ".nan"),
    ("max_wait_ms", "-1"),
    ("max_wait_ms", "true"),
    ("max_wait_ms", "'5'"),
    ("max_documents", "2.5"),
    ("max_documents", "1.0e+12"),
    ("max_documents", "0"),
    ("max_tokens", "false"),
    ("max_batch_tokens", ".inf"),
    ("max_body_bytes", "10"),
    ("max_body_bytes", "1.0e+12"),
])
def test_limits_out_of_range_name_file_and_key(tmp_path, key, value):
    path = tmp_path / "serve.yaml"
    path.write_text(f"limits:\n  {key}: {value}\n")
    with pytest.raises(DataFormatError) as caught:
        ServeConfig.from_yaml(path)
    assert caught.value.path == str(path)
    assert caught.value.field == f"limits.{key}"
    assert "expected" in caught.value.message


def test_limits_in_range_are_kept():
    config = ServeConfig.from_dict({"limits": {"max_wait_ms": 0, "max_documents": 5,
                                               "max_body_bytes": 65536}})
    assert (config.limits.max_wait_ms, config.limits.max_documents,
            config.limits.max_body_bytes) == (0, 5, 65536)
    assert Limits().max_body_bytes == 4 * 1024 * 1024


def test_limits_built_in_python_are_checked_too():
    with pytest.raises(DataFormatError, match="limits.max_wait_ms"):
        Limits(max_wait_ms=float("inf"))


@pytest.mark.parametrize("options, field", [
    ({"batch_size": float("inf")}, "rerankers.r.options.batch_size"),
    ({"allow_untrained_head": "yes"}, "rerankers.r.options.allow_untrained_head"),
])
def test_model_options_are_checked(options, field):
    with pytest.raises(DataFormatError) as caught:
        ServeConfig.from_dict({"rerankers": {"r": {"model": "m", "options": options}}},
                              "serve.yaml")
    assert (caught.value.path, caught.value.field) == ("serve.yaml", field)


@pytest.mark.parametrize("text, message", [
    ("limits: &l {max_documents: 5}\nother: *l\n", "anchors"),
    ("limits:\n  max_documents: 5\n  max_documents: 6\n", "duplicate key 'max_documents'"),
    ("api_key: a\napi_key: b\n", "duplicate key"),
    ("limits: [unclosed\n", "invalid YAML"),
])
def test_serve_yaml_is_read_strictly(tmp_path, text, message):
    config = tmp_path / "serve.yaml"
    config.write_text(text)
    with pytest.raises(DataFormatError, match=message) as info:
        ServeConfig.from_yaml(config)
    assert str(config) in str(info.value)


@pytest.mark.parametrize("text, line, field", [
    ("rerankers:\n  r: m\nlimits:\n  max_documents: 5\n  max_wait_ms: -1\n", 5,
     "limits.max_wait_ms"),
    ("index:\n  path: idx\n  colour: red\n", 3, "index.colour"),
    ("rerankers:\n  big:\n    model: m\n    options: {batch_size: .inf}\n", 4,
     "rerankers.big.options.batch_size"),
    ("embedders:\n  e: m\nindex:\n  path: idx\n  embedder: other\n", 5, "index.embedder"),
])
def test_serve_yaml_errors_name_the_line(tmp_path, text, line, field):
    config = tmp_path / "serve.yaml"
    config.write_text(text)
    with pytest.raises(DataFormatError) as info:
        ServeConfig.from_yaml(config)
    assert (info.value.path, info.value.line, info.value.field) == (str(config), line, field)
