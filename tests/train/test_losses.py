"""Losses against values computed by hand (plain math on small inputs)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ragsift.train.losses import (
    hidden_state_mse,
    info_nce,
    kl_distillation,
    listwise_ce,
    margin_mse,
    matryoshka,
    pointwise_bce,
    ranknet,
)


def nll(row: list[float], target: int) -> float:
    return -(row[target] - math.log(sum(math.exp(x) for x in row)))


def test_info_nce_by_hand():
    scores = torch.tensor([[1.0, 0.0, 0.5], [0.2, 0.8, 0.1]])
    targets = torch.tensor([0, 1])
    expected = (nll([1.0, 0.0, 0.5], 0) + nll([0.2, 0.8, 0.1], 1)) / 2
    assert info_nce(scores, targets, temperature=1.0).item() == pytest.approx(expected, abs=1e-6)
    halved = (nll([2.0, 0.0, 1.0], 0) + nll([0.4, 1.6, 0.2], 1)) / 2
    assert info_nce(scores, targets, temperature=0.5).item() == pytest.approx(halved, abs=1e-6)


def test_info_nce_excludes_known_positives_but_never_the_target():
    scores = torch.tensor([[1.0, 0.9, 0.5], [0.2, 0.8, 0.1]])
    exclude = torch.tensor([[True, True, False], [False, True, False]])  # target flags ignored
    expected = (nll([1.0, 0.5], 0) + nll([0.2, 0.8, 0.1], 1)) / 2
    got = info_nce(scores, torch.tensor([0, 1]), 1.0, exclude)
    assert got.item() == pytest.approx(expected, abs=1e-6)


def test_symmetric_info_nce_adds_the_document_direction():
    scores = torch.tensor([[1.0, 0.0, 0.5], [0.2, 0.8, 0.1]])
    forward = (nll([1.0, 0.0, 0.5], 0) + nll([0.2, 0.8, 0.1], 1)) / 2
    # document 0 against queries (1.0, 0.2) -> query 0; document 1 against (0.0, 0.8) -> query 1
    backward = (nll([1.0, 0.2], 0) + nll([0.0, 0.8], 1)) / 2
    got = info_nce(scores, torch.tensor([0, 1]), 1.0, symmetric=True)
    assert got.item() == pytest.approx((forward + backward) / 2, abs=1e-6)


def test_matryoshka_is_the_weighted_sum_over_truncations():
    generator = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(3, 8, generator=generator), dim=-1)
    d = F.normalize(torch.randn(6, 8, generator=generator), dim=-1)

    def loss(a, b):
        return info_nce(a @ b.T, torch.arange(3), 0.1)

    expected = sum(w * loss(F.normalize(q[:, :m], dim=-1), F.normalize(d[:, :m], dim=-1))
                   for m, w in ((8, 1.0), (4, 0.5)))
    got = matryoshka(loss, q, d, [8, 4], [1.0, 0.5])
    assert got.item() == pytest.approx(expected.item(), abs=1e-6)
    with pytest.raises(ValueError, match="weights"):
        matryoshka(loss, q, d, [8, 4], [1.0])


def test_pointwise_listwise_and_ranknet_by_hand():
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    labels = torch.tensor([[1.0, 0.0, 0.0]])

    def log_sigmoid(x):
        return -math.log1p(math.exp(-x))

    bce = -(log_sigmoid(2.0) + log_sigmoid(-1.0) + log_sigmoid(0.0)) / 3
    assert pointwise_bce(logits, labels).item() == pytest.approx(bce, abs=1e-6)
    assert listwise_ce(logits).item() == pytest.approx(nll([2.0, 1.0, 0.0], 0), abs=1e-6)
    pairs = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(-2.0))) / 2
    assert ranknet(logits, labels).item() == pytest.approx(pairs, abs=1e-6)
    graded = torch.tensor([[2.0, 1.0, 0.0]])
    grades = torch.tensor([[0.0, 2.0, 1.0]])  # pairs (1>0), (1>2), (2>0)
    expected = (math.log1p(math.exp(1.0)) + math.log1p(math.exp(-1.0))
                + math.log1p(math.exp(2.0))) / 3
    assert ranknet(graded, grades).item() == pytest.approx(expected, abs=1e-6)
    assert ranknet(logits, torch.zeros_like(labels)).item() == 0.0


def test_distillation_losses_by_hand():
    student = torch.tensor([[1.0, 0.0, -1.0]])
    teacher = torch.tensor([[2.0, 1.0, 0.0]])
    tau = 2.0
    p = [math.exp(x / tau) for x in teacher[0].tolist()]
    p = [x / sum(p) for x in p]
    q = [math.exp(x / tau) for x in student[0].tolist()]
    q = [x / sum(q) for x in q]
    kl = sum(a * math.log(a / b) for a, b in zip(p, q)) * tau ** 2
    assert kl_distillation(student, teacher, tau).item() == pytest.approx(kl, abs=1e-6)
    # teacher cosines sharpened by their own temperature, the student's logits taken as they are
    cosines = torch.tensor([[0.6, 0.5, 0.3]])
    p = [math.exp(x / 0.05) for x in cosines[0].tolist()]
    p = [x / sum(p) for x in p]
    q = [math.exp(x) for x in student[0].tolist()]
    q = [x / sum(q) for x in q]
    kl = sum(a * math.log(a / b) for a, b in zip(p, q))
    assert kl_distillation(student, cosines, 1.0, teacher_temperature=0.05).item() == \
        pytest.approx(kl, abs=1e-6)
    # margins: student (1, 2), teacher (1, 2) -> 0; shift one student score
    assert margin_mse(student, teacher).item() == pytest.approx(0.0, abs=1e-7)
    shifted = torch.tensor([[1.0, 0.5, -1.0]])  # margins (0.5, 2) vs (1, 2)
    assert margin_mse(shifted, teacher).item() == pytest.approx(0.25 / 2, abs=1e-7)


def test_hidden_state_mse_by_hand_ignores_padding():
    # two sequences of 2 positions, 2 dimensions; the second one's last position is padding
    mask = torch.tensor([[1, 1], [1, 0]])
    student_0 = torch.tensor([[[1.0, 2.0], [0.0, 0.0]], [[3.0, 3.0], [99.0, -99.0]]])
    teacher_0 = torch.tensor([[[1.0, 0.0], [1.0, 1.0]], [[3.0, 4.0], [0.0, 0.0]]])
    student_1 = torch.zeros(2, 2, 2)
    teacher_1 = torch.full((2, 2, 2), 2.0)
    # layer 0: squared differences of the 3 real tokens 4 + 0, 1 + 1, 0 + 1 over 3 x 2 values
    # layer 1: every value differs by 2 -> 4
    expected = (7 / 6 + 4) / 2
    assert hidden_state_mse([student_0, student_1], [teacher_0, teacher_1], mask).item() == \
        pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="1 student and 2 teacher"):
        hidden_state_mse([student_0], [teacher_0, teacher_1], mask)


def test_distillation_with_labels_adds_the_scaled_cross_entropy_by_hand():
    from ragsift.train.config import DistillSettings
    from ragsift.train.tasks.contrastive import distillation_loss

    student = torch.tensor([[0.1, 0.3, 0.0]])  # a negative ranked first, as by the teacher
    teacher = torch.tensor([[0.5, 0.6, 0.2]])
    batch = {"teacher_scores": teacher}
    tau, weight = 0.05, 0.5
    q = [math.exp(x / tau) for x in student[0].tolist()]
    p = [math.exp(x / tau) for x in teacher[0].tolist()]
    q, p = [x / sum(q) for x in q], [x / sum(p) for x in p]
    kl = sum(a * math.log(a / b) for a, b in zip(p, q)) * tau ** 2
    hard = -math.log(q[0]) * tau ** 2
    settings = DistillSettings(distill_temperature=tau)
    assert distillation_loss(student, batch, "kl", settings).item() == pytest.approx(kl, rel=1e-5)
    settings.distill_label_weight = weight
    assert distillation_loss(student, batch, "kl", settings).item() == \
        pytest.approx(kl + weight * hard, rel=1e-5)
    margins = ((0.1 - 0.3) - (0.5 - 0.6)) ** 2 + ((0.1 - 0.0) - (0.5 - 0.2)) ** 2
    assert distillation_loss(student, batch, "margin-mse", settings).item() == \
        pytest.approx(margins / 2 + weight * hard, rel=1e-5)
    from ragsift.errors import UsageError

    with pytest.raises(UsageError, match="no teacher scores .* drop distill"):
        distillation_loss(student, {}, "kl", settings)


def test_vector_distillation_losses_by_hand():
    from ragsift.train.losses import (
        cosine_distillation,
        relative_similarity_distillation,
        similarity_matrix_distillation,
    )

    teacher = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert cosine_distillation(teacher * 3, teacher).item() == pytest.approx(0.0, abs=1e-6)
    student = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # cosines: rows 1 (1), 2 (0), 3 (1/sqrt 2)
    expected = ((1 - 1) + (1 - 0) + (1 - 2 ** -0.5)) / 3
    assert cosine_distillation(student, teacher).item() == pytest.approx(expected, abs=1e-6)
    # teacher cosine matrix: [[1,0,c],[0,1,c],[c,c,1]], c = 1/sqrt2; student's: [[1,1,0],[1,1,0],
    # [0,0,1]] -> squared differences 2*(1) + 2*(c^2) + 2*(c^2) over 9 entries
    c = 2 ** -0.5
    expected = (2 * 1 + 4 * c ** 2) / 9
    got = similarity_matrix_distillation(student, teacher).item()
    assert got == pytest.approx(expected, abs=1e-6)
    # pairs (12, 13, 23): teacher cosines (0, c, c), student (1, 0, 0). Ordered pairs with
    # T_a > T_b: (13 > 12) and (23 > 12); violations relu(S_12 - S_13 + m) = 1 + m, twice
    margin = 0.015
    got = relative_similarity_distillation(student, teacher, margin).item()
    assert got == pytest.approx(1 + margin, abs=1e-6)
    assert relative_similarity_distillation(teacher, teacher, 0.0).item() == 0.0


def test_lambda_loss_by_hand():
    from ragsift.train.losses import lambda_loss

    # One group of three documents: scores s = (0.5, 2.0, 1.0), graded labels y = (2, 0, 1).
    # Ranks by score: doc 1 (2.0) -> 1, doc 2 (1.0) -> 2, doc 0 (0.5) -> 3.
    # Gains 2^y - 1 = (3, 0, 1); ideal order 3, 1, 0: maxDCG = 3 / log2(2) + 1 / log2(3).
    max_dcg = 3 / math.log2(2) + 1 / math.log2(3)
    gain = [3 / max_dcg, 0.0, 1 / max_dcg]

    def inv(rank):  # 1 / D(rank)
        return 1 / math.log2(1 + rank)

    # Pairs with y_i > y_j: (0, 1) ranks 3 vs 1, (0, 2) ranks 3 vs 2, (2, 1) ranks 2 vs 1.
    pairs = [(0, 1, 3, 1, 0.5 - 2.0), (0, 2, 3, 2, 0.5 - 1.0), (2, 1, 2, 1, 1.0 - 2.0)]
    loss2 = loss2pp = 0.0
    for i, j, rank_i, rank_j, margin in pairs:
        gap = abs(rank_i - rank_j)
        delta = abs(inv(gap) - inv(gap + 1))
        rho = abs(inv(rank_i) - inv(rank_j))
        term = abs(gain[i] - gain[j]) * math.log2(1 + math.exp(-margin))
        loss2 += delta * term
        loss2pp += (rho + 10 * delta) * term
    scores = torch.tensor([[0.5, 2.0, 1.0]])
    labels = torch.tensor([[2.0, 0.0, 1.0]])
    assert lambda_loss(scores, labels, "ndcg2").item() == pytest.approx(loss2, rel=1e-6)
    assert lambda_loss(scores, labels, "ndcg2++", mu=10).item() == pytest.approx(loss2pp,
                                                                                  rel=1e-6)
    # the mean over groups; a group without an ordered pair adds 0
    two = lambda_loss(torch.cat([scores, scores]), torch.cat([labels, torch.zeros(1, 3)]),
                      "ndcg2")
    assert two.item() == pytest.approx(loss2 / 2, rel=1e-6)


def test_lambda_loss_gradient_follows_the_labels():
    from ragsift.train.losses import lambda_loss

    def gradient(scores, labels):
        scores = torch.tensor([scores], requires_grad=True)
        lambda_loss(scores, torch.tensor([labels])).backward()
        return scores.grad[0]

    # the relevant document is pushed up and the other down; swapping labels flips the signs
    for scores in ([0.3, -0.2, 0.1, 0.9], [1.0, 1.0, 1.0, 1.0]):
        grad = gradient(scores, [1.0, 0.0, 0.0, 0.0])
        swapped = gradient(scores, [0.0, 1.0, 0.0, 0.0])
        assert grad[0] < 0 < grad[1] and swapped[1] < 0 < swapped[0]
    # two documents with equal scores: swapping the labels negates the gradient exactly
    torch.testing.assert_close(gradient([0.4, 0.4], [1.0, 0.0]),
                               -gradient([0.4, 0.4], [0.0, 1.0]))
