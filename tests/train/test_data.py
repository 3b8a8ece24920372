"""Training items from BEIR folders and jsonl: negatives, sampling, contrastive keys."""

from __future__ import annotations

import shutil

import torch

from ragsift.data.training import TrainingExample
from ragsift.train.data import TrainingItems, examples_from_beir, load_examples, text_key
from ragsift.train.tasks.contrastive import contrastive_inputs
from tests.conftest import QRELS


def test_beir_positives_and_bm25_negatives(tiny_beir):
    shutil.copy(tiny_beir / "qrels" / "test.tsv", tiny_beir / "qrels" / "train.tsv")
    examples = {e.query_id: e for e in examples_from_beir(tiny_beir, "train", depth=5)}
    assert set(examples) == set(QRELS)
    for qid, example in examples.items():
        assert example.pos_ids == list(QRELS[qid])
        assert not set(example.neg_ids) & set(QRELS[qid])  # judged documents never negatives
    # "programming language readability": BM25 finds Rust's page, which is judged -> excluded
    assert "d6" not in examples["q2"].neg_ids
    from ragsift.data.beir import load_beir
    from ragsift.retrieve.bm25 import BM25Retriever

    data = load_beir(tiny_beir, "train")
    bm25 = BM25Retriever()
    bm25.index(data.corpus)
    run = bm25.search({"q3": data.queries["q3"]}, k=8)["q3"]
    expected = [d for d in sorted(run, key=lambda d: -run[d]) if d not in QRELS["q3"]]
    assert examples["q3"].neg_ids == expected[:5]


def test_items_sample_reproducibly_and_keep_teacher_scores(training_jsonl):
    examples = load_examples(training_jsonl)
    items = TrainingItems(examples, negatives=2, seed=7)
    assert len(items) == sum(len(e.pos) for e in examples)
    first = [items[i].negatives for i in range(len(items))]
    again = TrainingItems(examples, negatives=2, seed=7)
    assert first == [again[i].negatives for i in range(len(again))]
    other = TrainingItems(examples, negatives=2, seed=8)
    assert first != [other[i].negatives for i in range(len(other))]
    again.set_epoch(1)  # another epoch draws other negatives from the same pools
    second = [again[i].negatives for i in range(len(again))]
    assert second != first
    assert all(set(n) <= set(again.items[i][0].neg) for i, n in enumerate(second))
    scored = TrainingExample("q", docs=["a", "b", "c"], scores=[0.1, 0.9, 0.5])
    item = TrainingItems([scored], negatives=2)[0]
    assert item.positive == "b" and sorted(item.negatives) == ["a", "c"]
    assert item.scores[0] == 0.9 and sorted(item.scores[1:]) == [0.1, 0.5]


def test_contrastive_keys_mark_other_queries_positives():
    items = TrainingItems([TrainingExample("q1", pos=["x", "y"], neg=["n1"]),
                           TrainingExample("q2", pos=["z"], neg=["n2"])], negatives=1)
    batch = [items[0], items[1], items[2]]  # (q1, x), (q1, y), (q2, z)
    texts, keys = contrastive_inputs(batch)
    assert texts == ["x", "y", "z", "n1", "n1", "n2"]
    assert keys["doc_keys"].tolist() == [text_key(t) for t in texts]
    exclude = (keys["positive_keys"][:, :, None] == keys["doc_keys"][None, None, :]).any(1)
    # q1's row for target x must not treat y (its other positive) as a negative, and vice versa
    assert exclude[0].tolist() == [True, True, False, False, False, False]
    assert exclude[2].tolist() == [False, False, True, False, False, False]
    assert keys["positive_keys"].dtype == torch.long
