"""``Reranker.probability``: the one score -> probability mapping that ``score(...,
calibrated=True)``, the server and the teacher share, checked against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ragsift.errors import DataFormatError, UsageError
from ragsift.rerank.base import Reranker, detect_family
from ragsift.rerank.calibration import Calibration


def word_tokenizer(texts, **_):
    """A stand-in fast tokenizer for the window logic: one token per word."""
    return {"input_ids": [list(range(len(text.split()))) for text in texts]}


class TableReranker(Reranker):
    """Scores each passage with the number it holds ("-2" scores -2.0); 100 tokens fit."""

    @property
    def tokenizer(self):
        return word_tokenizer

    def passage_budget(self, query: str) -> int:
        return 100

    def score_fitted(self, pairs):
        return np.array([float(p) for _, p in pairs], np.float32)

    @classmethod
    def from_pretrained(cls, name, **options):
        raise NotImplementedError


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_without_calibration_the_probability_is_the_sigmoid_of_the_score():
    reranker = TableReranker()
    got = reranker.probability(np.array([-2.0, 0.0, 3.0], np.float32))
    # 1 / (1 + e^2), 1 / 2, 1 / (1 + e^-3)
    np.testing.assert_allclose(got, [0.11920292, 0.5, 0.95257413], atol=1e-7)
    assert got.dtype == np.float32


def test_with_a_calibration_the_probability_is_its_platt_curve():
    reranker = TableReranker(calibration=Calibration(2.0, -1.0, "platt"))
    scores = np.array([0.0, 0.5, 1.0], np.float32)
    expected = [sigmoid(2.0 * s - 1.0) for s in scores.tolist()]  # sigmoid(-1), 1/2, sigmoid(1)
    np.testing.assert_allclose(reranker.probability(scores), expected, atol=1e-7)
    np.testing.assert_allclose(expected, [0.26894142, 0.5, 0.73105858], atol=1e-7)


@pytest.mark.parametrize("calibration", [None, Calibration(0.5, 0.25, "platt")])
def test_calibrated_scores_are_the_probability_of_the_raw_scores(calibration):
    reranker = TableReranker(calibration=calibration)
    pairs = [("q", "-1.5"), ("q", "0.25"), ("q", "4")]
    raw = reranker.score(pairs)
    np.testing.assert_array_equal(raw, [-1.5, 0.25, 4.0])
    slope, intercept = (1.0, 0.0) if calibration is None else (0.5, 0.25)
    np.testing.assert_allclose(reranker.score(pairs, calibrated=True),
                               [sigmoid(slope * s + intercept) for s in raw.tolist()], atol=1e-7)
    hits = reranker.rank("q", ["-1.5", "0.25", "4"], threshold=sigmoid(slope * 0.25 + intercept))
    assert [h.index for h in hits] == [2, 1]


def test_bad_family_names_and_unknown_folders_are_ragsift_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown reranker family 'nope'"):
        Reranker.load(tmp_path, family="nope")
    (tmp_path / "config.json").write_text('{"architectures": ["MysteryModel"]}')
    with pytest.raises(DataFormatError, match="MysteryModel") as info:
        detect_family(tmp_path)
    assert info.value.path == str(tmp_path / "config.json")
    assert info.value.field == "architectures"
