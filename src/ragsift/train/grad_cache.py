"""GradCache (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory
Limited Setup"): a contrastive loss over a large batch with the activation memory of a small one.

The loss ``L(Q, D)`` depends on the encoder only through the representations ``Q``, ``D``. So:

1. encode the batch chunk by chunk without building a graph, keeping the representations and
   each chunk's random state (dropout);
2. compute ``L`` on those representations (as leaves) and backpropagate to get ``dL/dQ``,
   ``dL/dD``;
3. re-encode each chunk with its random state restored, now with a graph, and backpropagate
   ``sum(rep * dL/drep)``: its gradient with respect to the weights is that chunk's share of
   ``dL/dθ``.

The gradient equals the one of the whole batch at once (exactly, given the same dropout masks);
peak activation memory is that of one chunk. The module must accept the query half or the
document half of a batch alone (``module(query_...)`` -> ``(Q, None)``,
``module(doc_...)`` -> ``(None, D)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

Loss = Callable[[tuple[torch.Tensor, torch.Tensor], dict[str, Any]], torch.Tensor]


def _halves(batch: dict[str, Any], prefix: str, rows: int) -> list[dict[str, Any]]:
    """Chunks of ``rows`` rows of the tensors named ``prefix*`` (other values copied)."""
    names = [k for k in batch if k.startswith(prefix)]
    total = len(batch[next(k for k in names if torch.is_tensor(batch[k]))])
    chunks = []
    for start in range(0, total, rows):
        chunks.append({k: batch[k][start:start + rows] if torch.is_tensor(batch[k]) else batch[k]
                       for k in names})
    return chunks


class _RandomState:
    """The CPU (and CUDA) random state at construction, restorable later."""

    def __init__(self) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


def grad_cache_step(module: torch.nn.Module, batch: dict[str, Any], loss_fn: Loss, rows: int,
                    backward: Callable[[torch.Tensor], None], scale: float = 1.0
                    ) -> torch.Tensor:
    """One GradCache forward/backward of ``batch``; returns the (unscaled) loss, detached.

    Args:
        module: the two-tower module (see the module docstring).
        batch: a collated batch with ``query_*`` and ``doc_*`` tensors.
        loss_fn: ``loss_fn((Q, D), batch)``.
        rows: rows per chunk.
        backward: e.g. ``accelerator.backward``; called once per chunk.
        scale: multiplies the loss before backpropagation (``1 / accumulation steps``).
    """
    parts = {"query": _halves(batch, "query_", rows), "doc": _halves(batch, "doc_", rows)}
    reps: dict[str, list[torch.Tensor]] = {"query": [], "doc": []}
    states: dict[str, list[_RandomState]] = {"query": [], "doc": []}
    with torch.no_grad():
        for side, chunks in parts.items():
            for chunk in chunks:
                states[side].append(_RandomState())
                outputs = module(**chunk)
                reps[side].append(outputs[0 if side == "query" else 1])
    after = _RandomState()
    queries = torch.cat(reps["query"]).requires_grad_()
    docs = torch.cat(reps["doc"]).requires_grad_()
    loss = loss_fn((queries, docs), batch)
    (loss * scale).backward()
    grads = {"query": queries.grad.split([len(r) for r in reps["query"]]),
             "doc": docs.grad.split([len(r) for r in reps["doc"]])}
    for side, chunks in parts.items():
        for chunk, state, grad in zip(chunks, states[side], grads[side]):
            state.restore()
            rep = module(**chunk)[0 if side == "query" else 1]
            backward((rep * grad).sum())
    after.restore()
    return loss.detach()
