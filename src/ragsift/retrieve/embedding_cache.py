"""On-disk cache of document embeddings, keyed by model and content.

The corpus is encoded in blocks of consecutive documents; each block's vectors are stored as
``<root>/<model fingerprint>/<sha256 of the block's texts>.npy`` (written atomically). Re-indexing
the same corpus with the same model reads every block back; a crash mid-encoding loses at most
the block in progress; a changed document invalidates only its block.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ragsift.atomic import atomic_file

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$RAGSIFT_CACHE_DIR`` or ``~/.cache/ragsift``, plus ``/embeddings``."""
    root = os.environ.get("RAGSIFT_CACHE_DIR") or Path.home() / ".cache" / "ragsift"
    return Path(root) / "embeddings"


def texts_key(texts: Sequence[str]) -> str:
    """A content hash of an ordered list of texts."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


class EmbeddingCache:
    """Block embeddings stored under ``root/model_key``.

    Example:
        >>> import tempfile
        >>> cache = EmbeddingCache(tempfile.mkdtemp(), "model-abc")
        >>> cache.get_or_compute(["a", "b"], lambda t: np.ones((len(t), 2), np.float32)).shape
        (2, 2)
    """

    def __init__(self, root: str | os.PathLike[str], model_key: str) -> None:
        self.folder = Path(root) / model_key
        self.hits = 0
        self.misses = 0

    def get_or_compute(
        self, texts: Sequence[str], compute: Callable[[Sequence[str]], np.ndarray]
    ) -> np.ndarray:
        """The cached vectors of ``texts``, or ``compute(texts)`` stored for next time."""
        path = self.folder / f"{texts_key(texts)}.npy"
        if path.is_file():
            try:
                vectors = np.load(path)
                if len(vectors) == len(texts):
                    self.hits += 1
                    return vectors
            except (OSError, ValueError):
                logger.warning("unreadable cache file %s; recomputing", path)
        vectors = compute(texts)
        with atomic_file(path, "wb") as handle:
            np.save(handle, vectors)
        self.misses += 1
        return vectors
