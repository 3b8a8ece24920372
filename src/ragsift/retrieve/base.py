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
from ragsift.errors import DataFormatError, IndexMismatchError, RagsiftError
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
             trust_model_paths: bool = False, **options: Any) -> Retriever:
        """Load a saved retriever of any kind (``Retriever.load``) or of this kind.

        Args:
            path: the folder written by :meth:`save`.
            model: if given, the model the caller means to query with; a different model from
                the one the index was built with is refused.
            trust_model_paths: load the local model folders the manifest names even when they
                lie outside the index folder (only for indexes you built yourself; passing
                ``model`` or ``encoder`` trusts that one model).

        Raises:
            IndexMismatchError: wrong kind, unknown format version, another model, a local
                model folder outside the index that the caller did not name, a symbolic link
                in the index folder, or files the retriever cannot load.
            DataFormatError: a malformed manifest (the error names the file and key).
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
        explicit = trust_model_paths or model is not None or options.get("encoder") is not None
        check_manifest_models(path, manifest, explicit)
        return load_checked(target, path, manifest, options)


def refuse_other_model(folder: Path, manifest: dict[str, Any], encoder: Any) -> None:
    """Raise :class:`IndexMismatchError` when ``encoder`` (a loaded model with a ``name``, or
    None) is not the model the index in ``folder`` was built with."""
    if encoder is not None and encoder.name != manifest["model"]:
        raise IndexMismatchError(
            f"{folder}: index was built with model {manifest['model']!r}; refusing to "
            f"query it with {encoder.name!r} (re-index with that model)"
        )


_MAX_MANIFEST_BYTES = 1 << 20
#: Required manifest keys and their JSON types; ``member.json`` files of hybrid indexes hold
#: the last three.
_MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
    "format_version": (int,), "num_documents": (int,), "retriever": (str,),
    "model": (str, type(None)), "config": (dict,),
}
_MEMBER_KEYS = ("retriever", "model", "config")


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a saved index, checked before anything in the folder is loaded.

    Checks: ``manifest.json`` exists and is a JSON object of at most 1 MiB; its keys have the
    types :meth:`Retriever.save` writes; the format version is this ragsift's; no file or
    folder inside the index is a symbolic link; the ``member-*/member.json`` files of a hybrid
    index pass the same checks.

    Raises:
        IndexMismatchError: not an index, another format version, or a symbolic link inside.
        DataFormatError: a malformed manifest, naming the file and the key.
    """
    path = Path(path)
    file = path / "manifest.json"
    if not file.is_file():
        raise IndexMismatchError(f"{path}: not a ragsift index (no manifest.json)")
    refuse_symlinks(path)
    manifest = _manifest_json(file)
    version = manifest.get("format_version")
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"{path}: index format version {version!r}, this ragsift reads {FORMAT_VERSION}"
        )
    _check_keys(manifest, file, tuple(_MANIFEST_TYPES))
    if manifest["num_documents"] < 0:
        raise DataFormatError(file, None, "num_documents", "must be >= 0")
    if manifest["retriever"] == "hybrid":
        for member in member_manifests(path):
            _check_keys(_manifest_json(member), member, _MEMBER_KEYS)
    return manifest


def member_manifests(path: Path) -> list[Path]:
    """The ``member-<i>/member.json`` files of a hybrid index, in member order."""
    files = []
    while (path / f"member-{len(files)}" / "member.json").is_file():
        files.append(path / f"member-{len(files)}" / "member.json")
    if not files:
        raise IndexMismatchError(f"{path}: a hybrid index without member-0/member.json")
    return files


def refuse_symlinks(path: Path) -> None:
    """Raise :class:`IndexMismatchError` when anything inside the index folder ``path`` is a
    symbolic link: an index holds its own files, and a crafted link could make loading read
    any file of the machine."""
    for root, dirs, files in os.walk(path, followlinks=False):
        for name in dirs + files:
            entry = Path(root) / name
            if entry.is_symlink():
                raise IndexMismatchError(
                    f"{path}: {entry.relative_to(path)} is a symbolic link; an index folder "
                    f"must hold its own files (copy the target in, or rebuild the index)"
                )


def _manifest_json(file: Path) -> dict[str, Any]:
    """The JSON object in a manifest file (``manifest.json`` or ``member.json``)."""
    if file.stat().st_size > _MAX_MANIFEST_BYTES:
        raise DataFormatError(file, None, None, "too large for an index manifest (> 1 MiB)")
    try:
        value = json.loads(file.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataFormatError(file, None, None, f"invalid UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(file, exc.lineno, None, f"invalid JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:
        raise DataFormatError(file, None, None, f"invalid JSON ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise DataFormatError(file, None, None, "expected a JSON object")
    return value


def _check_keys(manifest: dict[str, Any], file: Path, keys: tuple[str, ...]) -> None:
    """Raise :class:`DataFormatError` naming ``file`` and the key that is missing or of the
    wrong JSON type."""
    for key in keys:
        if key not in manifest:
            raise DataFormatError(file, None, key, "missing key; rebuild the index")
        value, types = manifest[key], _MANIFEST_TYPES[key]
        if isinstance(value, bool) or not isinstance(value, types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise DataFormatError(file, None, key,
                                  f"expected {names}, got {type(value).__name__}")
    config = manifest.get("config", {})
    for key in config:
        if not isinstance(key, str) or not key.isidentifier():
            raise DataFormatError(file, None, "config", f"bad setting name {key!r}")


def check_manifest_models(path: Path, manifest: dict[str, Any], explicit: bool) -> None:
    """Refuse to load a model an index points to outside itself, unless the caller named it.

    A manifest ``model`` is a packaged name, a hub id (``org/name``) or a local folder. A local
    folder must lie inside the index folder; a relative one is resolved against the index
    folder, never the current directory. Anything else is loaded only when ``explicit`` (the
    caller passed the model, which :meth:`Retriever.load` checked against the manifest).

    Raises:
        IndexMismatchError: naming the manifest file, the model and what to do.
    """
    if explicit:
        return
    entries = [(path / "manifest.json", manifest)]
    if manifest["retriever"] == "hybrid":
        entries = [(member, _manifest_json(member)) for member in member_manifests(path)]
    for file, entry in entries:
        resolved = _manifest_model(path, file, entry.get("model"))
        if resolved is None or resolved == entry.get("model"):
            continue
        if file.name != "manifest.json":  # a member's loader reads member.json itself
            raise IndexMismatchError(
                f"{file}: the relative model path {entry['model']!r} would be resolved "
                f"against the current directory; pass the model explicitly"
            )
        manifest["model"] = resolved


def _manifest_model(index: Path, file: Path, model: str | None) -> str | None:
    """The model folder to load for manifest ``file`` when the model lies inside ``index``,
    ``None`` for a packaged/hub model (or none); else :class:`IndexMismatchError`."""
    from ragsift.models.hub import PACKAGED_MODELS

    if model is None or model in PACKAGED_MODELS:
        return None
    root = index.resolve()
    candidate = Path(model).expanduser()
    candidate = (candidate if candidate.is_absolute() else index / candidate).resolve()
    if candidate.is_dir() and candidate.is_relative_to(root):
        return str(candidate)
    looks_like_path = (model.startswith(("/", ".", "~")) or "\\" in model
                       or model.count("/") > 1 or os.path.isabs(model))
    if not looks_like_path and not Path(model).exists():
        return None  # a hub id, and no folder of that name here to shadow it
    raise IndexMismatchError(
        f"{file}: the index names the local model {model!r}, outside the index folder; "
        f"ragsift does not load a model a manifest points to unless you name it: pass it "
        f"explicitly (e.g. --retriever dense:MODEL_FOLDER, or Retriever.load(path, "
        f"model=...)) if you trust it"
    )


def load_checked(target: type[Retriever], path: Path, manifest: dict[str, Any],
                 options: dict[str, Any]) -> Retriever:
    """``target._load_files`` with any failure of a corrupt index turned into a
    :class:`IndexMismatchError` naming the index, and the loaded ids checked."""
    try:
        retriever = target._load_files(path, manifest, **options)
    except RagsiftError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a corrupt file makes a loader raise
        raise IndexMismatchError(
            f"{path}: cannot load this {manifest['retriever']!r} index ({type(exc).__name__}: "
            f"{_first_line(exc)}); the folder is corrupt or incomplete: rebuild it with "
            f"ragsift index"
        ) from exc
    for member in [retriever, *getattr(retriever, "retrievers", [])]:
        _check_doc_ids(path, member)
    return retriever


def _check_doc_ids(path: Path, retriever: Retriever) -> None:
    """The loaded document ids are distinct strings, as many as the index holds documents."""
    doc_ids = getattr(retriever, "doc_ids", None)
    if doc_ids is None:
        return
    if not isinstance(doc_ids, list) or not all(isinstance(d, str) for d in doc_ids):
        raise IndexMismatchError(f"{path}: doc_ids.json is not a list of strings; rebuild the "
                                 f"index")
    if len(set(doc_ids)) != len(doc_ids):
        raise IndexMismatchError(f"{path}: doc_ids.json repeats document ids; rebuild the index")
    size = _stored_documents(retriever)
    if isinstance(size, int) and size != len(doc_ids):
        raise IndexMismatchError(f"{path}: the index holds {size} documents but doc_ids.json "
                                 f"{len(doc_ids)} ids; rebuild the index")


def _stored_documents(retriever: Retriever) -> int | None:
    """How many documents the loaded index structure holds, where that can be read (dense:
    the vector store; bm25: the bm25s score matrix); ``None`` otherwise."""
    if retriever.kind == "dense":
        return getattr(getattr(retriever, "store", None), "size", None)
    if retriever.kind == "bm25":
        scores = getattr(getattr(retriever, "model", None), "scores", None)
        return scores.get("num_docs") if isinstance(scores, dict) else None
    return None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else ""


def _version() -> str:
    from ragsift import __version__

    return __version__
