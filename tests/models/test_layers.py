"""Choosing and cutting a student's layers (hand-computed index lists)."""

from __future__ import annotations

import pytest

from ragsift.errors import UsageError
from ragsift.models.layers import chosen_layers


@pytest.mark.parametrize(("total", "keep", "choice", "expected"), [
    (6, 2, "first", [0, 1]),
    (6, 2, "uniform", [2, 5]),
    (6, 3, "uniform", [1, 3, 5]),
    (12, 4, "uniform", [2, 5, 8, 11]),
    (6, 6, "uniform", [0, 1, 2, 3, 4, 5]),
    (6, 1, "uniform", [5]),
])
def test_chosen_layers(total, keep, choice, expected):
    assert chosen_layers(total, keep, choice) == expected


def test_chosen_layers_refuses_more_than_the_model_has():
    with pytest.raises(UsageError, match="has only 6"):
        chosen_layers(6, 7)
    with pytest.raises(UsageError, match="layers=0"):
        chosen_layers(6, 0)
