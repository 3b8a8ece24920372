"""Turning raw reranker scores into probabilities of relevance that can be thresholded.

- Platt scaling (Platt, 1999): ``p = sigmoid(a * s + b)``, ``a, b`` fitted by maximum
  likelihood (logistic regression on the scores) over labelled pairs.
- Temperature scaling (Guo et al., 2017): ``p = sigmoid(s / T)``, one parameter ``T > 0``.

Quality is measured by the expected calibration error over ``M`` equal-width bins ``B_m`` of
predicted probability: ``ECE = sum_m |B_m| / n * |mean(y in B_m) - mean(p in B_m)|``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import minimize

Method = Literal["platt", "temperature"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


@dataclass(frozen=True)
class Calibration:
    """``p = sigmoid(slope * score + intercept)`` (temperature scaling: intercept 0).

    Example:
        >>> Calibration(2.0, 0.0, "platt").apply(np.array([0.0])).tolist()
        [0.5]
    """

    slope: float
    intercept: float
    method: str

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Probabilities of relevance for raw ``scores``."""
        return _sigmoid(self.slope * np.asarray(scores, np.float64) + self.intercept).astype(
            np.float32)

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray, method: Method = "platt") -> Calibration:
        """Fit on raw ``scores`` with binary ``labels`` by minimising the log loss.

        Raises:
            ValueError: fewer than two classes among the labels, or an unknown method.
        """
        s = np.asarray(scores, np.float64)
        y = np.asarray(labels, np.float64)
        if len(s) != len(y):
            raise ValueError(f"{len(s)} scores for {len(y)} labels")
        if len(np.unique(y)) != 2 or not set(np.unique(y)) <= {0.0, 1.0}:
            raise ValueError("calibration needs labels 0 and 1, both present")

        def nll(params: np.ndarray) -> float:
            slope, intercept = (params[0], params[1]) if method == "platt" else (params[0], 0.0)
            z = slope * s + intercept
            return float(np.mean(np.logaddexp(0.0, z) - y * z))

        if method == "platt":
            start = np.array([1.0, 0.0])
        elif method == "temperature":
            start = np.array([1.0])
        else:
            raise ValueError(f"unknown calibration method {method!r}: platt or temperature")
        params = minimize(nll, start, method="L-BFGS-B").x
        return cls(float(params[0]), float(params[1]) if method == "platt" else 0.0, method)

    def to_json(self) -> dict:
        return {"slope": self.slope, "intercept": self.intercept, "method": self.method}

    @classmethod
    def from_json(cls, data: dict) -> Calibration:
        return cls(float(data["slope"]), float(data["intercept"]), str(data["method"]))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               bins: int = 10) -> float:
    """ECE over ``bins`` equal-width probability bins (see the module docstring).

    Example:
        >>> expected_calibration_error(np.array([0.9, 0.9, 0.1, 0.1]), np.array([1, 1, 0, 0]))
        0.1
    """
    p = np.asarray(probabilities, np.float64)
    y = np.asarray(labels, np.float64)
    which = np.minimum((p * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            error += mask.mean() * abs(y[mask].mean() - p[mask].mean())
    return round(float(error), 12)
