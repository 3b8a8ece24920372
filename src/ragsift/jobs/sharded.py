"""Sharded, resumable jsonl jobs.

A job maps a list of item keys to output lines. The keys are cut into shards of ``shard_size``;
each shard's lines go to ``<out>.shards/shard-NNNNN.jsonl`` atomically (temp file + rename), so
a shard file exists only when complete. A rerun after a kill skips the shards already written.
When every shard exists they are concatenated, in order, into ``out`` (atomically) and the
shard folder is removed. With a deterministic ``work`` function the output of an interrupted and
resumed job is byte-identical to that of an uninterrupted one.

``<out>.shards/job.json`` records the shard size and a hash of the keys; a rerun with different
inputs stops with an error instead of mixing two jobs' shards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ragsift.atomic import atomic_file
from ragsift.errors import RagsiftError, UsageError
from ragsift.jobs.backends import LocalBackend, ShardBackend

logger = logging.getLogger(__name__)


@dataclass
class JobResult:
    """What a run did: shards computed now and skipped (done before), items, lines, seconds."""

    shards_done: int
    shards_skipped: int
    items: int
    lines: int
    seconds: float


def shards_dir(out: str | Path) -> Path:
    """The folder holding the finished shards of a job writing ``out``."""
    out = Path(out)
    return out.with_name(out.name + ".shards")


def _previous_job(file: Path) -> dict:
    """The recorded settings of the job whose shards are in ``file``'s folder."""
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise RagsiftError(f"{file}: unreadable job record ({exc}); delete {file.parent} to "
                           f"start over") from None


def run_sharded(keys: Sequence[str], work: Callable[[list[str]], list[str]], out: str | Path,
                shard_size: int = 256, desc: str = "job", show_progress: bool = True,
                backend: ShardBackend | None = None) -> JobResult:
    """Run ``work`` over ``keys`` shard by shard and write its lines to ``out``.

    Args:
        keys: item keys (e.g. query ids), in output order.
        work: maps a shard's keys to output lines (without newlines).
        out: the final jsonl file.
        shard_size: keys per shard.
        backend: where shards run (:mod:`ragsift.jobs.backends`; default: this process).
    """
    if shard_size < 1:
        raise UsageError(f"the shard size (--shard-size) must be >= 1, got {shard_size}")
    folder = shards_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()
    manifest = {"shard_size": shard_size, "items": len(keys), "keys_sha256": digest}
    manifest_file = folder / "job.json"
    if manifest_file.is_file():
        previous = _previous_job(manifest_file)
        if previous != manifest:
            raise RagsiftError(f"{folder} holds shards of a different job ({previous}); delete "
                               f"it to start over")
    else:
        with atomic_file(manifest_file) as handle:
            handle.write(json.dumps(manifest))
    shards = [list(keys[i:i + shard_size]) for i in range(0, len(keys), shard_size)]
    paths = [folder / f"shard-{i:05d}.jsonl" for i in range(len(shards))]
    start = time.perf_counter()
    todo = [(i, shard) for i, (shard, path) in enumerate(zip(shards, paths)) if not path.is_file()]
    skipped = len(shards) - len(todo)
    items = 0
    progress = tqdm(total=len(shards), initial=skipped, desc=desc, unit="shard",
                    disable=not show_progress)
    for index, lines in (backend or LocalBackend()).map(work, todo):
        with atomic_file(paths[index]) as handle:
            handle.writelines(line + "\n" for line in lines)
        items += len(shards[index])
        progress.update()
    progress.close()
    done = len(todo)
    total = 0
    with atomic_file(out) as handle:
        for path in paths:
            with open(path, encoding="utf-8") as shard_file:
                for line in shard_file:
                    handle.write(line)
                    total += 1
    shutil.rmtree(folder)
    seconds = time.perf_counter() - start
    if skipped:
        logger.info("resumed: %d of %d shards were already done", skipped, len(shards))
    logger.info("%s: %d items in %.1fs (%.3g items/s); wrote %d lines to %s", desc, items,
                seconds, items / max(seconds, 1e-9), total, out)
    return JobResult(done, skipped, items, total, seconds)
