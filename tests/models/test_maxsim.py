"""MaxSim against a plain-loop reference and a hand-computed case."""

from __future__ import annotations

import numpy as np
import torch

from ragsift.models.maxsim import maxsim_matrix, maxsim_paired


def loop_maxsim(q, q_mask, d, d_mask) -> float:
    """sum over kept query tokens of the best dot product with a kept document token."""
    total = 0.0
    for i in range(len(q)):
        if not q_mask[i]:
            continue
        best = [float(np.dot(q[i], d[j])) for j in range(len(d)) if d_mask[j]]
        total += max(best) if best else 0.0
    return total


def test_hand_computed_case():
    q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    d = torch.tensor([[[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]])
    # token 1 best matches d_1 (1.0), token 2 best matches d_3 (1.0)
    assert maxsim_paired(q, d).item() == 2.0
    # without d_3 (masked), token 2's best is d_2 (0.8)
    mask = torch.tensor([[True, True, False]])
    assert abs(maxsim_paired(q, d, doc_mask=mask).item() - 1.8) < 1e-6
    # dropping query token 2 leaves 1.0
    assert maxsim_matrix(q, d, torch.tensor([[True, False]]), mask).item() == 1.0


def test_matrix_and_paired_equal_the_loop_reference():
    generator = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(3, 5, 8, generator=generator), dim=-1)
    d = torch.nn.functional.normalize(torch.randn(4, 7, 8, generator=generator), dim=-1)
    q_mask = torch.rand(3, 5, generator=generator) > 0.3
    d_mask = torch.rand(4, 7, generator=generator) > 0.4
    d_mask[2] = False  # a document with no scorable token contributes 0
    matrix = maxsim_matrix(q, d, q_mask, d_mask).numpy()
    for a in range(3):
        for b in range(4):
            expected = loop_maxsim(q[a].numpy(), q_mask[a], d[b].numpy(), d_mask[b])
            assert abs(matrix[a, b] - expected) < 1e-5
    paired = maxsim_paired(q, d[:3], q_mask, d_mask[:3]).numpy()
    np.testing.assert_allclose(paired, np.diag(matrix[:, :3]), atol=1e-6)
    assert matrix[:, 2].tolist() == [0.0, 0.0, 0.0]


def test_gradients_flow_and_stay_finite():
    q = torch.randn(2, 3, 4, requires_grad=True)
    d = torch.randn(2, 5, 4, requires_grad=True)
    mask = torch.tensor([[True] * 5, [False] * 5])
    maxsim_matrix(q, d, doc_mask=mask).sum().backward()
    assert torch.isfinite(q.grad).all() and torch.isfinite(d.grad).all()
    assert d.grad[1].abs().sum() == 0  # masked tokens get no gradient
