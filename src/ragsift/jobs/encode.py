"""Corpus encoding as a sharded, resumable job.

Output: one jsonl row per document, in corpus order:
``{"id": doc_id, "dim": d, "vector": base64 of the d little-endian float32 values}``
(about 1.4 bytes per dimension instead of ~10 for JSON numbers). :func:`read_vectors` loads a
file back as ``(ids, (n, d) float32 matrix)``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from ragsift.errors import RagsiftError
from ragsift.jobs.backends import Lazy, ShardBackend, resolve
from ragsift.jobs.sharded import JobResult, run_sharded
from ragsift.models.bi_encoder import BiEncoder
from ragsift.types import Corpus


def vector_row(doc_id: str, vector: np.ndarray) -> str:
    """One output line for ``vector`` (cast to little-endian float32)."""
    data = np.ascontiguousarray(vector, dtype="<f4").tobytes()
    return json.dumps({"id": doc_id, "dim": int(vector.shape[0]),
                       "vector": base64.b64encode(data).decode("ascii")}, ensure_ascii=False)


def encode_corpus(corpus: Corpus, encoder: BiEncoder | Lazy[BiEncoder], out: str | Path,
                  shard_size: int = 1024, show_progress: bool = True,
                  backend: ShardBackend | None = None) -> JobResult:
    """Encode every document of ``corpus`` (``title + " " + text``) into ``out``.

    Shards run on ``backend``; a :class:`Lazy` encoder loads once per worker.
    """

    def work(shard: list[str]) -> list[str]:
        vectors = resolve(encoder).encode_documents([corpus[d] for d in shard])
        return [vector_row(d, v) for d, v in zip(shard, vectors)]

    return run_sharded(list(corpus), work, out, shard_size, desc="encode",
                       show_progress=show_progress, backend=backend)


def read_vectors(path: str | Path) -> tuple[list[str], np.ndarray]:
    """``(ids, vectors)`` of a file :func:`encode_corpus` wrote; vectors ``(n, d)`` float32."""
    ids: list[str] = []
    rows: list[np.ndarray] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                row = json.loads(line)
                vector = np.frombuffer(base64.b64decode(row["vector"]), dtype="<f4")
                dim = row["dim"]
                doc_id = row["id"]
            except (ValueError, KeyError, TypeError) as exc:
                raise RagsiftError(f"{path}, line {number}: not a vector row ({exc})") from exc
            if vector.shape[0] != dim or (rows and dim != rows[0].shape[0]):
                raise RagsiftError(f"{path}, line {number}: field 'vector' has {vector.shape[0]} "
                                   f"values, expected {rows[0].shape[0] if rows else dim}")
            ids.append(doc_id)
            rows.append(vector)
    if not rows:
        raise RagsiftError(f"{path}: no vectors")
    return ids, np.stack(rows).astype(np.float32)
