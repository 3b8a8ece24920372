"""A collection's commits: the manifest that names the current one, the writer lock and the
clean-up of files no commit needs.

``DIR/manifest.json`` is the commit point. It is replaced atomically (temp file, fsync,
rename), so a reader always finds a whole manifest, and everything it names was written (and
synced) before it::

    {"format": 1, "generation": 7, "config": {...},
     "segments": [{"name": "seg-000003", "deleted": "del-000007.npy"}, ...],
     "next_chunk_id": 5120, "pending_store_deletes": [...], "ragsift_version": "0.1.0"}

``deleted`` names a file inside the segment's folder (or is null): the sorted document rows
deleted as of this commit. A new deletion file gets the generation of the commit that wrote
it, so an older commit's file is never overwritten. ``pending_store_deletes`` are chunk ids a
database store may still hold after this commit (removed right after it, and again by the next
writer in case the process died in between).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragsift.atomic import atomic_file
from ragsift.errors import IndexMismatchError

MANIFEST = "manifest.json"
PREVIOUS = "manifest.prev.json"
PENDING = "pending.json"
LOCK = ".lock"
SEGMENTS = "segments"
FORMAT = 1


@dataclass
class SegmentEntry:
    """A segment of a commit and its deletion file (None: nothing deleted)."""

    name: str
    deleted: str | None = None


@dataclass
class Manifest:
    """One commit of a collection (see the module doc)."""

    generation: int
    config: dict[str, Any]
    segments: list[SegmentEntry] = field(default_factory=list)
    next_chunk_id: int = 0
    pending_store_deletes: list[int] = field(default_factory=list)

    def to_json(self) -> str:
        from ragsift import __version__

        body = {"format": FORMAT, **asdict(self), "ragsift_version": __version__}
        return json.dumps(body, indent=1)

    @classmethod
    def read(cls, folder: Path, name: str = MANIFEST) -> Manifest:
        """The commit recorded in ``folder/name``; IndexMismatchError when ``folder`` is not a
        collection or the manifest is damaged."""
        path = folder / name
        if not path.is_file():
            raise IndexMismatchError(f"{folder}: not a ragsift collection (no {MANIFEST}); "
                                     "create one with `ragsift collection create`")
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            if body.get("format") != FORMAT:
                raise IndexMismatchError(f"{path}: collection format {body.get('format')!r}, "
                                         f"this ragsift reads {FORMAT}")
            segments = [SegmentEntry(**entry) for entry in body["segments"]]
            manifest = cls(int(body["generation"]), dict(body["config"]), segments,
                           int(body["next_chunk_id"]),
                           [int(i) for i in body.get("pending_store_deletes", [])])
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexMismatchError(f"{path}: damaged manifest ({exc})") from None
        for entry in manifest.segments:
            if "/" in entry.name or entry.name.startswith(".") or (
                    entry.deleted and ("/" in entry.deleted or entry.deleted.startswith("."))):
                raise IndexMismatchError(f"{path}: segment entry {entry} leaves the collection")
        return manifest

    def write(self, folder: Path) -> None:
        """Commit: keep the current manifest as the previous one, then replace it atomically."""
        current = folder / MANIFEST
        if current.is_file():
            shutil.copyfile(current, folder / PREVIOUS)
        with atomic_file(current) as handle:
            handle.write(self.to_json())

    def files(self) -> set[Path]:
        """Paths (relative to the collection) this commit reads."""
        out: set[Path] = set()
        for entry in self.segments:
            out.add(Path(SEGMENTS, entry.name))
            if entry.deleted:
                out.add(Path(SEGMENTS, entry.name, entry.deleted))
        return out


def read_deleted(folder: Path, entry: SegmentEntry) -> np.ndarray | None:
    """The deleted document rows of ``entry`` (None when nothing is deleted)."""
    if entry.deleted is None:
        return None
    return np.load(folder / SEGMENTS / entry.name / entry.deleted)


def write_deleted(folder: Path, entry_name: str, generation: int, rows: np.ndarray) -> str:
    """Write the deletion file of segment ``entry_name`` for ``generation``; returns its name."""
    name = f"del-{generation:06d}.npy"
    with atomic_file(folder / SEGMENTS / entry_name / name, "wb") as handle:
        np.save(handle, np.unique(np.asarray(rows, dtype=np.int64)))
    return name


def write_pending(folder: Path, generation: int, first: int, end: int) -> None:
    """Record, before a database store is written, that chunk ids ``first:end`` belong to the
    add that commits ``generation`` (the next writer removes them if that commit never
    happened)."""
    with atomic_file(folder / PENDING) as handle:
        json.dump({"generation": generation, "first": first, "end": end}, handle)


def uncommitted_ids(folder: Path, generation: int) -> range:
    """Chunk ids a database store may hold from an add that never committed, given the
    committed ``generation`` (empty when there is none)."""
    path = folder / PENDING
    if not path.is_file():
        return range(0)
    body = json.loads(path.read_text(encoding="utf-8"))
    return range(body["first"], body["end"]) if body["generation"] > generation else range(0)


@contextlib.contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """Hold the collection's writer lock (one writer at a time, across processes)."""
    with open(folder / LOCK, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def collect_garbage(folder: Path, keep: list[Manifest]) -> None:
    """Delete segment folders, deletion files and temp files that none of ``keep`` reads."""
    needed: set[Path] = set()
    for manifest in keep:
        needed |= manifest.files()
    segments = folder / SEGMENTS
    if not segments.is_dir():
        return
    for path in segments.iterdir():
        rel = path.relative_to(folder)
        if path.name.startswith(".") or rel not in needed:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
            continue
        for file in path.glob("del-*.npy"):
            if file.relative_to(folder) not in needed:
                file.unlink()
        for file in path.glob(".*.tmp"):
            file.unlink()


__all__ = ["FORMAT", "MANIFEST", "Manifest", "PENDING", "PREVIOUS", "SEGMENTS", "SegmentEntry",
           "collect_garbage", "read_deleted", "uncommitted_ids", "write_deleted",
           "write_pending", "writer_lock"]
