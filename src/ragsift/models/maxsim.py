"""MaxSim, the late-interaction score of ColBERT, for paired and all-pairs batches.

For a query with token vectors ``q_1..q_n`` (rows kept by ``query_mask``) and a document with
token vectors ``d_1..d_m`` (rows kept by ``doc_mask``)::

    s(q, d) = sum_i max_j  q_i . d_j

Vectors are normally L2-normalised, so each term is a cosine similarity. A document with no kept
token contributes 0 for every query token (rather than ``-inf``).
"""

from __future__ import annotations

import torch

_MASKED = -1e4  # below any dot product of unit vectors, finite so that gradients stay finite


def _masked_docs(docs: torch.Tensor, doc_mask: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    if doc_mask is None:
        doc_mask = torch.ones(docs.shape[:2], dtype=torch.bool, device=docs.device)
    return doc_mask.bool(), doc_mask.bool().any(dim=1)


def maxsim_matrix(queries: torch.Tensor, docs: torch.Tensor,
                  query_mask: torch.Tensor | None = None,
                  doc_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Scores of every query against every document.

    Args:
        queries: ``(Bq, Lq, D)`` query token vectors.
        docs: ``(Bd, Ld, D)`` document token vectors.
        query_mask: ``(Bq, Lq)``, true for tokens that count (default: all).
        doc_mask: ``(Bd, Ld)``, true for tokens that can be matched (default: all).

    Returns:
        ``(Bq, Bd)`` MaxSim scores.

    Example:
        >>> q = torch.tensor([[[1., 0.], [0., 1.]]])
        >>> d = torch.tensor([[[1., 0.], [.6, .8]]])
        >>> maxsim_matrix(q, d).tolist()
        [[1.7999999523162842]]
    """
    doc_mask, has_tokens = _masked_docs(docs, doc_mask)
    # (Bq, Lq, Bd, Ld) similarities, reduced over document tokens then query tokens.
    sims = torch.einsum("qid,bjd->qibj", queries, docs)
    sims = sims.masked_fill(~doc_mask[None, None], _MASKED)
    best = sims.max(dim=3).values * has_tokens[None, None]
    if query_mask is not None:
        best = best * query_mask[:, :, None].to(best.dtype)
    return best.sum(dim=1)


def maxsim_paired(queries: torch.Tensor, docs: torch.Tensor,
                  query_mask: torch.Tensor | None = None,
                  doc_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Scores of query ``i`` against document ``i``; shapes as in :func:`maxsim_matrix` with
    ``Bq == Bd``; returns ``(B,)``."""
    doc_mask, has_tokens = _masked_docs(docs, doc_mask)
    sims = torch.einsum("bid,bjd->bij", queries, docs)
    sims = sims.masked_fill(~doc_mask[:, None, :], _MASKED)
    best = sims.max(dim=2).values * has_tokens[:, None]
    if query_mask is not None:
        best = best * query_mask.to(best.dtype)
    return best.sum(dim=1)
