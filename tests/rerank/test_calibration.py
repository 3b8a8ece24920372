"""Platt and temperature scaling against scikit-learn; ECE by hand; better ECE after fitting."""

from __future__ import annotations

import numpy as np
import pytest

from ragsift.rerank.calibration import Calibration, expected_calibration_error


def synthetic(n: int, seed: int, slope: float = 2.0, intercept: float = -1.0):
    rng = np.random.default_rng(seed)
    scores = rng.normal(0.0, 2.0, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-(slope * scores + intercept)))).astype(int)
    return scores, labels


def test_platt_matches_unregularised_logistic_regression():
    linear_model = pytest.importorskip("sklearn.linear_model")
    scores, labels = synthetic(4000, 0)
    fitted = Calibration.fit(scores, labels, "platt")
    reference = linear_model.LogisticRegression(C=1e10, max_iter=1000).fit(scores[:, None], labels)
    assert fitted.slope == pytest.approx(reference.coef_[0, 0], rel=1e-3)
    assert fitted.intercept == pytest.approx(reference.intercept_[0], abs=1e-3)
    assert fitted.slope == pytest.approx(2.0, abs=0.2)


@pytest.mark.parametrize(("method", "slope", "intercept"),
                         [("platt", 2.0, -1.0), ("temperature", 3.0, 0.0)])
def test_calibration_lowers_ece_on_held_out_pairs(method, slope, intercept):
    # Platt fixes scale and bias; temperature scaling can only fix the scale.
    train_scores, train_labels = synthetic(3000, 1, slope, intercept)
    test_scores, test_labels = synthetic(3000, 2, slope, intercept)
    raw = 1 / (1 + np.exp(-test_scores))  # sigmoid of the raw score: miscalibrated
    before = expected_calibration_error(raw, test_labels)
    fitted = Calibration.fit(train_scores, train_labels, method)
    after = expected_calibration_error(fitted.apply(test_scores), test_labels)
    assert after < before / 2, (before, after)
    assert fitted.slope == pytest.approx(slope, rel=0.15)


def test_ece_by_hand_and_errors():
    p = np.array([0.05, 0.15, 0.95, 0.85])
    y = np.array([0, 1, 1, 1])
    # bins: [0,.1): p .05 y 0 -> |0-.05|; [.1,.2): .15 vs 1 -> .85; [.8,.9): .85 vs 1; [.9,1]: .95
    expected = (0.05 + 0.85 + 0.15 + 0.05) / 4
    assert expected_calibration_error(p, y) == pytest.approx(expected)
    with pytest.raises(ValueError, match="labels 0 and 1"):
        Calibration.fit(np.array([1.0, 2.0]), np.array([1, 1]))
    with pytest.raises(ValueError, match="method"):
        Calibration.fit(np.array([1.0, 2.0]), np.array([0, 1]), "isotonic")  # type: ignore
