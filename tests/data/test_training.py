import json

import pytest

from ragsift.data.training import TrainingExample, read_training, write_training
from ragsift.errors import DataFormatError


def test_round_trip_both_layouts(tmp_path):
    examples = [
        TrainingExample("q1", pos=["p"], neg=["n1", "n2"], pos_scores=[0.9], neg_scores=[0.1, 0.2],
                        query_id="1", pos_ids=["d1"], neg_ids=["d2", "d3"]),
        TrainingExample("q2", docs=["a", "b"], scores=[1.0, 0.0]),
    ]
    assert write_training(examples, tmp_path / "t.jsonl") == 2
    assert list(read_training(tmp_path / "t.jsonl")) == examples


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"pos": ["p"]}, "query"),
        ({"query": "q", "neg": ["n"]}, "pos"),
        ({"query": "q", "pos": ["p", 3]}, "pos[1]"),
        ({"query": "q", "pos": ["p"], "pos_scores": [1.0, 2.0]}, "pos_scores"),
        ({"query": "q", "docs": ["a"]}, "scores"),
        ({"query": "q", "docs": ["a", "b"], "labels": [1]}, "labels"),
        ({"query": "q", "pos": []}, "pos"),
    ],
)
def test_bad_rows_are_located(tmp_path, row, field):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"query": "ok", "pos": ["p"]}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataFormatError) as info:
        list(read_training(path))
    assert (info.value.line, info.value.field) == (2, field)
