import numpy as np
import pytest

from ragsift.errors import UsageError
from ragsift.models.batching import length_sorted_batches, pad_features


def test_batches_cover_every_index_once_and_respect_budget():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 300, size=500)
    batches = length_sorted_batches(lengths, batch_size=16, max_tokens=2000)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(500))
    for batch in batches:
        assert len(batch) <= 16
        assert len(batch) == 1 or len(batch) * lengths[batch].max() <= 2000
    assert [lengths[b].max() for b in batches] == sorted((lengths[b].max() for b in batches),
                                                         reverse=True)


def test_over_budget_item_gets_its_own_batch():
    batches = length_sorted_batches([5000, 3, 3], batch_size=8, max_tokens=100)
    assert [b.tolist() for b in batches] == [[0], [1, 2]]
    with pytest.raises(UsageError, match="batch_size must be >= 1, got 0"):
        length_sorted_batches([1], batch_size=0)


def test_pad_left_and_right():
    right = pad_features({"input_ids": [[1, 2, 3], [4]], "token_type_ids": [[0, 0, 1], [0]]}, 9)
    assert right["input_ids"].tolist() == [[1, 2, 3], [4, 9, 9]]
    assert right["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert right["token_type_ids"].tolist() == [[0, 0, 1], [0, 0, 0]]
    left = pad_features({"input_ids": [[1, 2, 3], [4]]}, 9, padding_side="left")
    assert left["input_ids"].tolist() == [[1, 2, 3], [9, 9, 4]]
    assert left["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
