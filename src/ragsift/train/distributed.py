"""Sharing in-batch negatives across processes (torchrun / DDP) with exact gradients.

Each process holds a shard of the global batch. :func:`gather_with_grad` concatenates every
shard's tensor, keeping the autograd graph for the local shard only. If every process computes
the loss of the *global* batch from these tensors and multiplies it by the world size ``W``
(:func:`world_size`), DDP's gradient averaging ``(1/W) sum_r dL/dθ|shard r`` gives exactly
``dL/dθ``: the gradient of one process holding the whole batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world_size() -> int:
    """Processes in the default group (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (same shape on every rank) along dim 0 in rank order; the local
    slice keeps its gradient, the others are constants."""
    if world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.detach().contiguous())
    parts[rank()] = tensor
    return torch.cat(parts)


def pad_to_global_max(tensor: torch.Tensor, dim: int, fill: float | int | None = None
                      ) -> torch.Tensor:
    """Pad ``dim`` of ``tensor`` to its largest size over all ranks, so that it can be gathered;
    padding repeats the first slice along ``dim`` when ``fill`` is ``None``."""
    if world_size() == 1:
        return tensor
    size = torch.tensor([tensor.shape[dim]], device=tensor.device)
    dist.all_reduce(size, op=dist.ReduceOp.MAX)
    missing = int(size.item()) - tensor.shape[dim]
    if missing == 0:
        return tensor
    if fill is None:
        extra = tensor.narrow(dim, 0, 1).repeat_interleave(missing, dim=dim)
    else:
        shape = list(tensor.shape)
        shape[dim] = missing
        extra = torch.full(shape, fill, dtype=tensor.dtype, device=tensor.device)
    return torch.cat([tensor, extra], dim=dim)
