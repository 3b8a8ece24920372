"""MicroBatcher on its own: a failing item fails only its request, the worker survives errors in
its loop, and a dead worker answers every request at once instead of leaving it waiting."""

from __future__ import annotations

import asyncio

import pytest

from ragsift.serve.batcher import MicroBatcher, WorkerStopped

POISON = "poison"


class Fatal(BaseException):
    """Ends a worker thread the way nothing in its loop catches."""


def doubling(calls: list[list[str]]):
    """A run_batch that records its calls, doubles strings and refuses :data:`POISON`."""

    def run(items: list[str]) -> list[str]:
        calls.append(list(items))
        if POISON in items:
            raise ValueError(f"cannot read {POISON!r}")
        return [item * 2 for item in items]

    return run


async def submit_all(batcher: MicroBatcher, items: list[str]) -> list[object]:
    """Submit ``items`` at once; each request's result or exception."""
    return await asyncio.gather(*(batcher.submit(item, 1) for item in items),
                                return_exceptions=True)


def test_a_failing_item_fails_only_its_own_request():
    calls: list[list[str]] = []
    batcher = MicroBatcher("m", doubling(calls), max_batch_tokens=100, max_wait_ms=200)
    items = [f"q{i}" for i in range(7)]
    items.insert(5, POISON)
    try:
        results = asyncio.run(submit_all(batcher, items))
    finally:
        batcher.close()
    assert len(calls[0]) == 8  # one batch first, then halves down to the poison alone
    for item, result in zip(items, results):
        if item == POISON:
            assert isinstance(result, ValueError) and POISON in str(result)
        else:
            assert result == item * 2
    assert [POISON] in calls and len(calls) <= 1 + 2 * 3  # bisection, not one call per item


def test_the_worker_survives_an_error_in_its_loop():
    batcher = MicroBatcher("m", doubling([]), max_batch_tokens=100, max_wait_ms=1)
    try:
        batcher.max_wait = float("inf")  # what killed the worker: queue.get(timeout=inf)
        failed = asyncio.run(asyncio.wait_for(submit_all(batcher, ["a"]), 10))
        batcher.max_wait = 0.001
        served = asyncio.run(asyncio.wait_for(submit_all(batcher, ["b"]), 10))
        assert isinstance(failed[0], OverflowError)
        assert served == ["bb"] and batcher.stopped is None
    finally:
        batcher.close()


def test_a_dead_worker_fails_pending_and_later_requests_at_once():
    def crash(items: list[str]) -> list[str]:
        raise Fatal("worker killed")

    batcher = MicroBatcher("m", crash, max_batch_tokens=1, max_wait_ms=1)
    results = asyncio.run(asyncio.wait_for(submit_all(batcher, ["a", "b", "c"]), 10))
    assert all(isinstance(r, WorkerStopped) for r in results)
    assert "Fatal" in batcher.stopped
    with pytest.raises(WorkerStopped, match="worker thread crashed"):
        asyncio.run(asyncio.wait_for(batcher.submit("d", 1), 10))


def test_a_closed_batcher_refuses_new_items():
    batcher = MicroBatcher("m", doubling([]), max_batch_tokens=10, max_wait_ms=1)
    batcher.close()
    with pytest.raises(WorkerStopped, match="shutting down"):
        asyncio.run(batcher.submit("a", 1))


@pytest.mark.parametrize("wait", [float("inf"), float("nan"), 1e12, -1])
def test_the_wait_must_be_finite_and_bounded(wait):
    with pytest.raises(ValueError, match="max_wait_ms"):
        MicroBatcher("m", doubling([]), max_batch_tokens=10, max_wait_ms=wait)
