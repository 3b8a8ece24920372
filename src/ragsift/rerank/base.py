"""The reranker interface shared by every family, with long documents and calibration built in.

A family (cross-encoder, LLM reranker, late interaction) implements two things:

- :meth:`Reranker.passage_budget`: how many passage tokens fit beside a query;
- :meth:`Reranker.score_fitted`: raw relevance scores of (query, passage) pairs that fit.

Everything else is written once here. :meth:`Reranker.score` splits passages longer than the
budget into overlapping token windows (:mod:`ragsift.rerank.long_documents`), scores every window
and aggregates per pair; with ``calibrated=True`` raw scores go through the model's fitted
calibration (:mod:`ragsift.rerank.calibration`) and become probabilities of relevance.
"""

from __future__ import annotations

import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ragsift.errors import DataFormatError, UsageError
from ragsift.rerank.calibration import Calibration
from ragsift.rerank.long_documents import LongDocStrategy, expand_pairs
from ragsift.types import Corpus, Queries, Run, ranked

logger = logging.getLogger(__name__)

CALIBRATION_FILE = "ragsift_calibration.json"


@dataclass(frozen=True)
class Hit:
    """One ranked document: its position in the input list, its score and its text."""

    index: int
    score: float
    text: str


class Reranker(ABC):
    """Scores (query, passage) pairs; ranks documents for a query; reranks runs.

    Args:
        long_doc: what to do with passages longer than the model takes: ``max`` (default),
            ``mean``, ``topk-mean`` (mean of the ``top_windows`` best), ``first`` (first window
            only) or ``truncate`` (the model's own truncation, with a logged count).
        window_overlap: tokens shared by consecutive windows (default: a quarter of the budget).
        calibration: a fitted :class:`Calibration` for ``score(..., calibrated=True)``.
    """

    family: ClassVar[str] = ""

    def __init__(
        self,
        *,
        long_doc: LongDocStrategy = "max",
        window_overlap: int | None = None,
        top_windows: int = 2,
        calibration: Calibration | None = None,
    ) -> None:
        self.long_doc = long_doc
        self.window_overlap = window_overlap
        self.top_windows = top_windows
        self.calibration = calibration

    # ---- what a family implements -------------------------------------------------------
    @property
    @abstractmethod
    def tokenizer(self) -> Any:
        """The fast tokenizer whose tokens the passage budget counts."""

    @abstractmethod
    def passage_budget(self, query: str) -> int:
        """How many passage tokens fit in one forward pass beside ``query``."""

    @abstractmethod
    def score_fitted(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw scores (log-odds of relevance, or the family's natural score) of pairs that fit."""

    # ---- written once ---------------------------------------------------------------------
    def score(self, pairs: Sequence[tuple[str, str]], calibrated: bool = False) -> np.ndarray:
        """Scores of (query, passage) pairs, long passages handled by :attr:`long_doc`.

        Returns raw scores, or with ``calibrated=True`` their :meth:`probability`.
        """
        if not len(pairs):
            return np.zeros(0, dtype=np.float32)
        windows, owners = expand_pairs(
            pairs, self.tokenizer, self.passage_budget, self.long_doc, self.window_overlap
        )
        raw = np.asarray(self.score_fitted(windows), dtype=np.float32)
        scores = aggregate_windows(raw, owners, len(pairs), self.long_doc, self.top_windows)
        return self.probability(scores) if calibrated else scores

    def probability(self, scores: np.ndarray) -> np.ndarray:
        """Probabilities of relevance in [0, 1] for raw ``scores`` (what :meth:`score` returns
        with ``calibrated=True``): the fitted :attr:`calibration`,
        ``p = sigmoid(slope * s + intercept)``, when there is one, else the model's own
        :meth:`uncalibrated_probability` (``p = sigmoid(s)`` for a log-odds score).

        Args:
            scores: raw scores, any shape.

        Returns:
            float32 probabilities, the shape of ``scores``.
        """
        if self.calibration is not None:
            return self.calibration.apply(scores)
        return self.uncalibrated_probability(scores)

    def uncalibrated_probability(self, scores: np.ndarray) -> np.ndarray:
        """The model's own probability when no calibration is fitted: ``sigmoid(score)``, right
        for families whose raw score is a log-odds (a 1-logit head; logit(yes) - logit(no))."""
        return (1.0 / (1.0 + np.exp(-np.clip(scores, -60, 60)))).astype(np.float32)

    def fit_calibration(self, pairs: Sequence[tuple[str, str]], labels: Sequence[int],
                        method: str = "platt") -> Calibration:
        """Fit score -> probability on labelled pairs (1 relevant, 0 not); kept on the model."""
        self.calibration = Calibration.fit(self.score(pairs), np.asarray(labels), method)
        return self.calibration

    def rank(self, query: str, docs: Sequence[str], top_k: int | None = None,
             threshold: float | None = None) -> list[Hit]:
        """``docs`` best first. ``threshold`` keeps hits whose probability of relevance is at
        least that value; scores are then probabilities (see :meth:`score`)."""
        scores = self.score([(query, d) for d in docs], calibrated=threshold is not None)
        order = np.argsort(-scores, kind="stable")
        hits = [Hit(int(i), float(scores[i]), docs[i]) for i in order]
        if threshold is not None:
            hits = [h for h in hits if h.score >= threshold]
        return hits[:top_k] if top_k is not None else hits

    def rerank(self, queries: Queries, corpus: Corpus, run: Run, k: int = 100,
               show_progress: bool = False) -> Run:
        """Re-score the top ``k`` documents of each query of ``run``; returns a new run."""
        from tqdm.auto import tqdm

        pairs: list[tuple[str, str]] = []
        keys: list[tuple[str, str]] = []
        unknown = 0
        for qid in run:
            if qid not in queries:
                continue
            for doc_id, _ in ranked(run[qid], k):
                if doc_id in corpus:
                    pairs.append((queries[qid], corpus[doc_id].full_text()))
                    keys.append((qid, doc_id))
                else:
                    unknown += 1
        if unknown:
            logger.warning("%d run documents are not in the corpus and were dropped", unknown)
        scores = np.zeros(len(pairs), dtype=np.float32)
        chunk = 2048
        for start in tqdm(range(0, len(pairs), chunk), desc="rerank", unit="chunk",
                          disable=not show_progress):
            scores[start:start + chunk] = self.score(pairs[start:start + chunk])
        result: Run = {qid: {} for qid in run if qid in queries}
        for (qid, doc_id), value in zip(keys, scores.tolist()):
            result[qid][doc_id] = value
        return result

    # ---- persistence of calibration ----------------------------------------------------------
    def save_calibration(self, folder: str | os.PathLike[str]) -> None:
        """Write the calibration beside the model files (no-op without one)."""
        if self.calibration is not None:
            Path(folder, CALIBRATION_FILE).write_text(json.dumps(self.calibration.to_json()))

    def with_saved_calibration(self, folder: Path) -> Reranker:
        """Use the calibration saved in ``folder`` unless one was given; returns ``self``."""
        path = folder / CALIBRATION_FILE
        if self.calibration is None and path.is_file():
            self.calibration = Calibration.from_json(json.loads(path.read_text()))
        return self

    @classmethod
    def load(cls, name: str | os.PathLike[str], family: str | None = None,
             **options: Any) -> Reranker:
        """Load any reranker; the family comes from the model's config unless given."""
        from ragsift.models.hub import resolve_model

        folder = resolve_model(name)
        family = family or detect_family(folder)
        if family not in _FAMILIES:
            raise UsageError(f"unknown reranker family {family!r}; choose one of "
                             f"{sorted(_FAMILIES)} or leave it unset to read it from the model")
        return _FAMILIES[family][0].from_pretrained(name, **options)

    @classmethod
    @abstractmethod
    def from_pretrained(cls, name: str | os.PathLike[str], **options: Any) -> Reranker:
        """Load this family from a folder, packaged name or hub id."""


def aggregate_windows(raw: np.ndarray, owners: np.ndarray, n: int, strategy: LongDocStrategy,
                      top_windows: int = 2) -> np.ndarray:
    """Per-pair scores from window scores; ``owners`` (non-decreasing) maps windows to pairs.

    - ``max``: ``s = max_w s_w``; ``mean``: ``s = (1/W) sum_w s_w``;
    - ``topk-mean``: the mean of the ``top_windows`` highest ``s_w``;
    - ``first`` and ``truncate`` have one window per pair: ``s = s_1``.

    Example:
        >>> aggregate_windows(np.array([1., 3., 2.]), np.array([0, 0, 1]), 2, "mean").tolist()
        [2.0, 2.0]
    """
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
    if len(starts) != n:
        raise ValueError(f"{len(starts)} window groups for {n} pairs")
    if strategy == "mean":
        counts = np.diff(np.r_[starts, len(raw)])
        return (np.add.reduceat(raw, starts) / counts).astype(np.float32)
    if strategy == "topk-mean":
        groups = np.split(raw, starts[1:])
        return np.array([np.sort(g)[::-1][:top_windows].mean() for g in groups], np.float32)
    return np.maximum.reduceat(raw, starts).astype(np.float32)


# family name -> (class, detector(config dict, folder) -> bool); filled by register_family.
_FAMILIES: dict[str, tuple[type[Reranker], Callable[[dict, Path], bool]]] = {}


def register_family(name: str, cls: type[Reranker],
                    detect: Callable[[dict, Path], bool]) -> None:
    """Make family ``name`` loadable by :meth:`Reranker.load` and detectable from a folder."""
    cls.family = name
    _FAMILIES[name] = (cls, detect)


def detect_family(folder: Path) -> str:
    """The family whose detector accepts ``folder``'s config.json (first registered wins).

    Raises:
        DataFormatError: no detector accepts it (the error names config.json and
            ``architectures``, and the families to name instead).
    """
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    for name, (_, detect) in _FAMILIES.items():
        if detect(config, folder):
            return name
    found = config.get("architectures") if config_file.is_file() else "(no config.json)"
    raise DataFormatError(
        config_file, None, "architectures",
        f"cannot tell the reranker family from {found}; name the family, one of "
        f"{sorted(_FAMILIES)}"
    )
