"""The retriever interface and the atomic, versioned on-disk format every retriever shares.

A saved retriever is a folder with ``manifest.json``::

    {"format_version": 1, "retriever": "bm25", "model": null, "config": {...},
     "num_documents": 5183, "ragsift_version": "0.1.0"}

plus whatever files the retriever writes. Saving goes to a temporary folder renamed into place,
so an interrupted save never leaves a half-written index under the final name.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from ragsift.atomic import atomic_dir
from ragsift.errors import IndexMismatchError
from ragsift.types import Corpus, Queries, Run

FORMAT_VERSION = 1
_REGISTRY: dict[str, type[Retriever]] = {}


class Retriever(ABC):
    """Turns queries into a ranked :data:`~ragsift.types.Run` over an indexed corpus.

    Subclasses set ``kind`` (the name in manifests), implement :meth:`index`, :meth:`search`,
    :meth:`config`, :meth:`_save_files` and :meth:`_load_files`; saving and loading with
    manifests is written once here.
    """

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            _REGISTRY[cls.kind] = cls

    @abstractmethod
    def index(self, corpus: Corpus) -> None:
        """Index every document of ``corpus`` (replacing any previous index)."""

    @abstractmethod
    def search(self, queries: Queries, k: int = 100) -> Run:
        """The ``k`` best documents of each query, as ``{qid: {doc_id: score}}``."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """The settings needed to rebuild this retriever (JSON-serialisable)."""

    @property
    def model_name(self) -> str | None:
        """The model identifier recorded in the manifest (None for lexical retrievers)."""
        return None

    @property
    @abstractmethod
    def num_documents(self) -> int:
        """How many documents are indexed."""

    @abstractmethod
    def _save_files(self, folder: Path) -> None:
        """Write the index files into ``folder`` (a fresh temporary folder)."""

    @classmethod
    @abstractmethod
    def _load_files(cls, folder: Path, manifest: dict[str, Any], **options: Any) -> Retriever:
        """Rebuild the retriever from ``folder`` and its manifest."""

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the index to ``path`` atomically (temp folder, then rename); returns ``path``."""
        path = Path(path)
        with atomic_dir(path) as tmp:
            self._save_files(tmp)
            manifest = {
                "format_version": FORMAT_VERSION,
                "retriever": self.kind,
                "model": self.model_name,
                "config": self.config(),
                "num_documents": self.num_documents,
                "ragsift_version": _version(),
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], model: str | None = None,
             **options: Any) -> Retriever:
        """Load a saved retriever of any kind (``Retriever.load``) or of this kind.

        Args:
            path: the folder written by :meth:`save`.
            model: if given, the model the caller means to query with; a different model from
                the one the index was built with is refused.

        Raises:
            IndexMismatchError: wrong kind, unknown format version, or another model.
        """
        path = Path(path)
        manifest = read_manifest(path)
        kind = manifest["retriever"]
        target = _REGISTRY.get(kind)
        if target is None:
            raise IndexMismatchError(f"{path}: unknown retriever kind {kind!r}")
        if cls is not Retriever and not issubclass(target, cls):
            raise IndexMismatchError(f"{path}: holds a {kind!r} index, not {cls.kind!r}")
        if model is not None:
            from ragsift.models.hub import model_id

            if manifest.get("model") != model_id(model):
                raise IndexMismatchError(
                    f"{path}: index was built with model {manifest.get('model')!r}; "
                    f"refusing to query it with {model_id(model)!r} (re-index with that model)"
                )
        return target._load_files(path, manifest, **options)


def refuse_other_model(folder: Path, manifest: dict[str, Any], encoder: Any) -> None:
    """Raise :class:`IndexMismatchError` when ``encoder`` (a loaded model with a ``name``, or
    None) is not the model the index in ``folder`` was built with."""
    if encoder is not None and encoder.name != manifest["model"]:
        raise IndexMismatchError(
            f"{folder}: index was built with model {manifest['model']!r}; refusing to "
            f"query it with {encoder.name!r} (re-index with that model)"
        )


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a saved index, checked for presence and format version."""
    file = path / "manifest.json"
    if not file.is_file():
        raise IndexMismatchError(f"{path}: not a ragsift index (no manifest.json)")
    manifest = json.loads(file.read_text())
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"{path}: index format version {version!r}, this ragsift reads {FORMAT_VERSION}"
        )
    return manifest


def _version() -> str:
    from ragsift import __version__

    return __version__
