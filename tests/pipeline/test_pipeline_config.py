"""The pipeline config: loading, defaults, and every refusal located by file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsift.errors import DataFormatError
from ragsift.pipeline.config import PipelineConfig, load_pipeline

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def test_a_full_config_loads_with_its_values(tmp_path):
    config = load_pipeline(write(tmp_path, (
        "first_stage: [bm25, 'dense:minilm-l6']\n"
        "first_stage_fusion: convex\n"
        "first_stage_weights: [0.3, 0.7]\n"
        "rerank_model: some-folder\n"
        "rerank_top_n: 50\n"
        "final_fusion: rrf\n"
        "final_weight: 0.8\n"
        "k: 10\n")))
    assert config.first_stage_spec == "hybrid:bm25+dense:minilm-l6"
    assert config.first_stage_weights == [0.3, 0.7]
    assert (config.rerank_model, config.rerank_top_n, config.candidates) == ("some-folder", 50, 50)
    assert (config.final_fusion, config.final_weight, config.k) == ("rrf", 0.8, 10)


def test_without_a_reranker_the_first_stage_gives_k_documents(tmp_path):
    config = load_pipeline(write(tmp_path, "first_stage: ['bm25:bm25l']\nk: 7\n"))
    assert (config.first_stage_spec, config.rerank_model, config.candidates) == (
        "bm25:bm25l", None, 7)


@pytest.mark.parametrize("text, line, field, words", [
    ("k: 5\nfirst_stages: [bm25]\n", 2, "first_stages", "unknown key"),
    ("k: 5\nfirst_stage: [bm25, 'nope:x']\n", 2, "first_stage[1]", "unknown retriever spec"),
    ("first_stage: ['hybrid:bm25+dense:m']\n", 1, "first_stage[0]", "list the members"),
    ("first_stage: []\n", 1, "first_stage", "at least one"),
    ("rerank_model: m\n\nrerank_top_n: 0\n", 3, "rerank_top_n", "must be >= 1"),
    ("first_stage: [bm25, bm25]\nfirst_stage_weights: [1.0]\n", 2, "first_stage_weights",
     "1 weights for 2"),
    ("k: 5\nfinal_fusion: convex\n", 2, "final_fusion", "needs rerank_model"),
    ("rerank_model: m\nrerank_top_n: 10\nk: 20\n", 3, "k", "more than rerank_top_n"),
    ("final_weight: 1.5\n", 1, "final_weight", "must be <= 1"),
    ("rerank_backend: tensorrt\n", 1, "rerank_backend", "must be one of"),
    ("rerank_long_doc: longest\n", 1, "rerank_long_doc", "must be one of"),
    ("first_stage_fusion: sum\n", 1, "first_stage_fusion", "must be one of"),
])
def test_refusals_name_file_line_and_key(tmp_path, text, line, field, words):
    path = write(tmp_path, text)
    with pytest.raises(DataFormatError) as caught:
        load_pipeline(path)
    error = caught.value
    assert (error.path, error.line, error.field) == (str(path), line, field)
    assert words in error.message
    assert str(error).startswith(f'{path}, line {line}, field "{field}": ')


def test_a_check_across_keys_names_the_key_where_its_value_came_from(tmp_path):
    """load_dataclass places a SettingError at its key's line; a key that came from the
    overrides is the command line's; one left at its default names the file alone."""
    from ragsift.config_file import load_dataclass

    path = write(tmp_path, "rerank_model: m\nrerank_top_n: 10\n")
    with pytest.raises(DataFormatError) as caught:  # k is left at its default, 100
        load_dataclass(PipelineConfig, path)
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(path), None, "k")
    with pytest.raises(DataFormatError) as caught:
        load_dataclass(PipelineConfig, path, {"k": 20})
    assert (caught.value.path, caught.value.line) == ("<command line>", None)
    with pytest.raises(DataFormatError) as caught:
        load_dataclass(PipelineConfig, None, {"final_fusion": "rrf"})
    assert str(caught.value).startswith('<command line>, field "final_fusion": fuses')


def test_example_configs_load():
    paths = sorted(CONFIGS.glob("pipeline-*.yaml"))
    assert paths
    for path in paths:
        assert isinstance(load_pipeline(path), PipelineConfig)


def test_usage_docs_list_every_key():
    import dataclasses

    docs = (CONFIGS.parent / "docs" / "usage.md").read_text()
    section = docs[docs.index("## Pipelines"):]
    missing = [f.name for f in dataclasses.fields(PipelineConfig) if f"`{f.name}`" not in section]
    assert missing == []
