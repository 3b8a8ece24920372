"""A tiny training jsonl built from the shared tiny BEIR documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsift.data.training import TrainingExample, write_training
from tests.conftest import DOCS, QRELS, QUERIES


def text(doc_id: str) -> str:
    title, body = DOCS[doc_id]
    return f"{title} {body}".strip()


@pytest.fixture
def training_jsonl(tmp_path: Path) -> Path:
    examples = []
    for qid, query in QUERIES.items():
        positives = list(QRELS[qid])
        negatives = [d for d in DOCS if d not in QRELS[qid]][:3]
        examples.append(TrainingExample(query, pos=[text(d) for d in positives],
                                        neg=[text(d) for d in negatives], query_id=qid,
                                        pos_ids=positives, neg_ids=negatives))
    path = tmp_path / "train.jsonl"
    write_training(examples, path)
    return path
