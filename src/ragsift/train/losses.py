"""Training losses for retrieval models, each a plain function of scores or vectors.

Notation: ``B`` queries per batch; a group is one query's candidates, the positive first;
``s`` are model scores, ``t`` teacher scores, ``tau`` a temperature.

Embeddings and late interaction (contrastive):

- :func:`info_nce` -- InfoNCE / in-batch softmax cross-entropy (van den Oord et al. 2018;
  Karpukhin et al. 2020 for DPR's in-batch + hard negatives). With ``S_ij = s(q_i, d_j) / tau``
  over every document of the batch (all positives and all hard negatives)::

      L = -(1/B) sum_i log( exp(S_i,p(i)) / sum_j exp(S_ij) )

  ``symmetric`` adds the document-to-query direction over the positives,
  ``-(1/B) sum_i log(exp(S_i,p(i)) / sum_k exp(S_k,p(i)))``, and averages the two.
  Known positives of ``q_i`` other than its target are removed from its denominator.
- :func:`matryoshka` -- MRL (Kusupati et al. 2022): ``sum_k w_k L(q[:, :m_k], d[:, :m_k])``
  with vectors re-normalised after truncation.

Cross-encoder rerankers (groups of G = 1 positive + G-1 negatives, logits ``s`` of shape (B, G)):

- :func:`pointwise_bce` -- ``-(1/BG) sum [y log sigmoid(s) + (1-y) log(1 - sigmoid(s))]``.
- :func:`listwise_ce` -- softmax cross-entropy with the positive at column 0:
  ``-(1/B) sum_i log softmax(s_i / tau)_0`` (Nogueira & Cho's pairwise setting generalised to
  lists; the "localised contrastive estimation" of Gao et al. 2021).
- :func:`ranknet` -- RankNet (Burges et al. 2005) over every pair with ``y_a > y_b``:
  ``mean log(1 + exp(-(s_a - s_b)))``.
- :func:`lambda_loss` -- LambdaLoss (Wang et al. 2018), RankNet's pairs weighted by how much
  swapping them changes NDCG (NDCG-Loss2 and NDCG-Loss2++; formula in its docstring).

Distillation from teacher scores:

- :func:`kl_distillation` -- ``tau^2 KL(softmax(t/tau) || softmax(s/tau))`` averaged over
  queries (Hinton et al. 2015).
- :func:`margin_mse` -- MarginMSE (Hofstätter et al. 2020):
  ``mean_i,k ((s_i0 - s_ik) - (t_i0 - t_ik))^2`` over each group's negatives ``k``.
- :func:`hidden_state_mse` -- TinyBERT's hidden-state loss (Jiao et al. 2020) for a student
  cut from its teacher: the mean squared difference of the token states of each student
  layer and the teacher layer mapped to it, over the real (unpadded) tokens.

Vector distillation (Stella / Jasper, Zhang et al. 2024), student vectors ``s`` and teacher
vectors ``t`` of the same N texts: :func:`cosine_distillation`,
:func:`similarity_matrix_distillation`, :func:`relative_similarity_distillation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F


def info_nce(scores: torch.Tensor, targets: torch.Tensor, temperature: float = 0.05,
             exclude: torch.Tensor | None = None, symmetric: bool = False) -> torch.Tensor:
    """InfoNCE over a query-by-document score matrix.

    Args:
        scores: ``(B, N)`` similarities of each query with every document of the batch.
        targets: ``(B,)`` column of each query's positive.
        temperature: ``tau``.
        exclude: ``(B, N)`` true where a document must leave a query's denominator (another
            known positive of that query); the target column is never excluded.
        symmetric: also the document-to-query loss over the target columns.

    Returns:
        The scalar loss.
    """
    logits = scores / temperature
    rows = torch.arange(len(targets), device=scores.device)
    if exclude is not None:
        exclude = exclude.clone()
        exclude[rows, targets] = False
        logits = logits.masked_fill(exclude, torch.finfo(logits.dtype).min)
    loss = F.cross_entropy(logits, targets)
    if symmetric:
        # column p(i) against the other queries of the batch
        columns = logits[:, targets].T  # (B, B): row i = doc p(i) scored by every query
        loss = (loss + F.cross_entropy(columns, rows)) / 2
    return loss


def contrastive_targets(batch: int, offset: int = 0) -> torch.Tensor:
    """Target columns when documents are laid out as ``[positives (B), negatives...]`` and this
    process's positives start at column ``offset`` of the gathered matrix."""
    return torch.arange(batch) + offset


def matryoshka(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
               queries: torch.Tensor, docs: torch.Tensor, dims: Sequence[int],
               weights: Sequence[float] | None = None) -> torch.Tensor:
    """MRL: ``sum_k w_k loss(norm(q[:, :m_k]), norm(d[:, :m_k]))`` (weights default to 1)."""
    weights = list(weights) if weights else [1.0] * len(dims)
    if len(weights) != len(dims):
        raise ValueError(f"{len(dims)} MRL dims but {len(weights)} weights")
    total = queries.new_zeros(())
    for dim, weight in zip(dims, weights):
        total = total + weight * loss(F.normalize(queries[:, :dim], dim=-1),
                                      F.normalize(docs[:, :dim], dim=-1))
    return total


def pointwise_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of each logit against its 0/1 (or soft) label."""
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def listwise_ce(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Softmax cross-entropy of ``(B, G)`` group logits with the positive in column 0."""
    targets = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits / temperature, targets)


def ranknet(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """RankNet over ``(B, G)`` logits: ``mean log(1 + exp(-(s_a - s_b)))`` for every pair of a
    group with ``label_a > label_b`` (0 when no group has such a pair)."""
    diff = logits[:, :, None] - logits[:, None, :]
    better = (labels[:, :, None] > labels[:, None, :]).to(logits.dtype)
    count = better.sum()
    if count == 0:
        return logits.sum() * 0
    return (F.softplus(-diff) * better).sum() / count


LambdaWeighting = Literal["ndcg2", "ndcg2++"]


def lambda_loss(logits: torch.Tensor, labels: torch.Tensor,
                weighting: LambdaWeighting = "ndcg2++", mu: float = 10.0,
                sigma: float = 1.0) -> torch.Tensor:
    """LambdaLoss (Wang, Li, Golbandi, Bendersky & Najork, "The LambdaLoss Framework for
    Ranking Metric Optimization", CIKM 2018) over ``(B, G)`` group logits ``s`` with graded
    labels ``y`` (``(B, G)``, 0 = not relevant).

    Within a group, ``r_i`` is document ``i``'s rank (1 = best) when sorted by the current
    scores (ties keep column order; ranks carry no gradient), ``D(r) = log2(1 + r)``,
    ``G_i = (2^y_i - 1) / maxDCG`` with ``maxDCG = sum_r (2^y_(r) - 1) / D(r)`` over the ideal
    order. For every pair with ``y_i > y_j``::

        L_group = sum_{y_i > y_j} w_ij |G_i - G_j| log2(1 + exp(-sigma (s_i - s_j)))

        delta_ij = |1 / D(|r_i - r_j|) - 1 / D(|r_i - r_j| + 1)|     (NDCG-Loss2)
        rho_ij   = |1 / D(r_i) - 1 / D(r_j)|                         (LambdaRank's |delta NDCG|
                                                                      without the gains)
        w_ij = delta_ij                  with ``weighting="ndcg2"``
        w_ij = rho_ij + mu * delta_ij    with ``weighting="ndcg2++"`` (the paper's default mix)

    NDCG-Loss2 is a bound on ``1 - NDCG`` that the paper shows tighter than LambdaRank's
    heuristic; the ``rho`` term of NDCG-Loss2++ keeps a useful gradient once ``delta`` flattens.
    Returns the mean of ``L_group`` over the ``B`` groups (a group without a pair ``y_i > y_j``
    adds 0).

    Inputs:

    ======================  ===============================================================
    ``logits`` (B, G)       model scores of each group's candidates
    ``labels`` (B, G)       graded relevance (a reranker group: 1 for the positive, else 0)
    ======================  ===============================================================

    Example:
        >>> scores = torch.tensor([[0.0, 1.0]], requires_grad=True)
        >>> lambda_loss(scores, torch.tensor([[1.0, 0.0]])).backward()
        >>> bool(scores.grad[0, 0] < 0 < scores.grad[0, 1])  # raise the positive
        True
    """
    labels = labels.to(logits.dtype)
    columns = logits.shape[1]
    discounts = torch.log2(torch.arange(2, columns + 2, device=logits.device,
                                        dtype=logits.dtype))  # D(r) for r = 1..G
    gains = torch.pow(2.0, labels) - 1
    ideal = torch.sort(gains, dim=1, descending=True).values
    max_dcg = (ideal / discounts).sum(dim=1, keepdim=True).clamp(min=torch.finfo(
        logits.dtype).tiny)
    gains = gains / max_dcg
    order = torch.sort(logits.detach(), dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(1, columns + 1, device=logits.device).expand_as(order))
    ranks = ranks.to(logits.dtype)
    gap = (ranks[:, :, None] - ranks[:, None, :]).abs()  # |r_i - r_j|, >= 1 off the diagonal

    def inverse_discount(rank: torch.Tensor) -> torch.Tensor:
        return 1.0 / torch.log2(1.0 + rank)

    delta = (inverse_discount(gap.clamp(min=1)) - inverse_discount(gap + 1)).abs()
    if weighting == "ndcg2":
        weights = delta
    elif weighting == "ndcg2++":
        rho = (inverse_discount(ranks)[:, :, None] - inverse_discount(ranks)[:, None, :]).abs()
        weights = rho + mu * delta
    else:
        raise ValueError(f"unknown LambdaLoss weighting {weighting!r}; use ndcg2 or ndcg2++")
    better = (labels[:, :, None] > labels[:, None, :]).to(logits.dtype)
    weights = weights * (gains[:, :, None] - gains[:, None, :]).abs() * better
    diff = logits[:, :, None] - logits[:, None, :]
    pair_losses = F.softplus(-sigma * diff) / math.log(2)  # log2(1 + exp(-sigma (s_i - s_j)))
    return (pair_losses * weights.detach()).sum(dim=(1, 2)).mean()


def kl_distillation(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0,
                    teacher_temperature: float | None = None) -> torch.Tensor:
    """``tau^2 * KL(softmax(t / tau_t) || softmax(s / tau))`` for ``(B, G)`` scores, mean over B;
    ``tau_t`` is ``teacher_temperature``, ``tau`` when not given (Hinton et al., 2015)."""
    target = F.log_softmax(teacher / (teacher_temperature or temperature), dim=-1)
    predicted = F.log_softmax(student / temperature, dim=-1)
    return F.kl_div(predicted, target, log_target=True, reduction="batchmean") * temperature ** 2


def margin_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MarginMSE for ``(B, G)`` scores with the positive in column 0."""
    student_margin = student[:, :1] - student[:, 1:]
    teacher_margin = teacher[:, :1] - teacher[:, 1:]
    return F.mse_loss(student_margin, teacher_margin)


def hidden_state_mse(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor],
                     mask: torch.Tensor) -> torch.Tensor:
    """TinyBERT's hidden-state distillation: ``(1 / L) sum_l sum_{i: m_i = 1} ||s_li - t_li||^2
    / (n D)`` for ``L`` pairs of ``(B, S, D)`` token states (student layer ``l`` and the teacher
    layer mapped to it), ``mask`` ``(B, S)`` the attention mask (``n`` = its number of ones):
    the mean squared difference over the real tokens, averaged over the layers."""
    if len(student) != len(teacher) or not student:
        raise ValueError(f"{len(student)} student and {len(teacher)} teacher layers to match")
    real = mask.bool()
    return torch.stack([F.mse_loss(s[real], t[real].to(s.dtype))
                        for s, t in zip(student, teacher, strict=True)]).mean()


def cosine_distillation(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Stella/Jasper cosine loss: ``mean_i (1 - cos(s_i, t_i))`` for ``(N, D)`` vectors (the
    student already projected to the teacher's dimension)."""
    return (1 - F.cosine_similarity(student, teacher, dim=-1)).mean()


def similarity_matrix_distillation(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Stella/Jasper similarity loss: ``mean_ij (S_ij - T_ij)^2`` between the in-batch cosine
    matrices ``S = norm(s) norm(s)^T`` and ``T = norm(t) norm(t)^T`` (dimensions may differ)."""
    s = F.normalize(student, dim=-1)
    t = F.normalize(teacher, dim=-1)
    return F.mse_loss(s @ s.T, t @ t.T)


def relative_similarity_distillation(student: torch.Tensor, teacher: torch.Tensor,
                                     margin: float = 0.015) -> torch.Tensor:
    """Stella/Jasper relative similarity loss: over every two pairs of the batch whose teacher
    cosines order them ``T_ij > T_mn``, ``mean relu(S_mn - S_ij + margin)``: the student keeps
    the teacher's ranking of pairs."""
    s = F.normalize(student, dim=-1)
    t = F.normalize(teacher, dim=-1)
    upper = torch.triu_indices(len(s), len(s), offset=1, device=s.device)
    s_pairs = (s @ s.T)[upper[0], upper[1]]
    t_pairs = (t @ t.T)[upper[0], upper[1]]
    ordered = (t_pairs[:, None] > t_pairs[None, :]).to(s.dtype)
    violations = F.relu(s_pairs[None, :] - s_pairs[:, None] + margin) * ordered
    return violations.sum() / ordered.sum().clamp(min=1)
