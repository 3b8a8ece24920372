"""Issue 27, data part: bad bytes, broken archives and garbage values are located errors.

Every case must raise :class:`DataFormatError` naming the file and the line (and the field
where there is one), never a bare UnicodeDecodeError, EOFError, zlib.error, RecursionError or
ValueError, and never be accepted silently.
"""

from __future__ import annotations

import gzip
import json

import pytest

from ragsift.data.beir import load_beir, load_corpus, load_qrels, load_queries
from ragsift.data.training import read_training
from ragsift.data.trec import read_any_qrels, read_qrels, read_run, write_qrels, write_run
from ragsift.errors import DataFormatError

CORPUS = b'{"_id": "d1", "text": "one"}\n{"_id": "d2", "text": "two"}\n'


def located(reader, path, line, field=None) -> DataFormatError:
    """Read ``path`` with ``reader``; the error must name the file, ``line`` and ``field``."""
    with pytest.raises(DataFormatError) as info:
        reader(path)
    error = info.value
    assert error.path == str(path) and str(path) in str(error)
    assert (error.line, error.field) == (line, field), str(error)
    return error


# ---- 6: invalid UTF-8 -------------------------------------------------------------------------
@pytest.mark.parametrize(("reader", "content", "line"), [
    (load_corpus, CORPUS + b'{"_id": "d3", "text": "caf\xe9"}\n', 3),
    (load_queries, b'{"_id": "q1", "text": "ok"}\n\xff\xfe\n', 2),
    (load_qrels, b"q1\td1\t1\nq\x802\td2\t1\n", 2),
    (read_run, b"q1 Q0 d1 1 0.5 t\nq1 Q0 d\xc32 2 0.4 t\n", 2),
    (read_qrels, b"q1 0 d1 1\n\xed\xa0\x80 0 d2 1\n", 2),  # an encoded surrogate
    (lambda p: list(read_training(p)), b'{"query": "q", "pos": ["\xa0"]}\n', 1),
])
def test_invalid_utf8_names_file_and_line(tmp_path, reader, content, line):
    path = tmp_path / "file.txt"
    path.write_bytes(content)
    assert "invalid UTF-8" in str(located(reader, path, line))


def test_gzip_bytes_without_the_suffix_get_a_hint(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(gzip.compress(CORPUS))
    assert ".gz suffix" in str(located(load_corpus, path, 1))


# ---- 7: broken .gz ----------------------------------------------------------------------------
def test_broken_gzip_files_name_the_file(tmp_path):
    path = tmp_path / "corpus.jsonl.gz"
    packed = gzip.compress(CORPUS * 200)
    path.write_bytes(b"plain text named .gz\n")
    assert "not a gzip file" in str(located(load_corpus, path, 1))
    path.write_bytes(packed[: len(packed) // 2])  # truncated
    error = located(load_corpus, path, _truncation_line(path))
    assert "truncated" in str(error)
    corrupt = bytearray(packed)
    corrupt[30:60] = b"\xff" * 30
    path.write_bytes(bytes(corrupt))
    with pytest.raises(DataFormatError, match=r"corpus\.jsonl\.gz, line \d+: corrupt \.gz"):
        load_corpus(path)


def _truncation_line(path):
    """The line a truncated gzip file breaks on: one after the last complete line."""
    with gzip.open(path, "rb") as handle:
        lines = 0
        try:
            for _ in handle:
                lines += 1
        except EOFError:
            pass
    return lines + 1


def test_a_gzipped_qrels_file_and_run_read_like_plain_ones(tmp_path):
    (tmp_path / "run.trec.gz").write_bytes(gzip.compress(b"q1 Q0 d1 1 0.5 t\n"))
    assert read_run(tmp_path / "run.trec.gz") == {"q1": {"d1": 0.5}}
    (tmp_path / "qrels.tsv.gz").write_bytes(gzip.compress(b"q1\td1\t1\n"))
    assert read_any_qrels(tmp_path / "qrels.tsv.gz") == {"q1": {"d1": 1}}


# ---- 8: deep nesting and huge numbers in JSON -------------------------------------------------
@pytest.mark.parametrize(("row", "field", "message"), [
    ('{"_id": "d3", "text": "x", "meta": ' + "[" * 100_000 + "]" * 100_000 + "}", "meta",
     "nested"),
    ('{"_id": "d3", "text": "x", "meta": ' + "[" * 70 + "]" * 70 + "}", "meta", "nested"),
    ('{"_id": ' + "7" * 5000 + ', "text": "x"}', "_id", "digits"),
    ('{"_id": "d3", "text": "x", "year": 1e999}', "year", "float range"),
    ('{"_id": "d3", "text": "x", "meta": {"score": NaN}}', "meta.score", "NaN"),
    ('{"_id": "d3", "text": "x", "w": [1, -Infinity]}', "w[1]", "Infinity"),
])
def test_json_values_out_of_range_name_the_field(tmp_path, row, field, message):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(CORPUS + row.encode() + b"\n")
    assert message in str(located(load_corpus, path, 3, field))


def test_moderate_nesting_and_big_integers_are_fine(tmp_path):
    path = tmp_path / "corpus.jsonl"
    row = {"_id": 12345678901234567890, "text": "x", "meta": [[[[{"a": [1]}]]]]}
    path.write_bytes(CORPUS + json.dumps(row).encode() + b"\n")
    assert load_corpus(path)["12345678901234567890"].metadata == {"meta": [[[[{"a": [1]}]]]]}


# ---- 9: TREC runs and qrels -------------------------------------------------------------------
@pytest.mark.parametrize(("score", "field"), [
    ("nan", "score"), ("NaN", "score"), ("inf", "score"), ("-Infinity", "score"),
    ("1_0", "score"), ("١٢", "score"), ("1e999", "score"), ("0x10", "score"),
])
def test_run_scores_must_be_finite_ascii_numbers(tmp_path, score, field):
    path = tmp_path / "run.trec"
    path.write_text(f"q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 {score} t\n", encoding="utf-8")
    located(read_run, path, 2, field)


def test_run_ranks_must_be_integers(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text("q1 Q0 d1 first 0.5 t\n")
    located(read_run, path, 1, "rank")


def test_a_bom_is_dropped_at_the_start_and_refused_inside(tmp_path):
    path = tmp_path / "run.trec"
    path.write_bytes("\ufeffq1 Q0 d1 1 0.5 t\n".encode())
    assert read_run(path) == {"q1": {"d1": 0.5}}  # not "\ufeffq1"
    path.write_bytes("q1 Q0 d1 1 0.5 t\n\ufeffq2 Q0 d1 1 0.5 t\n".encode())
    assert "invisible" in str(located(read_run, path, 2, "qid"))
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + CORPUS)
    assert list(load_corpus(path)) == ["d1", "d2"]


@pytest.mark.parametrize("rel", ["1_0", "١", "1.5", "nan", "1e0", "two", "", "99999999999999"])
def test_trec_qrels_refuse_non_integer_relevance(tmp_path, rel):
    path = tmp_path / "qrels.txt"
    path.write_text(f"q1 0 d1 1\nq1 0 d2 {rel} \n", encoding="utf-8")
    if not rel:
        located(read_qrels, path, 2)  # 3 columns
    else:
        located(read_qrels, path, 2, "relevance")


def test_integral_decimal_relevance_is_accepted_in_both_qrels_formats(tmp_path):
    (tmp_path / "q.txt").write_text("q1 0 d1 1.0\nq1 0 d2 0\nq1 0 d3 -1.00\n")
    (tmp_path / "q.tsv").write_text("q1\td1\t1.0\nq1\td2\t0\nq1\td3\t-1.00\n")
    expected = {"q1": {"d1": 1, "d2": 0, "d3": -1}}
    assert read_qrels(tmp_path / "q.txt") == load_qrels(tmp_path / "q.tsv") == expected
    (tmp_path / "q.tsv").write_text("q1\td1\t1.5\n")
    located(load_qrels, tmp_path / "q.tsv", 1, "score")


# ---- 10: BEIR qrels range and header ----------------------------------------------------------
def test_beir_relevance_is_bounded(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text("q1\td1\t99999999999999999999\n")
    assert "out of range" in str(located(load_qrels, path, 1, "score"))
    path.write_text(f"q1\td1\t{2**31}\n")
    located(load_qrels, path, 1, "score")
    path.write_text(f"q1\td1\t{2**31 - 1}\nq1\td2\t{-(2**31)}\n")
    assert load_qrels(path) == {"q1": {"d1": 2**31 - 1, "d2": -(2**31)}}


def test_only_a_real_header_line_is_skipped(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text("q1\td1\thigh\nq1\td2\t1\n")
    located(load_qrels, path, 1, "score")
    for header in ("query-id\tcorpus-id\tscore", "query_id\tdoc_id\trelevance",
                   "QUERY-ID corpus-id Score"):
        path.write_text(f"{header}\nq1\td2\t1\n")
        assert load_qrels(path) == {"q1": {"d2": 1}}
    path.write_text("q1\td2\t1\nquery-id\tcorpus-id\tscore\n")
    located(load_qrels, path, 2, "score")  # a header is only ever line 1


# ---- 11: ids with whitespace or control characters --------------------------------------------
@pytest.mark.parametrize("bad_id", ["d 3", "d\t3", "d\u00a03", "d\x003", "d\u200b3", "\ufeffd3",
                                    "", "d3\u2028"])
def test_corpus_and_query_ids_must_be_one_word(tmp_path, bad_id):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(CORPUS + json.dumps({"_id": bad_id, "text": "x"}).encode() + b"\n")
    located(load_corpus, path, 3, "_id")
    path = tmp_path / "queries.jsonl"
    path.write_bytes(json.dumps({"_id": bad_id, "text": "x"}).encode() + b"\n")
    located(load_queries, path, 1, "_id")


@pytest.mark.parametrize("bad_id", ["d\x003", "d\u200b3", "d\x7f"])
def test_tsv_and_run_ids_refuse_control_characters(tmp_path, bad_id):
    (tmp_path / "q.tsv").write_text(f"q1\t{bad_id}\t1\n", encoding="utf-8")
    located(load_qrels, tmp_path / "q.tsv", 1, "corpus-id")
    (tmp_path / "q.tsv").write_text("q 1\td1\t1\n")
    located(load_qrels, tmp_path / "q.tsv", 1, "query-id")
    (tmp_path / "run").write_text(f"q1 Q0 {bad_id} 1 1.0 t\n", encoding="utf-8")
    located(read_run, tmp_path / "run", 1, "docid")
    (tmp_path / "qrels").write_text(f"{bad_id} 0 d1 1\n", encoding="utf-8")
    located(read_qrels, tmp_path / "qrels", 1, "qid")


def test_writers_refuse_ids_that_would_break_lines(tmp_path):
    with pytest.raises(ValueError, match="whitespace"):
        write_run({"q1": {"d 1": 1.0}}, tmp_path / "run")
    with pytest.raises(ValueError, match="whitespace"):
        write_qrels({"q 1": {"d1": 1}}, tmp_path / "qrels")
    with pytest.raises(ValueError, match="finite"):
        write_run({"q1": {"d1": float("nan")}}, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_validate_and_search_see_the_same_ids(tiny_beir):
    with open(tiny_beir / "queries.jsonl", "a") as f:
        f.write(json.dumps({"_id": "q 6", "text": "spaces"}) + "\n")
    with pytest.raises(DataFormatError, match='queries.jsonl, line 6, field "_id"'):
        load_beir(tiny_beir)


# ---- 12: training rows ------------------------------------------------------------------------
@pytest.mark.parametrize(("row", "field", "message"), [
    ({"query": "q", "docs": [], "scores": []}, "docs", "at least one document"),
    ({"query": "q", "docs": ["a"], "scores": ["x"]}, "scores[0]", "expected a number"),
    ({"query": "q", "pos": ["a"], "neg": ["b"], "query_id": ["q1"]}, "query_id", "string id"),
    ({"query": "q", "pos": ["a"], "neg": ["b"], "query_id": {"id": 1}}, "query_id", "string id"),
    ({"query": "q", "pos": ["a"], "query_id": "q 1"}, "query_id", "whitespace"),
    ({"query": "q", "pos": ["a"], "pos_ids": ["d 1"]}, "pos_ids[0]", "whitespace"),
    ({"query": "q", "pos": ["a"], "pos_scores": [True]}, "pos_scores[0]", "expected a number"),
    ({"query": " ", "pos": ["a"]}, "query", "empty query"),
    ({"query": "q", "docs": ["a", "b"], "scores": [1, 0], "doc_ids": ["x"]}, "doc_ids", "has 1"),
    ({"query": "q", "pos": ["a"], "neg_scores": [1.0, 0.5]}, "neg_scores", "'neg' has 0"),
])
def test_bad_training_rows_are_located(tmp_path, row, field, message):
    path = tmp_path / "train.jsonl"
    good = {"query": "fine", "pos": ["p"], "neg": ["n"], "neg_scores": [0.5]}
    path.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    assert message in str(located(lambda p: list(read_training(p)), path, 2, field))


@pytest.mark.parametrize(("text", "field"), [
    ('{"query": "q", "pos": ["a"], "neg": ["b"], "neg_scores": [NaN]}', "neg_scores[0]"),
    ('{"query": "q", "pos": ["a"], "pos_scores": [Infinity]}', "pos_scores[0]"),
    ('{"query": "q", "docs": ["a"], "scores": [-Infinity]}', "scores[0]"),
    ('{"query": "q", "docs": ["a"], "labels": [1e400]}', "labels[0]"),
])
def test_non_finite_teacher_scores_are_refused(tmp_path, text, field):
    path = tmp_path / "train.jsonl"
    path.write_text(text + "\n")
    located(lambda p: list(read_training(p)), path, 1, field)


def test_valid_training_rows_still_read(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [{"query": "q", "pos": ["a"], "neg": ["b"], "pos_scores": [2], "neg_scores": [0.5],
             "query_id": 7, "pos_ids": ["d1"], "neg_ids": ["d2"]},
            {"query": "q", "docs": ["a", "b"], "scores": [1.0, 0], "doc_ids": ["d1", "d2"]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    first, second = read_training(path)
    assert first.query_id == "7" and first.pos_scores == [2.0] and first.neg_ids == ["d2"]
    assert second.docs == ["a", "b"] and second.scores == [1.0, 0.0]
