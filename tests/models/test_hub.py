import pytest

from ragsift.errors import ModelNotFoundError
from ragsift.models.hub import model_id, resolve_model


def test_packaged_name_and_its_hub_id_resolve_to_the_package(minilm_dir):
    assert (minilm_dir / "model.safetensors").is_file()
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == minilm_dir
    assert model_id("minilm-l6") == "sentence-transformers/all-MiniLM-L6-v2"


def test_local_folder_wins(tmp_path):
    assert resolve_model(tmp_path) == tmp_path.resolve()
    assert model_id(str(tmp_path)) == str(tmp_path.resolve())


def test_unknown_hub_id_offline_explains(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE"):
        resolve_model("nobody/no-such-model-xyz")


def test_file_and_missing_path_errors(tmp_path):
    (tmp_path / "weights.bin").write_text("x")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        resolve_model(tmp_path / "weights.bin")
    with pytest.raises(ModelNotFoundError, match="no such model folder"):
        resolve_model(str(tmp_path / "missing" / "deeper"))
