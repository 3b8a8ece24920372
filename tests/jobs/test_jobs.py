"""Sharded jobs (kill and resume), teacher labelling and hard-negative mining."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ragsift.data.beir import load_beir
from ragsift.data.training import read_training
from ragsift.errors import RagsiftError, UsageError
from ragsift.jobs.label import label_run
from ragsift.jobs.mine import FilterSettings, false_negative_reasons, mine_negatives
from ragsift.jobs.sharded import run_sharded, shards_dir
from ragsift.jobs.teacher import Teacher
from tests.conftest import QRELS


def test_a_killed_job_resumes_and_writes_the_same_bytes(tmp_path):
    keys = [f"k{i}" for i in range(10)]
    calls: list[list[str]] = []

    def work(shard):
        calls.append(shard)
        return [json.dumps({"key": k, "square": int(k[1:]) ** 2}) for k in shard]

    run_sharded(keys, work, tmp_path / "straight.jsonl", shard_size=3, show_progress=False)

    def dying(shard):
        if shard[0] == "k6":
            raise KeyboardInterrupt
        return work(shard)

    out = tmp_path / "resumed.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_sharded(keys, dying, out, shard_size=3, show_progress=False)
    assert not out.exists()  # nothing half-written
    assert sorted(p.name for p in shards_dir(out).glob("shard-*")) == ["shard-00000.jsonl",
                                                                      "shard-00001.jsonl"]
    calls.clear()
    result = run_sharded(keys, work, out, shard_size=3, show_progress=False)
    assert [c[0] for c in calls] == ["k6", "k9"]  # only the unfinished shards ran
    assert result.shards_skipped == 2 and result.lines == 10
    assert out.read_bytes() == (tmp_path / "straight.jsonl").read_bytes()
    assert not shards_dir(out).exists()


def test_shards_of_another_job_are_refused(tmp_path):
    out = tmp_path / "out.jsonl"
    shards_dir(out).mkdir()
    (shards_dir(out) / "job.json").write_text(json.dumps({"shard_size": 2, "items": 1,
                                                           "keys_sha256": "x"}))
    with pytest.raises(RagsiftError, match="different job"):
        run_sharded(["a"], lambda s: s, out, shard_size=2, show_progress=False)


@pytest.fixture
def train_beir(tiny_beir):
    shutil.copy(tiny_beir / "qrels" / "test.tsv", tiny_beir / "qrels" / "train.tsv")
    return load_beir(tiny_beir, "train")


def every_doc_run(data):
    return {q: {d: float(len(data.corpus) - i) for i, d in enumerate(data.corpus)}
            for q in data.queries}


def test_label_scores_equal_the_teachers_own(train_beir, tiny_cross_encoder, tmp_path):
    teacher = Teacher.load(tiny_cross_encoder, device="cpu")
    assert teacher.kind == "reranker"
    out = tmp_path / "labels.jsonl"
    label_run(train_beir, every_doc_run(train_beir), teacher, out, k=4, shard_size=2,
              show_progress=False)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["query_id"] for r in rows] == sorted(train_beir.queries)
    for row in rows:
        assert row["pos_ids"] == list(QRELS[row["query_id"]])
        assert not set(row["neg_ids"]) & set(row["pos_ids"])
        pairs = [(row["query"], t) for t in row["pos"] + row["neg"]]
        np.testing.assert_allclose(row["pos_scores"] + row["neg_scores"],
                                   teacher.score(pairs), atol=1e-5)
    examples = list(read_training(out))  # ragsift train reads the rows
    assert examples[0].pos_scores is not None


def test_bi_encoder_teacher_scores_are_cosines(train_beir, minilm_dir):
    teacher = Teacher.load(minilm_dir, device="cpu")
    assert teacher.kind == "bi-encoder"
    pairs = [("wolves", "Wolves hunt in packs."), ("wolves", "Python is a language.")]
    scores = teacher.score(pairs)
    q = teacher.model.encode_queries(["wolves"])[0]
    d = teacher.model.encode_documents([p for _, p in pairs])
    np.testing.assert_allclose(scores, d @ q, atol=1e-5)
    assert scores[0] > scores[1]


def test_bi_encoder_teacher_encodes_each_passage_once_per_call(minilm_dir):
    teacher = Teacher.load(minilm_dir, device="cpu")
    encoded: list[list[str]] = []
    encode_documents = teacher.model.encode_documents
    teacher.model.encode_documents = lambda texts: encoded.append(texts) or encode_documents(texts)
    pairs = [("cats", "Wolves hunt in packs."), ("wolves", "Cats nap."),
             ("wolves", "Wolves hunt in packs."), ("owls", "Owls fly at night.")]
    first = teacher.score(pairs[:2])
    second = teacher.score(pairs)
    assert encoded == [["Wolves hunt in packs.", "Cats nap."],
                       ["Wolves hunt in packs.", "Cats nap.", "Owls fly at night."]]
    # nothing carried over between calls: the same pairs always give the same scores
    again = Teacher(teacher.model, "bi-encoder").score(pairs)
    np.testing.assert_array_equal(again, second)
    assert teacher.score(pairs[:2]).tobytes() == first.tobytes()
    assert second[2] > second[0]  # "wolves" matches the wolf passage better than "cats" does


def test_filters_on_hand_made_scores():
    scores = np.array([0.95, 0.5, 0.86, 0.84])
    assert false_negative_reasons(0.9, scores, FilterSettings("percpos", percent=0.95)) == \
        ["percpos", None, "percpos", None]  # 0.95 * 0.9 = 0.855
    assert false_negative_reasons(0.9, scores, FilterSettings("margin", margin=0.05)) == \
        ["margin", None, "margin", None]  # 0.9 - 0.05 = 0.85
    assert false_negative_reasons(0.9, scores, FilterSettings("none", threshold=0.6)) == \
        ["threshold", None, "threshold", "threshold"]
    assert false_negative_reasons(0.9, scores, FilterSettings("none")) == [None] * 4


class TableTeacher(Teacher):
    """Scores from a table: (query, passage) -> score, for hand-made mining cases."""

    def __init__(self, table):
        super().__init__(None, "bi-encoder")
        self.table = table

    def _raw(self, pairs):
        return np.array([self.table.get(p, 0.1) for p in pairs], dtype=np.float32)


def test_mining_drops_false_negatives_and_counts_them(train_beir, tmp_path):
    from tests.conftest import DOCS, QUERIES

    def text(d):
        return f"{DOCS[d][0]} {DOCS[d][1]}".strip()

    # q1's positive d1 scores 0.8; d2 scores 0.79 (a probable false negative), d3 0.5
    table = {(QUERIES["q1"], text("d1")): 0.8, (QUERIES["q1"], text("d2")): 0.79,
             (QUERIES["q1"], text("d3")): 0.5}
    out = tmp_path / "mined.jsonl"
    _, totals = mine_negatives(train_beir, every_doc_run(train_beir), out, TableTeacher(table),
                               FilterSettings("percpos"), negatives=3, sampling="top",
                               show_progress=False)
    rows = {r["query_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["q1"]["neg_ids"] == ["d3", "d4", "d5"]  # d2 dropped, rank order kept
    assert rows["q1"]["filtered"] == {"percpos": 1}
    assert rows["q1"]["neg_scores"] == pytest.approx([0.5, 0.1, 0.1])
    # every other query's candidates score like its positive (0.1 > 0.95 * 0.1): all dropped,
    # 6 + 7 + 7 + 6 of them, so only q1 keeps negatives
    assert totals["percpos"] == 1 + 26 and totals["queries"] == 5
    assert totals["queries_without_negatives"] == 4
    for qid, row in rows.items():
        assert not set(row["neg_ids"]) & set(QRELS[qid])
    with pytest.raises(UsageError, match="the margin filter needs a teacher"):
        mine_negatives(train_beir, {}, tmp_path / "x.jsonl", None, FilterSettings("margin"))
    with pytest.raises(UsageError, match="a teacher-score threshold needs a teacher"):
        mine_negatives(train_beir, {}, tmp_path / "x.jsonl", None,
                       FilterSettings("none", threshold=0.5))


def test_mine_and_label_cli(tiny_beir, tiny_cross_encoder, tmp_path):
    from ragsift.cli.main import main
    from ragsift.data.trec import write_run

    shutil.copy(tiny_beir / "qrels" / "test.tsv", tiny_beir / "qrels" / "train.tsv")
    out = tmp_path / "mined.jsonl"
    assert main(["mine", "--data", str(tiny_beir), "--retriever", "bm25", "--negatives", "2",
                 "--sampling", "top", "--out", str(out)]) == 0
    examples = list(read_training(out))
    assert len(examples) == 5 and all(len(e.neg) <= 2 for e in examples)
    assert main(["mine", "--data", str(tiny_beir), "--retriever", "bm25", "--teacher",
                 str(tiny_cross_encoder), "--filter", "margin", "--out",
                 str(tmp_path / "filtered.jsonl")]) == 0
    data = load_beir(tiny_beir, "train")
    write_run(every_doc_run(data), tmp_path / "all.run")
    labels = tmp_path / "labels.jsonl"
    assert main(["label", "--data", str(tiny_beir), "--run", str(tmp_path / "all.run"),
                 "--teacher", str(tiny_cross_encoder), "--k", "3", "--out", str(labels)]) == 0
    first = labels.read_bytes()
    assert main(["label", "--data", str(tiny_beir), "--run", str(tmp_path / "all.run"),
                 "--teacher", str(tiny_cross_encoder), "--k", "3", "--out", str(labels)]) == 0
    assert labels.read_bytes() == first
    onnx_labels = tmp_path / "onnx-labels.jsonl"
    assert main(["label", "--data", str(tiny_beir), "--run", str(tmp_path / "all.run"),
                 "--teacher", str(tiny_cross_encoder), "--k", "3", "--teacher-backend", "onnx",
                 "--out", str(onnx_labels)]) == 0
    for torch_row, onnx_row in zip(read_training(labels), read_training(onnx_labels),
                                   strict=True):
        assert onnx_row.pos == torch_row.pos and onnx_row.neg == torch_row.neg
        assert onnx_row.pos_scores == pytest.approx(torch_row.pos_scores, abs=1e-4)
        assert onnx_row.neg_scores == pytest.approx(torch_row.neg_scores, abs=1e-4)


def test_teacher_backend_reaches_the_model(tiny_cross_encoder):
    from ragsift.cli.label import load_teacher
    from ragsift.cli.main import build_parser

    args = build_parser().parse_args(["label", "--data", "d", "--run", "r", "--out", "o",
                                      "--teacher", str(tiny_cross_encoder),
                                      "--teacher-backend", "onnx"])
    assert load_teacher(args).get().model.backend == "onnx"


def test_an_unreadable_job_record_is_a_ragsift_error(tmp_path):
    out = tmp_path / "out.jsonl"
    shards_dir(out).mkdir()
    (shards_dir(out) / "job.json").write_bytes(b"{\xff")
    with pytest.raises(RagsiftError, match="delete"):
        run_sharded(["a"], lambda s: s, out, shard_size=2, show_progress=False)
