"""The ONNX Runtime backend: export, transformer graph fusion, int8 quantisation, inference.

``backend="onnx"`` runs the model exported to ONNX and optimised by onnxruntime's transformer
optimizer (attention, embedding + LayerNorm, skip + LayerNorm and bias + GELU fused into single
kernels). ``backend="onnx-int8"`` additionally quantises the weights of every MatMul to int8
(dynamic quantisation: activations are quantised per batch at run time; per-channel weight
scales by default, which keeps the logits closer to fp32 than one scale per tensor).

The attention pattern is only recognised by the optimizer in the eager implementation, so the
model is exported with eager attention. Exported files are cached under
``$RAGSIFT_CACHE_DIR/onnx/<weights fingerprint>/`` (written atomically), so export happens once
per model. Needs the ``[onnx]`` extra (onnx, onnxruntime).

``backend="openvino"`` compiles the exported graph with OpenVINO instead (extra ``[openvino]``);
``openvino-bf16`` lets it use bfloat16 kernels where the CPU has them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ragsift.atomic import atomic_dir
from ragsift.errors import MissingExtraError, UsageError

logger = logging.getLogger(__name__)

Backend = Literal["torch", "onnx", "onnx-int8", "openvino", "openvino-bf16"]
BACKENDS: tuple[str, ...] = ("torch", "onnx", "onnx-int8", "openvino", "openvino-bf16")
_FILES = {"onnx": "model-optimized.onnx", "onnx-int8": "model-int8.onnx",
          "openvino": "model.onnx", "openvino-bf16": "model.onnx"}


def onnx_cache_dir() -> Path:
    """``$RAGSIFT_CACHE_DIR/onnx`` (default ``~/.cache/ragsift/onnx``)."""
    root = os.environ.get("RAGSIFT_CACHE_DIR") or Path.home() / ".cache" / "ragsift"
    return Path(root) / "onnx"


def _require_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingExtraError("onnxruntime", "onnx") from exc
    return onnxruntime


def build_onnx(model: torch.nn.Module, example: Mapping[str, torch.Tensor], output_name: str,
               folder: Path, per_channel: bool = True,
               graph: torch.nn.Module | None = None) -> None:
    """Export ``model`` (called with the keys of ``example``) into ``folder``: the fused fp32
    graph and its int8 twin. ``output_name`` names the model output to keep. ``graph``, when
    given, is the module exported instead: called with the tensors of ``example`` in order, it
    returns the output tensor itself (a model plus post-processing fused into one graph;
    ``model`` is still the transformers model whose attention and config the optimizer uses).
    """
    _require_onnxruntime()
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    names = list(example)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in names}
    dynamic[output_name] = {0: "batch"}
    raw = folder / "model.onnx"
    previous = getattr(model.config, "_attn_implementation", None)
    model.set_attn_implementation("eager")
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent branches
            torch.onnx.export(
                graph if graph is not None else _OutputOf(model, output_name, names),
                tuple(example[n] for n in names), str(raw),
                input_names=names, output_names=[output_name], dynamic_axes=dynamic,
                opset_version=17, dynamo=False,
            )
    finally:
        if previous:
            model.set_attn_implementation(previous)
    config = model.config
    optimized = optimize_model(str(raw), model_type="bert",
                               num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
                               hidden_size=int(getattr(config, "hidden_size", 0) or 0))
    fused = optimized.get_fused_operator_statistics()
    logger.info("onnx fusion: %s", {k: v for k, v in fused.items() if v})
    optimized.save_model_to_file(str(folder / _FILES["onnx"]))
    with _quiet_root_logger():  # onnxruntime's quantizer logs every tensor on the root logger
        quantize_dynamic(str(folder / _FILES["onnx"]), str(folder / _FILES["onnx-int8"]),
                         weight_type=QuantType.QInt8, per_channel=per_channel,
                         extra_options={"DefaultTensorType": TensorProto.FLOAT})


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Raise the root logger to ERROR for the block (a CLI run logs at INFO)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class _OutputOf(torch.nn.Module):
    """Wrap a transformers model so that positional inputs map to names and one output remains."""

    def __init__(self, model: torch.nn.Module, output_name: str, names: list[str]) -> None:
        super().__init__()
        self.model, self.output_name, self.names = model, output_name, names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return getattr(self.model(**dict(zip(self.names, inputs))), self.output_name)


class OnnxSession:
    """An onnxruntime session fed with the same padded feature dicts as the torch model.

    Args:
        path: the ``.onnx`` file. threads: intra-op threads (default: onnxruntime's choice).
    """

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None) -> None:
        ort = _require_onnxruntime()
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The first output for ``features`` (missing token_type_ids are zeros)."""
        feeds = {}
        for name in self.input_names:
            value = features.get(name)
            if value is None:
                value = torch.zeros_like(features["input_ids"])
            feeds[name] = np.ascontiguousarray(value.cpu().numpy(), dtype=np.int64)
        return torch.from_numpy(np.asarray(self._run(feeds)))

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, feeds)[0]


class OpenVinoSession(OnnxSession):
    """The exported (unfused) ONNX graph compiled by OpenVINO for the CPU.

    ``precision``: ``f32`` (exact) or ``bf16`` (OpenVINO's bfloat16 kernels, on CPUs with
    AVX512-BF16 or AMX; faster, about 3 significant digits).
    """

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None,
                 precision: str = "f32") -> None:
        try:
            import openvino
        except ImportError as exc:
            raise MissingExtraError("openvino", "openvino") from exc
        config = {"INFERENCE_PRECISION_HINT": precision}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        core = openvino.Core()
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        self.input_names = [i.get_any_name() for i in self.compiled.inputs]

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.compiled(feeds)[0]


def backend_session(model: torch.nn.Module, example: Mapping[str, torch.Tensor],
                    output_name: str, backend: Backend, kind: str,
                    threads: int | None = None, graph: torch.nn.Module | None = None
                    ) -> OnnxSession | None:
    """``None`` for the torch backend (after applying ``threads``), else the cached ONNX session
    of ``model``, exported on first use under the fingerprint of its weights and ``kind``
    (``graph``: the module to export instead, see :func:`build_onnx`)."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose from {BACKENDS}")
    if backend == "torch":
        if threads:
            torch.set_num_threads(threads)
        return None
    from ragsift.models.fingerprint import weights_fingerprint

    folder = onnx_cache_dir() / weights_fingerprint([model], (kind, sorted(example)))
    if not (folder / _FILES[backend]).is_file():
        logger.info("exporting the model to ONNX in %s (once per model)", folder)
        with atomic_dir(folder) as tmp:
            build_onnx(model, example, output_name, tmp, graph=graph)
    if backend.startswith("openvino"):
        precision = "bf16" if backend == "openvino-bf16" else "f32"
        return OpenVinoSession(folder / _FILES[backend], threads, precision)
    return OnnxSession(folder / _FILES[backend], threads)
