import pytest

from ragsift.data.trec import read_any_qrels, read_qrels, read_run, write_qrels, write_run
from ragsift.errors import DataFormatError


def test_run_round_trip_orders_by_score(tmp_path):
    run = {"q2": {"a": 0.5, "b": 1.5}, "q1": {"c": 2.0}}
    write_run(run, tmp_path / "run.trec", tag="mine", k=None)
    lines = (tmp_path / "run.trec").read_text().splitlines()
    assert lines == ["q1 Q0 c 1 2 mine", "q2 Q0 b 1 1.5 mine", "q2 Q0 a 2 0.5 mine"]
    assert read_run(tmp_path / "run.trec") == run


def test_run_errors(tmp_path):
    path = tmp_path / "bad.trec"
    path.write_text("q1 Q0 d1 1 0.5 tag\nq1 Q0 d2 2 high tag\n")
    with pytest.raises(DataFormatError) as info:
        read_run(path)
    assert (info.value.line, info.value.field) == (2, "score")
    path.write_text("q1 Q0 d1 1 0.5\n")
    with pytest.raises(DataFormatError, match="6 columns"):
        read_run(path)
    path.write_text("q1 Q0 d1 1 0.5 t\nq1 Q0 d1 2 0.4 t\n")
    with pytest.raises(DataFormatError, match="appears twice"):
        read_run(path)


def test_qrels_round_trip_and_detection(tmp_path):
    qrels = {"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 2}}
    write_qrels(qrels, tmp_path / "qrels.txt")
    assert read_qrels(tmp_path / "qrels.txt") == qrels
    assert read_any_qrels(tmp_path / "qrels.txt") == qrels
    (tmp_path / "q.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\nq2\td3\t2\n")
    assert read_any_qrels(tmp_path / "q.tsv") == qrels


def test_write_run_rejects_bad_tag(tmp_path):
    with pytest.raises(ValueError):
        write_run({}, tmp_path / "r", tag="two words")
