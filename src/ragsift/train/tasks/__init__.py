"""One module per trainable model family; :func:`build_task` builds the one
:data:`ragsift.train.config.TASKS` names."""

from __future__ import annotations

from ragsift.errors import UsageError
from ragsift.train.config import TASKS, TrainConfig
from ragsift.train.task import TrainingTask


def build_task(name: str, config: TrainConfig) -> TrainingTask:
    """The training task ``name`` (a key of :data:`~ragsift.train.config.TASKS`) for
    ``config``; only that task's module is imported."""
    if name not in TASKS:
        raise UsageError(f"unknown training task {name!r}; choose from {sorted(TASKS)}")
    return TASKS[name].load()(config)
