"""Reading and writing the sentence-transformers folder layout without sentence-transformers.

A sentence-transformers folder lists its modules in ``modules.json`` (Transformer, Pooling,
optional Dense and Normalize), keeps ``sentence_bert_config.json`` (max length, lower-casing)
beside the transformer files, and prompts/similarity in ``config_sentence_transformers.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ragsift.errors import DataFormatError
from ragsift.models.pooling import PoolingMode, config_for_mode, mode_from_config

_ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    "Identity": torch.nn.Identity,
    "Tanh": torch.nn.Tanh,
    "ReLU": torch.nn.ReLU,
    "GELU": torch.nn.GELU,
    "Sigmoid": torch.nn.Sigmoid,
}


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, with a located error when it is malformed."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, exc.lineno, None, f"invalid JSON ({exc.msg})") from None
    if not isinstance(value, (dict, list)):
        raise DataFormatError(path, None, None, "expected a JSON object")
    return value


@dataclass
class DenseLayer:
    """A sentence-transformers ``Dense`` module: ``activation(W x + b)``."""

    linear: torch.nn.Linear
    activation: str = "Identity"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _ACTIVATIONS[self.activation]()(self.linear(x))

    @classmethod
    def load(cls, folder: Path) -> DenseLayer:
        config = read_json(folder / "config.json")
        activation = str(config.get("activation_function", "Identity")).rsplit(".", 1)[-1]
        if activation not in _ACTIVATIONS:
            raise DataFormatError(
                folder / "config.json", None, "activation_function",
                f"unsupported activation {activation!r}; supported: {sorted(_ACTIVATIONS)}",
            )
        linear = torch.nn.Linear(
            config["in_features"], config["out_features"], bias=config.get("bias", True)
        )
        if (folder / "model.safetensors").is_file():
            from safetensors.torch import load_file

            state = load_file(str(folder / "model.safetensors"))
        else:
            state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
        linear.load_state_dict({k.removeprefix("linear."): v for k, v in state.items()})
        return cls(linear, activation)

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "in_features": self.linear.in_features,
            "out_features": self.linear.out_features,
            "bias": self.linear.bias is not None,
            "activation_function": f"torch.nn.modules.activation.{self.activation}"
            if self.activation != "Identity"
            else "torch.nn.modules.linear.Identity",
        }
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        state = {f"linear.{k}": v.contiguous() for k, v in self.linear.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"))


@dataclass
class SentenceTransformerLayout:
    """What a sentence-transformers folder says about how to embed text."""

    transformer_dir: Path
    pooling: PoolingMode = "mean"
    include_prompt: bool = True
    normalize: bool = False
    dense: list[DenseLayer] = field(default_factory=list)
    max_seq_length: int | None = None
    do_lower_case: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    similarity: str = "cosine"

    @classmethod
    def read(cls, folder: Path) -> SentenceTransformerLayout:
        """Parse ``folder``; a plain transformers folder gets mean pooling, like ST does."""
        modules_file = folder / "modules.json"
        layout = cls(transformer_dir=folder)
        if modules_file.is_file():
            modules = read_json(modules_file)
            if not isinstance(modules, list):
                raise DataFormatError(modules_file, None, None, "expected a JSON list of modules")
            for i, module in enumerate(modules):
                kind = str(module.get("type", "")).rsplit(".", 1)[-1]
                sub = folder / module.get("path", "")
                if kind == "Transformer":
                    layout.transformer_dir = sub
                elif kind == "Pooling":
                    pooling_config = read_json(sub / "config.json")
                    layout.pooling = mode_from_config(pooling_config, str(sub / "config.json"))
                    layout.include_prompt = bool(pooling_config.get("include_prompt", True))
                elif kind == "Dense":
                    layout.dense.append(DenseLayer.load(sub))
                elif kind == "Normalize":
                    layout.normalize = True
                else:
                    raise DataFormatError(
                        modules_file, None, f"[{i}].type",
                        f"module type {module.get('type')!r} is not supported "
                        "(Transformer, Pooling, Dense, Normalize are)",
                    )
        st_config = layout.transformer_dir / "sentence_bert_config.json"
        if st_config.is_file():
            config = read_json(st_config)
            layout.max_seq_length = config.get("max_seq_length")
            layout.do_lower_case = bool(config.get("do_lower_case", False))
        extra = folder / "config_sentence_transformers.json"
        if extra.is_file():
            config = read_json(extra)
            layout.prompts = dict(config.get("prompts") or {})
            layout.similarity = str(config.get("similarity_fn_name") or "cosine")
        return layout

    def write(self, folder: Path, dim: int) -> None:
        """Write the module files into ``folder`` (the transformer files are saved separately)."""
        modules: list[dict[str, Any]] = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling",
             "type": "sentence_transformers.models.Pooling"},
        ]
        pool_dir = folder / "1_Pooling"
        pool_dir.mkdir(parents=True, exist_ok=True)
        pooling_config = config_for_mode(self.pooling, dim, self.include_prompt)
        (pool_dir / "config.json").write_text(json.dumps(pooling_config, indent=2))
        for layer in self.dense:
            idx = len(modules)
            path = f"{idx}_Dense"
            layer.save(folder / path)
            modules.append({"idx": idx, "name": str(idx), "path": path,
                            "type": "sentence_transformers.models.Dense"})
        if self.normalize:
            idx = len(modules)
            (folder / f"{idx}_Normalize").mkdir(exist_ok=True)
            modules.append({"idx": idx, "name": str(idx), "path": f"{idx}_Normalize",
                            "type": "sentence_transformers.models.Normalize"})
        (folder / "modules.json").write_text(json.dumps(modules, indent=2))
        (folder / "sentence_bert_config.json").write_text(json.dumps(
            {"max_seq_length": self.max_seq_length, "do_lower_case": self.do_lower_case}, indent=2
        ))
        (folder / "config_sentence_transformers.json").write_text(json.dumps(
            {"prompts": self.prompts, "default_prompt_name": None,
             "similarity_fn_name": self.similarity, "model_type": "SentenceTransformer"},
            indent=2,
        ))
