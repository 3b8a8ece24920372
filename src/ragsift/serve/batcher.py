"""Micro-batching: requests that arrive together share one model call.

A :class:`MicroBatcher` owns one worker thread and one model. ``await batcher.submit(item,
tokens)`` queues the item and suspends the request's coroutine (the event loop keeps serving
others). The worker takes the first queued item, then keeps collecting items until ``max_wait_ms``
has passed since it took the first one or the next item would take the batch over
``max_batch_tokens``; it runs ``run_batch`` on all of them at once and hands each request its own
result. An item larger than the budget alone runs alone. So a request waits at most
``max_wait_ms`` for company, and a batch never holds more tokens than the budget plus one item.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Job:
    item: Any
    tokens: int
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


_STOP = object()


class MicroBatcher(Generic[Item, Result]):
    """Run ``run_batch`` over items submitted concurrently, in one worker thread.

    Args:
        name: the model's name, for logs and metrics.
        run_batch: items -> one result per item, in order (runs in the worker thread).
        max_batch_tokens: the token budget of a batch.
        max_wait_ms: how long the worker waits for more items after taking the first.
        on_batch: called after every batch with its item count and tokens (for metrics).
    """

    def __init__(
        self,
        name: str,
        run_batch: Callable[[list[Item]], Sequence[Result]],
        *,
        max_batch_tokens: int,
        max_wait_ms: float,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self.name = name
        self.run_batch = run_batch
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch
        self.batches = 0
        self.items = 0
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    async def submit(self, item: Item, tokens: int) -> Result:
        """Queue ``item`` (worth ``tokens`` of the budget); return its result when its batch
        has run, or raise the exception ``run_batch`` raised."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Job(item, tokens, future, loop))
        return await future

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued items, then stop the worker thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _work(self) -> None:
        held: _Job | None = None
        stopping = False
        while not stopping:
            first = held or self._queue.get()
            held = None
            if first is _STOP:
                return
            batch, tokens = [first], first.tokens
            deadline = time.monotonic() + self.max_wait
            while (left := deadline - time.monotonic()) > 0:
                try:
                    job = self._queue.get(timeout=left)
                except queue.Empty:
                    break
                if job is _STOP:
                    stopping = True
                    break
                if tokens + job.tokens > self.max_batch_tokens:
                    held = job
                    break
                batch.append(job)
                tokens += job.tokens
            self._run(batch, tokens)

    def _run(self, batch: list[_Job], tokens: int) -> None:
        try:
            results = list(self.run_batch([job.item for job in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"{self.name}: {len(results)} results for {len(batch)} items")
        except Exception as exc:  # every waiting request gets the error; the worker lives on
            logger.exception("%s: batch of %d items failed", self.name, len(batch))
            for job in batch:
                job.loop.call_soon_threadsafe(_settle, job.future, None, exc)
        else:
            for job, result in zip(batch, results):
                job.loop.call_soon_threadsafe(_settle, job.future, result, None)
        self.batches += 1
        self.items += len(batch)
        if self.on_batch is not None:
            self.on_batch(len(batch), tokens)


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    """Resolve ``future`` unless its request has gone (cancelled by a client disconnect)."""
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
