"""Cross-process InfoNCE: two gloo processes holding half a batch each reproduce the loss and
the gradients of one process holding the whole batch (as DDP averages them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ragsift.train.losses import info_nce
from ragsift.train.tasks.contrastive import gathered_contrastive

BATCH, NEGATIVES, DIM = 4, 2, 8


def make_batch():
    generator = torch.Generator().manual_seed(0)
    encoder = torch.nn.Linear(DIM, 6, bias=False)
    with torch.no_grad():
        encoder.weight.copy_(torch.randn(6, DIM, generator=generator))
    queries = torch.randn(BATCH, DIM, generator=generator)
    positives = torch.randn(BATCH, DIM, generator=generator)
    negatives = torch.randn(BATCH * NEGATIVES, DIM, generator=generator)
    keys = torch.arange(BATCH + BATCH * NEGATIVES)
    keys[BATCH + 1] = keys[0]  # a negative of query 0's shard equals query 0's positive
    return encoder, queries, positives, negatives, keys


def loss_of(encoder, queries, positives, negatives, pos_keys, neg_keys, gather):
    def encode(x):
        return torch.nn.functional.normalize(encoder(x), dim=-1)

    batch = {"doc_keys": torch.cat([pos_keys, neg_keys]), "positive_keys": pos_keys[:, None]}
    docs = torch.cat([encode(positives), encode(negatives)])
    return gathered_contrastive(encode(queries), docs, batch, gather, lambda q, d: q @ d.T,
                                lambda s, t, e: info_nce(s, t, 0.1, e, symmetric=True))


def worker(rank: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    encoder, queries, positives, negatives, keys = make_batch()
    half, neg_half = BATCH // world, BATCH * NEGATIVES // world
    rows = slice(rank * half, (rank + 1) * half)
    neg_rows = slice(rank * neg_half, (rank + 1) * neg_half)
    loss = loss_of(encoder, queries[rows], positives[rows], negatives[neg_rows],
                   keys[:BATCH][rows], keys[BATCH:][neg_rows], gather=True)
    loss.backward()
    grad = encoder.weight.grad.clone()
    dist.all_reduce(grad)
    grad /= world  # what DDP does
    if rank == 0:
        torch.save({"loss": loss.detach() / world, "grad": grad}, out)
    dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed missing")
def test_two_processes_equal_one(tmp_path: Path):
    encoder, queries, positives, negatives, keys = make_batch()
    # the single-process reference; gathered shards take the same rank-major layout
    loss = loss_of(encoder, queries, positives, negatives,
                   keys[:BATCH], keys[BATCH:], gather=False)
    loss.backward()
    os.environ.pop("RANK", None)
    out = tmp_path / "rank0.pt"
    mp.spawn(worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    result = torch.load(out)
    assert result["loss"].item() == pytest.approx(loss.item(), abs=1e-5)
    torch.testing.assert_close(result["grad"], encoder.weight.grad, atol=1e-5, rtol=1e-4)


def colbert_loss(queries, docs, pos_keys, neg_keys, gather):
    """MaxSim InfoNCE on packed token vectors ([v, mask]), as the ColBERT task computes it."""
    from ragsift.train.distributed import pad_to_global_max
    from ragsift.train.tasks.colbert import _maxsim_packed

    batch = {"doc_keys": torch.cat([pos_keys, neg_keys]), "positive_keys": pos_keys[:, None]}
    if gather:
        docs = pad_to_global_max(docs, 1, 0.0)
    return gathered_contrastive(queries, docs, batch, gather, _maxsim_packed,
                                lambda s, t, e: info_nce(s, t, 1.0, e))


def colbert_batch():
    generator = torch.Generator().manual_seed(3)
    weight = torch.randn(4, 4, generator=generator)
    queries = torch.randn(4, 3, 4, generator=generator)  # 4 queries x 3 tokens
    docs = torch.randn(8, 5, 4, generator=generator)  # 4 positives + 4 negatives, 5 tokens
    lengths = torch.tensor([5, 2, 4, 3, 1, 5, 2, 4])
    mask = torch.arange(5)[None, :] < lengths[:, None]
    return weight, queries, docs, mask


def packed(weight, tokens, mask):
    vectors = torch.nn.functional.normalize(tokens @ weight, dim=-1)
    return torch.cat([vectors, mask[..., None].float()], dim=-1)


def colbert_worker(rank: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    weight, queries, docs, mask = colbert_batch()
    weight.requires_grad_()
    rows = slice(2 * rank, 2 * rank + 2)
    neg_rows = slice(4 + 2 * rank, 4 + 2 * rank + 2)
    local_docs = torch.cat([docs[rows], docs[neg_rows]])
    local_mask = torch.cat([mask[rows], mask[neg_rows]])
    width = int(local_mask.sum(1).max())  # each rank pads to its own longest document
    doc_tokens = packed(weight, local_docs[:, :width], local_mask[:, :width])
    loss = colbert_loss(packed(weight, queries[rows], torch.ones(2, 3, dtype=torch.bool)),
                        doc_tokens, torch.arange(4)[rows], torch.arange(4, 8)[rows], True)
    loss.backward()
    grad = weight.grad.clone()
    dist.all_reduce(grad)
    if rank == 0:
        torch.save({"loss": loss.detach() / world, "grad": grad / world}, out)
    dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed missing")
def test_colbert_two_processes_equal_one(tmp_path: Path):
    weight, queries, docs, mask = colbert_batch()
    weight.requires_grad_()
    loss = colbert_loss(packed(weight, queries, torch.ones(4, 3, dtype=torch.bool)),
                        packed(weight, docs, mask), torch.arange(4), torch.arange(4, 8), False)
    loss.backward()
    out = tmp_path / "rank0.pt"
    mp.spawn(colbert_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    result = torch.load(out)
    assert result["loss"].item() == pytest.approx(loss.item(), abs=1e-5)
    torch.testing.assert_close(result["grad"], weight.grad, atol=1e-5, rtol=1e-4)
