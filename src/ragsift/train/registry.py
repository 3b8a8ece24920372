"""The tables of training extension points: :data:`GROUP_LOSSES` (losses of the tasks that score
groups of candidates) and the ``module:attribute`` references they hold.

Nothing here imports torch: the config parser and ``ragsift train --help`` read the names and
help texts; the builder imports a loss or task only when a run uses it (:func:`resolve`).
Adding a group loss is one function of signature ``(scores, labels, config) -> loss`` (in
:mod:`ragsift.train.group_losses`) and one entry below; ``loss:`` in the reranker and
llm-reranker configs, their ``--help`` and docs/training.md's table list it from here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Entry:
    """One table row: ``target`` (``"package.module:attribute"``, imported on use) and the
    one-line ``help`` that ``--help`` and the docs print."""

    target: str
    help: str

    def load(self) -> Any:
        """The object ``target`` names.

        Example:
            >>> Entry("math:sqrt", "square root").load()(9.0)
            3.0
        """
        return resolve(self.target)


def resolve(target: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


_LOSSES = "ragsift.train.group_losses"

#: Losses of ``(B, G)`` group scores (the positive in column 0) against ``(B, G)`` labels.
GROUP_LOSSES: dict[str, Entry] = {
    "listwise": Entry(f"{_LOSSES}:listwise",
                      "softmax cross-entropy with the positive as target (LCE)"),
    "pointwise": Entry(f"{_LOSSES}:pointwise", "binary cross-entropy of each score"),
    "ranknet": Entry(f"{_LOSSES}:ranknet", "RankNet: logistic loss of every ordered pair"),
    "lambdaloss": Entry(f"{_LOSSES}:lambdaloss",
                        "LambdaLoss: RankNet pairs weighted by their NDCG change "
                        "(lambdaloss_weighting, lambdaloss_mu)"),
}

#: The ``loss`` values a config accepts (the keys of :data:`GROUP_LOSSES`).
GroupLoss = Literal[tuple(GROUP_LOSSES)]  # type: ignore[valid-type]


def table_help(table: dict[str, Entry]) -> str:
    """``name: help`` lines of a table, for ``--help`` and the docs.

    Example:
        >>> print(table_help({"a": Entry("m:f", "does a")}))
        a: does a
    """
    return "\n".join(f"{name}: {entry.help}" for name, entry in table.items())
