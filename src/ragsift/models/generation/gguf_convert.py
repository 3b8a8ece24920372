"""Converted copies of a GGUF file: the same model stored in another llama.cpp tensor type.

``converted_gguf(path, weights)`` runs llama.cpp's own converter (``llama_model_quantize``) once per
file and tensor type and caches the result under
``$RAGSIFT_CACHE_DIR/gguf-<weights>/<sha256 of the source file>/`` (default cache root
``~/.cache/ragsift``), written atomically; ``"native"`` is the file as it is. A quantised source
(the packaged ``smollm2-135m`` is Q4_1) is dequantised by llama.cpp first, so a copy carries the
rounding of the original quantisation plus that of the new type (none for ``f32``).

Which type is fastest depends on the CPU. SmolLM2-135M, a 337-token prompt and 32 new tokens on an
AVX512_BF16 CPU with 2 threads (seconds): Q4_1 (packaged) 1.33, q8_0 0.86, f16 0.91, bf16 0.75,
f32 1.08. ``bf16`` is fast only where the CPU has AVX512_BF16 or AMX; elsewhere ``q8_0`` is the
usual choice.

Example:
    >>> converted_gguf(Path("model.gguf"), "native")
    PosixPath('model.gguf')
    >>> converted_gguf(Path("model.gguf"), "int3")
    Traceback (most recent call last):
    ragsift.errors.UsageError: weights 'int3': use one of native, f32, bf16, f16, q8_0
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Literal

from ragsift.atomic import atomic_dir
from ragsift.errors import MissingExtraError, RagsiftError, UsageError

logger = logging.getLogger(__name__)
Weights = Literal["native", "f32", "bf16", "f16", "q8_0"]
# llama.cpp's file type (an attribute of llama_cpp) of each converted tensor type
FTYPES: dict[str, str] = {"f32": "LLAMA_FTYPE_ALL_F32", "bf16": "LLAMA_FTYPE_MOSTLY_BF16",
                          "f16": "LLAMA_FTYPE_MOSTLY_F16", "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0"}
WEIGHTS: tuple[str, ...] = ("native", *FTYPES)
# sha256 of the files hashed in this process, keyed by (path, size, mtime)
_digests: dict[tuple[str, int, int], str] = {}


def hash_file(path: Path, prefix: bytes = b"") -> str:
    """The sha256 hex digest of ``prefix`` followed by the bytes of the file ``path`` (read in
    4 MiB blocks)."""
    digest = hashlib.sha256(prefix)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of the file ``path``, read once per process while its size and
    modification time stay the same."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        _digests[key] = hash_file(path)
    return _digests[key]


def check_weights(weights: str) -> None:
    """Raise :class:`UsageError` unless ``weights`` is one of :data:`WEIGHTS`."""
    if weights not in WEIGHTS:
        raise UsageError(f"weights {weights!r}: use one of {', '.join(WEIGHTS)}")


def converted_gguf(path: Path, weights: str) -> Path:
    """The GGUF ``path`` with its tensors in ``weights`` (see the module docstring): ``path``
    itself for ``"native"``, else a copy made once by llama.cpp and cached under
    ``$RAGSIFT_CACHE_DIR/gguf-<weights>/<sha256[:32]>/<stem>.<weights>.gguf``.

    Raises:
        UsageError: ``weights`` is not one of :data:`WEIGHTS`.
        MissingExtraError: ``llama-cpp-python`` is not installed.
        RagsiftError: llama.cpp cannot convert the file.
    """
    check_weights(weights)
    if weights == "native":
        return path
    try:
        import llama_cpp
    except ImportError:
        raise MissingExtraError("llama_cpp", "llm") from None
    root = Path(os.environ.get("RAGSIFT_CACHE_DIR") or Path.home() / ".cache" / "ragsift")
    folder = root / f"gguf-{weights}" / file_sha256(path)[:32]
    target = folder / f"{path.stem}.{weights}.gguf"
    if target.is_file():
        return target
    logger.info("converting %s to %s once (cached in %s)", path, weights, folder)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FTYPES[weights])
    params.allow_requantize = True  # the source may be quantised already
    with atomic_dir(folder) as tmp:
        if llama_cpp.llama_model_quantize(str(path).encode(), str(tmp / target.name).encode(),
                                          params) != 0:
            raise RagsiftError(f"{path}: llama.cpp cannot convert it to {weights}")
    return target
