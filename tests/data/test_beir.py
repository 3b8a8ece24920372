import gzip
import json
import shutil

import pytest

from ragsift.data.beir import iter_corpus, load_beir, load_qrels, load_queries
from ragsift.errors import DataFormatError
from tests.conftest import DOCS, QRELS, QUERIES, write_beir


def test_load_beir_reads_everything(tiny_beir):
    data = load_beir(tiny_beir, "test")
    assert set(data.corpus) == set(DOCS)
    assert data.corpus["d1"].title == "Cats" and data.corpus["d5"].title == ""
    assert data.queries == QUERIES
    assert data.qrels == QRELS


def test_qrels_with_and_without_header_are_equal(tmp_path):
    with_header = load_qrels(write_beir(tmp_path / "a", header=True) / "qrels" / "test.tsv")
    without = load_qrels(write_beir(tmp_path / "b", header=False) / "qrels" / "test.tsv")
    assert with_header == without == QRELS


def test_only_judged_queries_are_kept(tmp_path):
    queries = dict(QUERIES, q9="an unjudged query")
    data = load_beir(write_beir(tmp_path / "x", queries=queries), "test")
    assert "q9" not in data.queries


def test_gzipped_corpus_streams(tiny_beir):
    raw = (tiny_beir / "corpus.jsonl").read_bytes()
    (tiny_beir / "corpus.jsonl").unlink()
    with gzip.open(tiny_beir / "corpus.jsonl.gz", "wb") as f:
        f.write(raw)
    assert [d.id for d in iter_corpus(tiny_beir)] == list(DOCS)


def _corpus_line(folder, line_no, text):
    lines = (folder / "corpus.jsonl").read_text().splitlines()
    lines[line_no - 1] = text
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("bad_line", "field", "message"),
    [
        ('{"_id": "d3", "title": "x"', None, "invalid JSON"),
        ('{"title": "x", "text": "y"}', "_id", "missing field"),
        ('{"_id": "d3", "title": "x"}', "text", "missing field"),
        ('{"_id": "d1", "text": "again"}', "_id", "duplicate document id"),
        ('{"_id": "d3", "text": 5}', "text", "expected a string"),
        ('["not", "an", "object"]', None, "expected a JSON object"),
    ],
)
def test_corpus_errors_name_file_line_field(tiny_beir, bad_line, field, message):
    _corpus_line(tiny_beir, 3, bad_line)
    with pytest.raises(DataFormatError) as info:
        load_beir(tiny_beir)
    err = info.value
    assert err.path.endswith("corpus.jsonl") and err.line == 3 and err.field == field
    assert message in str(err) and "line 3" in str(err)


def test_qrels_doc_absent_from_corpus_is_located(tiny_beir):
    with open(tiny_beir / "qrels" / "test.tsv", "a") as f:
        f.write("q1\tmissing-doc\t1\n")
    with pytest.raises(DataFormatError) as info:
        load_beir(tiny_beir)
    assert info.value.field == "corpus-id" and "missing-doc" in str(info.value)
    total = len((tiny_beir / "qrels" / "test.tsv").read_text().splitlines())
    assert info.value.line == total


def test_qrels_query_absent_from_queries(tiny_beir):
    with open(tiny_beir / "qrels" / "test.tsv", "a") as f:
        f.write("q-unknown\td1\t1\n")
    with pytest.raises(DataFormatError, match="q-unknown"):
        load_beir(tiny_beir)


@pytest.mark.parametrize(("row", "field"), [("q1\td2\tgood", "score"), ("q1\td2", None),
                                             ("q1\td1\t1", "corpus-id")])
def test_qrels_row_errors(tiny_beir, row, field):
    with open(tiny_beir / "qrels" / "test.tsv", "a") as f:
        f.write(row + "\n")
    with pytest.raises(DataFormatError) as info:
        load_qrels(tiny_beir / "qrels" / "test.tsv")
    assert info.value.field == field and info.value.line is not None


def test_duplicate_query_id(tiny_beir):
    with open(tiny_beir / "queries.jsonl", "a") as f:
        f.write(json.dumps({"_id": "q1", "text": "again"}) + "\n")
    with pytest.raises(DataFormatError, match="duplicate query id"):
        load_queries(tiny_beir)


def test_missing_split_lists_available(tiny_beir):
    with pytest.raises(FileNotFoundError, match="splits in .*: test"):
        load_beir(tiny_beir, "dev")


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_beir(tmp_path / "nope")
    shutil.rmtree(tmp_path)
