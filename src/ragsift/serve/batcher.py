"""Micro-batching: requests that arrive together share one model call.

A :class:`MicroBatcher` owns one worker thread and one model. ``await batcher.submit(item,
tokens)`` queues the item and suspends the request's coroutine (the event loop keeps serving
others). The worker takes the first queued item, then keeps collecting items until ``max_wait_ms``
has passed since it took the first one or the next item would take the batch over
``max_batch_tokens``; it runs ``run_batch`` on all of them at once and hands each request its own
result. An item larger than the budget alone runs alone. So a request waits at most
``max_wait_ms`` for company, and a batch never holds more tokens than the budget plus one item.

Failures stay with their request: when ``run_batch`` raises on several items, the worker runs
each half of the batch again (and so on down to single items), so only the requests whose items
fail alone get the exception. An exception anywhere else in the worker's loop fails that batch
and the worker carries on. If the worker thread ends anyway (closed, or killed by a
``BaseException``), every queued and later request gets :class:`WorkerStopped` at once instead
of waiting for ever, and :attr:`MicroBatcher.stopped` says why.
"""

from __future__ import annotations

import asyncio
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


MAX_WAIT_MS = 60_000.0  # the longest wait for company a batcher accepts


class WorkerStopped(RuntimeError):
    """The batcher's worker thread has ended (the server is closing, or the thread crashed):
    the request cannot be served."""


@dataclass
class _Job:
    item: Any
    tokens: int
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        """Hand the request its result or error (from any thread; a settled or cancelled
        request ignores it)."""
        try:
            self.loop.call_soon_threadsafe(_settle, self.future, result, error)
        except RuntimeError:  # the request's event loop has closed: nobody waits any more
            logger.debug("a result came after its event loop closed")


_STOP = object()


class MicroBatcher(Generic[Item, Result]):
    """Run ``run_batch`` over items submitted concurrently, in one worker thread.

    Args:
        name: the model's name, for logs and metrics.
        run_batch: items -> one result per item, in order (runs in the worker thread).
        max_batch_tokens: the token budget of a batch.
        max_wait_ms: how long the worker waits for more items after taking the first (0 to
            :data:`MAX_WAIT_MS`).
        on_batch: called after every ``run_batch`` call with its item count and tokens (for
            metrics).

    Raises:
        ValueError: ``max_wait_ms`` not a finite number in its range.
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
        if not (math.isfinite(max_wait_ms) and 0 <= max_wait_ms <= MAX_WAIT_MS):
            raise ValueError(f"{name}: max_wait_ms must be from 0 to {MAX_WAIT_MS:g}, "
                             f"not {max_wait_ms!r}")
        self.name = name
        self.run_batch = run_batch
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch
        self.batches = 0
        self.items = 0
        self.stopped: str | None = None  # why the worker has ended; None while it runs
        self._lock = threading.Lock()  # orders submit() against the worker's end
        self._queue: queue.Queue = queue.Queue()
        self._batch: list[_Job] = []  # taken off the queue, not yet settled
        self._held: _Job | None = None
        self._thread = threading.Thread(target=self._work, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    async def submit(self, item: Item, tokens: int) -> Result:
        """Queue ``item`` (worth ``tokens`` of the budget); return its result when its batch
        has run, or raise the exception ``run_batch`` raised on it (:class:`WorkerStopped` when
        the worker has ended)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            if self.stopped is not None:
                raise WorkerStopped(f"{self.name}: {self.stopped}")
            self._queue.put(_Job(item, tokens, future, loop))
        return await future

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued items, then stop the worker thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _work(self) -> None:
        """The worker thread: serve batches until closed; however it ends, fail what is left."""
        reason = "the server is shutting down"
        try:
            self._serve()
        except BaseException as exc:  # _serve survives Exception: this is the last resort
            reason = f"its worker thread crashed ({type(exc).__name__}: {exc})"
            logger.critical("%s: worker thread crashed", self.name, exc_info=True)
        finally:
            self._stop(reason)

    def _serve(self) -> None:
        """Collect and run batches until the queue yields the stop marker."""
        while True:
            first, self._held = self._held or self._queue.get(), None
            if first is _STOP:
                return
            self._batch = [first]
            stopping = False
            try:
                stopping = self._collect()
                self._run(self._batch)
            except Exception as exc:  # the batch fails, the worker lives on
                logger.exception("%s: batch of %d items failed", self.name, len(self._batch))
                for job in self._batch:
                    job.settle(error=exc)
            self._batch = []
            if stopping:
                return

    def _collect(self) -> bool:
        """Add queued jobs to the batch for up to ``max_wait`` or until the token budget is
        full (the job over it is held for the next batch); return whether the stop marker
        came."""
        tokens = self._batch[0].tokens
        deadline = time.monotonic() + self.max_wait
        while (left := deadline - time.monotonic()) > 0:
            try:
                job = self._queue.get(timeout=left)
            except queue.Empty:
                return False
            if job is _STOP:
                return True
            if tokens + job.tokens > self.max_batch_tokens:
                self._held = job
                return False
            self._batch.append(job)
            tokens += job.tokens
        return False

    def _run(self, batch: list[_Job]) -> None:
        """Run ``batch`` and settle its jobs; if it fails, run its halves, so that an item
        failing alone fails only its own request."""
        try:
            results = self._call(batch)
        except Exception as exc:
            if len(batch) == 1:
                logger.error("%s: item failed: %r", self.name, exc, exc_info=exc)
                batch[0].settle(error=exc)
                return
            logger.warning("%s: batch of %d items failed (%r); running its halves",
                           self.name, len(batch), exc)
            middle = len(batch) // 2
            self._run(batch[:middle])
            self._run(batch[middle:])
            return
        for job, result in zip(batch, results):
            job.settle(result)

    def _call(self, batch: list[_Job]) -> list[Any]:
        """One ``run_batch`` call over ``batch``'s items, counted whether or not it fails."""
        try:
            results = list(self.run_batch([job.item for job in batch]))
        finally:
            self.batches += 1
            self.items += len(batch)
            if self.on_batch is not None:
                self.on_batch(len(batch), sum(job.tokens for job in batch))
        if len(results) != len(batch):
            raise RuntimeError(f"{self.name}: {len(results)} results for {len(batch)} items")
        return results

    def _stop(self, reason: str) -> None:
        """Refuse new items from now on and fail every job not yet settled."""
        with self._lock:
            self.stopped = reason
            left = [*self._batch, self._held]
            while not self._queue.empty():
                left.append(self._queue.get_nowait())
        error = WorkerStopped(f"{self.name}: {reason}")
        for job in left:
            if isinstance(job, _Job):
                job.settle(error=error)


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    """Resolve ``future`` unless its request has gone (cancelled by a client disconnect)."""
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
