"""Content fingerprints of models: a hash of every weight plus the settings that shape outputs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import torch


def weights_fingerprint(modules: Iterable[torch.nn.Module], settings: object = None) -> str:
    """A 32-hex-digit hash of ``settings`` (its repr) and every tensor of ``modules``' state.

    Two models with the same weights and settings get the same fingerprint wherever they are
    stored; changing one weight changes it. Used to key embedding and ONNX caches.
    """
    digest = hashlib.sha256(repr(settings).encode())
    for module in modules:
        for key, tensor in module.state_dict().items():
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8)
                          .numpy().tobytes())
    return digest.hexdigest()[:32]
