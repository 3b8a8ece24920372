"""Where the shards of a job run: in this process (``local``) or on a Ray cluster (``ray``).

A backend maps a shard function over ``(index, keys)`` pairs and yields ``(index, lines)`` as
shards finish, in any order; :func:`ragsift.jobs.sharded.run_sharded` writes each result to its
shard file at once, so whatever finished survives a crash of the driver or of a worker.

On Ray, the shard function is sent once to the object store and each worker is an actor that
deserializes it once: a model held in a :class:`Lazy` is loaded once per actor, on its first
shard, never pickled. An actor that dies (killed, out of memory) is restarted and its shard
retried up to ``retries`` times; past that the job stops with the finished shards kept, and
rerunning the same command resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Generic, Protocol, TypeVar

from ragsift.errors import RagsiftError, UsageError

T = TypeVar("T")
ShardWork = Callable[[list[str]], list[str]]
Shards = Sequence[tuple[int, list[str]]]
BACKENDS = ("local", "ray")


class Lazy(Generic[T]):
    """A value built by ``build()`` on first use, once per process. Pickling carries the
    recipe (``build``, e.g. a ``functools.partial`` of a model loader), never the value."""

    def __init__(self, build: Callable[[], T]) -> None:
        self.build = build
        self._value: T | None = None

    def get(self) -> T:
        if self._value is None:
            self._value = self.build()
        return self._value

    def __getstate__(self) -> dict:
        return {"build": self.build, "_value": None}


def resolve(value: T | Lazy[T]) -> T:
    """``value`` itself, or the value a :class:`Lazy` builds."""
    return value.get() if isinstance(value, Lazy) else value


class ShardBackend(Protocol):
    def map(self, work: ShardWork, shards: Shards) -> Iterator[tuple[int, list[str]]]:
        """Yield ``(index, work(keys))`` for every ``(index, keys)`` of ``shards``."""
        ...


class LocalBackend:
    """Shards one after another in this process."""

    def map(self, work: ShardWork, shards: Shards) -> Iterator[tuple[int, list[str]]]:
        for index, keys in shards:
            yield index, work(keys)


class _ShardActor:
    """A Ray worker holding one copy of the shard function."""

    def __init__(self, work: ShardWork) -> None:
        self.work = work

    def run(self, index: int, keys: list[str]) -> tuple[int, list[str]]:
        return index, self.work(keys)


class RayBackend:
    """Shards as tasks of a pool of Ray actors.

    Args:
        workers: actors to start (default: the cluster's CPUs / ``cpus_per_worker``, at most
            one per shard).
        address: a cluster address (``ray://...`` or ``auto``); default: the running Ray
            session, else a local one.
        cpus_per_worker: CPUs each actor reserves (Ray sets its thread count to match).
        retries: restarts of a dead actor and retries of its shard before the job stops.
    """

    def __init__(self, workers: int | None = None, address: str | None = None,
                 cpus_per_worker: float = 1.0, retries: int = 2) -> None:
        self.workers = workers
        self.address = address
        self.cpus_per_worker = cpus_per_worker
        self.retries = retries

    def map(self, work: ShardWork, shards: Shards) -> Iterator[tuple[int, list[str]]]:
        try:
            import ray
            from ray.exceptions import RayActorError, RayTaskError
            from ray.util import ActorPool
        except ImportError as exc:
            raise RagsiftError("the ray backend needs Ray: pip install 'ragsift[ray]'") from exc
        if not shards:
            return
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        count = self.workers or max(
            1, int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_worker))
        actor = ray.remote(num_cpus=self.cpus_per_worker, max_restarts=self.retries,
                           max_task_retries=self.retries)(_ShardActor)
        work_ref = ray.put(work)
        actors = [actor.remote(work_ref) for _ in range(min(count, len(shards)))]
        pool = ActorPool(actors)
        try:
            yield from pool.map_unordered(lambda a, shard: a.run.remote(*shard), list(shards))
        except RayActorError as exc:
            raise RagsiftError(f"a Ray worker died and its retries ({self.retries}) ran out; "
                               f"finished shards are kept, rerun the same command to resume: "
                               f"{exc}") from exc
        except RayTaskError as exc:
            raise exc.as_instanceof_cause() from None
        finally:
            for handle in actors:
                ray.kill(handle)


def make_backend(name: str, workers: int | None = None, address: str | None = None,
                 cpus_per_worker: float = 1.0, retries: int = 2) -> ShardBackend:
    """The backend called ``name`` (``local`` or ``ray``)."""
    if name == "local":
        return LocalBackend()
    if name == "ray":
        return RayBackend(workers, address, cpus_per_worker, retries)
    raise UsageError(f"unknown job backend {name!r}; use one of {', '.join(BACKENDS)}")
