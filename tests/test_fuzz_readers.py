"""Seeded fuzzing of every reader: mutated inputs give ragsift errors or valid data, nothing else.

Each reader gets a valid file, mutated many ways, each from ``random.Random(seed)`` so a
failure names the seed and the mutation that reproduce it:

- blind byte mutations (flipped, dropped or inserted bytes, truncation, NUL, BOM, invalid
  UTF-8, ``\\r``, tabs), on the plain file and on its gzip-compressed copy;
- targeted mutations that are always malformed (NaN or huge numbers, wrong JSON types, deep
  nesting, ids with whitespace, fractional relevance, YAML aliases and duplicate keys): these
  must raise :class:`DataFormatError` naming the file.

Whatever a reader does accept must satisfy the format's invariants (valid ids, finite scores,
integer relevance in range, non-empty lists ...): nothing malformed is accepted silently
where that can be told. No exception but :class:`RagsiftError` subclasses may escape.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest

from ragsift.data.beir import load_corpus, load_qrels, load_queries
from ragsift.data.checks import RELEVANCE_MAX, RELEVANCE_MIN, id_problem
from ragsift.data.training import read_training
from ragsift.data.trec import read_qrels, read_run
from ragsift.errors import DataFormatError, RagsiftError
from ragsift.train.config import LIMITS, load_config

BLIND_SEEDS = range(300)

CORPUS = "".join(json.dumps(row) + "\n" for row in [
    {"_id": "d1", "title": "Cats", "text": "Cats sleep a lot.", "year": 2020},
    {"_id": "d2", "title": "", "text": "Dogs are loyal.", "tags": ["pets", "dogs"]},
    {"_id": 3, "text": "Python emphasises readability.", "meta": {"lang": "en", "n": 1.5}},
    {"_id": "d4", "title": "Wolves", "text": "Wolves hunt in packs."},
])
QUERIES = "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in
                  [("q1", "which animals sleep"), ("q2", "readable language"),
                   ("q3", "pack hunters")])
BEIR_QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\t3\t2\nq3\td4\t1\nq3\td2\t0\n"
RUN = "".join(f"q{q} Q0 d{d} {r} {1.0 / r:.4f} tag\n" for q in (1, 2, 3)
              for r, d in enumerate((4, 1, 3, 2), start=1))
TREC_QRELS = "q1 0 d1 1\nq2 0 d3 2\nq3 0 d4 1\nq3 0 d2 0\n"
TRAINING = "".join(json.dumps(row) + "\n" for row in [
    {"query": "q one", "pos": ["p"], "neg": ["n1", "n2"], "pos_scores": [3.5],
     "neg_scores": [1.0, -0.5], "query_id": "q1", "pos_ids": ["d1"], "neg_ids": ["d2", "d3"]},
    {"query": "q two", "docs": ["a", "b"], "scores": [0.9, 0.1], "doc_ids": ["d1", "d2"]},
    {"query": "q three", "pos": ["p"], "neg": []},
])
CONFIG = ("model: minilm-l6\ndata: data/train.jsonl\nout: models/x\nlearning_rate: 3.0e-5\n"
          "batch_size: 16\nmatryoshka_dims: [384, 128]\nsymmetric: true\npooling: mean\n"
          "temperature: 0.05\nwarmup_ratio: 0.1\n")


# ---- what an accepted result must satisfy -----------------------------------------------------
def valid_id(value: Any) -> bool:
    return isinstance(value, str) and id_problem(value) is None


def finite(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def check_corpus(result: dict) -> None:
    for doc_id, doc in result.items():
        assert valid_id(doc_id) and doc.id == doc_id
        assert isinstance(doc.text, str) and isinstance(doc.title, str)
        json.dumps(doc.metadata, allow_nan=False)  # no NaN/Infinity smuggled in


def check_queries(result: dict) -> None:
    assert all(valid_id(q) and isinstance(t, str) for q, t in result.items())


def check_qrels(result: dict) -> None:
    for qid, docs in result.items():
        assert valid_id(qid)
        for doc_id, rel in docs.items():
            assert valid_id(doc_id)
            assert type(rel) is int and RELEVANCE_MIN <= rel <= RELEVANCE_MAX


def check_run(result: dict) -> None:
    for qid, docs in result.items():
        assert valid_id(qid)
        assert all(valid_id(d) and finite(s) for d, s in docs.items())


def check_training(result: list) -> None:
    for example in result:
        assert isinstance(example.query, str) and example.query.strip()
        assert example.query_id is None or valid_id(example.query_id)
        if example.docs is not None:
            assert example.docs and len(example.scores) == len(example.docs)
            assert all(isinstance(d, str) for d in example.docs)
            assert all(finite(s) for s in example.scores)
            continue
        assert example.pos and all(isinstance(p, str) for p in example.pos + example.neg)
        for texts, scores in ((example.pos, example.pos_scores), (example.neg,
                                                                  example.neg_scores)):
            assert scores is None or (len(scores) == len(texts)
                                      and all(finite(s) for s in scores))
        for texts, ids in ((example.pos, example.pos_ids), (example.neg, example.neg_ids)):
            assert ids is None or (len(ids) == len(texts) and all(valid_id(i) for i in ids))


def check_config(config: Any) -> None:
    for item in fields(config):
        value = getattr(config, item.name)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if v is None:  # an Optional key left unset
                assert type(None) in get_args(get_type_hints(type(config))[item.name]), item.name
                continue
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                assert math.isfinite(v)
                limit = LIMITS.get(item.name)
                assert limit is None or limit.problem(v) is None, (item.name, v)


@dataclass(frozen=True)
class Reader:
    """A reader under test: its file name, a valid file, how to read it, what must hold."""

    name: str
    file: str
    valid: str
    read: Callable[[Path], Any]
    check: Callable[[Any], None]


READERS = [
    Reader("corpus", "corpus.jsonl", CORPUS, load_corpus, check_corpus),
    Reader("queries", "queries.jsonl", QUERIES, load_queries, check_queries),
    Reader("beir-qrels", "test.tsv", BEIR_QRELS, load_qrels, check_qrels),
    Reader("trec-run", "run.trec", RUN, read_run, check_run),
    Reader("trec-qrels", "qrels.txt", TREC_QRELS, read_qrels, check_qrels),
    Reader("training", "train.jsonl", TRAINING, lambda p: list(read_training(p)),
           check_training),
    Reader("config", "cfg.yaml", CONFIG, lambda p: load_config("embedding", p), check_config),
]
BY_NAME = {r.name: r for r in READERS}


def outcome(reader: Reader, path: Path, data: bytes, what: str) -> DataFormatError | None:
    """Read ``data`` from ``path``; return the DataFormatError (which must name ``path``), or
    None after checking the accepted result. Anything else fails the test, saying ``what``."""
    path.write_bytes(data)
    try:
        result = reader.read(path)
    except DataFormatError as error:
        assert error.path == str(path) and str(path) in str(error), f"{what}: {error}"
        return error
    except RagsiftError:
        return None
    except Exception as exc:  # noqa: BLE001 - the point: nothing else may escape
        pytest.fail(f"{reader.name}, {what}: {type(exc).__name__} escaped: {exc!r}"[:2000])
    try:
        reader.check(result)
    except AssertionError as exc:
        pytest.fail(f"{reader.name}, {what}: malformed input accepted: {exc}"[:2000])
    return None


# ---- blind byte mutations ---------------------------------------------------------------------
INSERTS = [b"\x00", b"\xef\xbb\xbf", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe2\x80\x8b",
           b"\r", b"\t", b" ", b"\n", b'"', b"{", b"]", b"\\", b"NaN", b"1e999", b"-", b"."]


def mutate_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """``data`` with 1-3 random byte-level changes; returns the bytes and a description."""
    steps = []
    for _ in range(rng.randint(1, 3)):
        if not data:
            break
        at = rng.randrange(len(data))
        kind = rng.choice(("flip", "drop", "insert", "insert", "truncate", "random"))
        if kind == "flip":
            data = data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1:]
        elif kind == "drop":
            data = data[:at] + data[at + rng.randint(1, 4):]
        elif kind == "insert":
            data = data[:at] + rng.choice(INSERTS) + data[at:]
        elif kind == "truncate":
            data = data[:at]
        else:
            data = data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 6))) \
                + data[at:]
        steps.append(f"{kind}@{at}")
    return data, "+".join(steps)


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r.name)
def test_blind_byte_mutations(reader, tmp_path):
    path = tmp_path / reader.file
    assert outcome(reader, path, reader.valid.encode(), "the valid file") is None
    refused = 0
    for seed in BLIND_SEEDS:
        data, what = mutate_bytes(reader.valid.encode(), random.Random(seed))
        refused += outcome(reader, path, data, f"seed {seed} ({what})") is not None
    assert refused > len(BLIND_SEEDS) // 4  # the mutations do reach the checks


@pytest.mark.parametrize("reader", [r for r in READERS if r.name != "config"],
                         ids=lambda r: r.name)
def test_blind_mutations_of_gzip_files(reader, tmp_path):
    path = tmp_path / (reader.file + ".gz")
    packed = gzip.compress(reader.valid.encode(), mtime=0)
    assert outcome(reader, path, packed, "the valid .gz file") is None
    for seed in range(100):
        data, what = mutate_bytes(packed, random.Random(seed))
        outcome(reader, path, data, f"gzip seed {seed} ({what})")
    error = outcome(reader, path, reader.valid.encode(), "plain text named .gz")
    assert error is not None and "not a gzip file" in str(error)


# ---- targeted mutations: always malformed -----------------------------------------------------
BAD_JSON_VALUES = ["NaN", "Infinity", "-Infinity", "1e999", "7" * 5000,
                   "[" * 3000 + "]" * 3000, '{"a": ' * 100 + "1" + "}" * 100]
BAD_IDS = ['"d 1"', '"d\\t1"', '"\\u00a0"', '"d\\u0000"', '"\\ufeffd1"', '"d\\u200b"', '""',
           "true", "null", "1.5", '["d1"]', '{"id": 1}']


def jsonl_cases(rng: random.Random, text: str, id_key: str,
                optional_id: bool = False) -> list[tuple[str, str]]:
    """(description, file text) pairs, each with one always-malformed JSON value (``null``
    is a fine value of an optional id)."""
    lines = text.splitlines()
    cases = []
    for value in BAD_JSON_VALUES:
        at = rng.randrange(len(lines))
        row = json.loads(lines[at])
        key = rng.choice(sorted(row))
        placeholder = json.dumps("@@BAD@@")
        row[key] = "@@BAD@@"
        changed = json.dumps(row).replace(placeholder, value)
        cases.append((f"line {at + 1} {key}={value[:12]}", _replace(lines, at, changed)))
    for value in BAD_IDS:
        if optional_id and value == "null":
            continue
        at = rng.randrange(len(lines))
        row = json.loads(lines[at])
        placeholder = json.dumps("@@BAD@@")
        row[id_key] = "@@BAD@@"
        changed = json.dumps(row).replace(placeholder, value)
        cases.append((f"line {at + 1} {id_key}={value}", _replace(lines, at, changed)))
    return cases


def _replace(lines: list[str], at: int, line: str) -> str:
    return "\n".join(lines[:at] + [line] + lines[at + 1:]) + "\n"


def column_cases(rng: random.Random, text: str, sep: str, id_columns: list[int],
                 number_column: int, bad_numbers: list[str]) -> list[tuple[str, str]]:
    """(description, file text) pairs with one bad id or number in a column file."""
    lines = text.splitlines()
    first = 1 if lines[0].startswith("query-id") else 0
    cases = []
    for value in bad_numbers:
        at = rng.randrange(first, len(lines))
        parts = lines[at].split(sep)
        parts[number_column] = value
        cases.append((f"line {at + 1} number={value}", _replace(lines, at, sep.join(parts))))
    bad_ids = ["d\x00", "\ufeffd", "d\u200b", "d\x7f", "d\u2028x"]
    if sep == "\t":
        bad_ids += ["d 1", "d\u00a01"]
    for value in bad_ids if id_columns else []:
        at = rng.randrange(first, len(lines))
        parts = lines[at].split(sep)
        parts[rng.choice(id_columns)] = value
        cases.append((f"line {at + 1} id={value!r}", _replace(lines, at, sep.join(parts))))
    return cases


BAD_RELEVANCE = ["1.5", "1_0", "\u0661", "nan", "inf", "1e0", "99999999999999999999",
                 "2147483648", "high", "0x1", "+-1"]
BAD_SCORES = ["nan", "NaN", "inf", "-inf", "Infinity", "1_0", "\u0661\u0662", "1e999", "0x10",
              "1,5", "--1", "1e", "."]

TRAINING_BAD_ROWS = [
    {"query": "q", "docs": [], "scores": []},
    {"query": "q", "docs": ["a"], "scores": []},
    {"query": "q", "docs": ["a"]},
    {"query": "q", "pos": []},
    {"query": "q", "pos": "p"},
    {"query": "q", "pos": ["p"], "neg": ["n"], "neg_scores": [1, 2]},
    {"query": "q", "pos": ["p"], "neg": ["n"], "neg_scores": ["1"]},
    {"query": "q", "pos": ["p"], "query_id": ["q1"]},
    {"query": "q", "pos": ["p"], "query_id": {"id": "q1"}},
    {"query": "q", "pos": ["p"], "query_id": 1.5},
    {"query": "q", "pos": ["p"], "pos_ids": ["d 1"]},
    {"query": "", "pos": ["p"]},
    {"query": None, "pos": ["p"]},
    {"query": ["q"], "pos": ["p"]},
    {"query": "q", "docs": ["a", None], "scores": [1, 2]},
    {"query": "q", "docs": ["a"], "scores": [True]},
]

CONFIG_BAD_LINES = [
    "batch_size: true", "batch_size: -8", "batch_size: 2.5", "batch_size: null",
    "batch_size: 99999999999999999999", "batch_size: " + "9" * 5000, "learning_rate: .nan",
    "learning_rate: -1", "learning_rate: .inf", "learning_rate: '3e-5'",
    "matryoshka_dims: [1.5, 2.7]", "matryoshka_dims: 384", "matryoshka_dims: [0]",
    "data: null", "data: {name: x}", "data: [a]", "data: 12", "model: x\nmodel: y",
    "symmetric: 1", "symmetric: 'yes'", "pooling: median", "warmup_ratio: 2",
    "a: &x 1", "query_prompt: *x", "query_prompt: !!python/name:os.system",
    "query_prompt: !!binary aGk=", "unknown_key: 1", "[a, b]: 1", "matryoshka_dims: "
    + "[" * 5000 + "]" * 5000, "seed: -1", "seed: 1e3", "temperature: 0",
]


def targeted_cases(reader: Reader, rng: random.Random) -> list[tuple[str, str]]:
    """Always-malformed variants of ``reader``'s valid file."""
    if reader.name in ("corpus", "queries"):
        return jsonl_cases(rng, reader.valid, "_id")
    if reader.name == "beir-qrels":
        return column_cases(rng, reader.valid, "\t", [0, 1], 2, BAD_RELEVANCE)
    if reader.name == "trec-qrels":
        return column_cases(rng, reader.valid, " ", [0, 2], 3, BAD_RELEVANCE)
    if reader.name == "trec-run":
        return (column_cases(rng, reader.valid, " ", [0, 2], 4, BAD_SCORES)
                + column_cases(rng, reader.valid, " ", [], 3, ["-1", "1.0", "x", "9" * 40]))
    if reader.name == "training":
        lines = reader.valid.splitlines()
        cases = [(f"row {row}", _replace(lines, rng.randrange(len(lines)), json.dumps(row)))
                 for row in TRAINING_BAD_ROWS]
        return cases + jsonl_cases(rng, reader.valid, "query_id", optional_id=True)
    return [(line[:40], reader.valid + line + "\n") for line in CONFIG_BAD_LINES]


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r.name)
@pytest.mark.parametrize("seed", [0, 1])
def test_targeted_mutations_are_refused(reader, seed, tmp_path):
    path = tmp_path / reader.file
    for what, text in targeted_cases(reader, random.Random(seed)):
        error = outcome(reader, path, text.encode("utf-8"), f"seed {seed} ({what!r})")
        assert error is not None, f"{reader.name}: accepted malformed input {what!r}"


@pytest.mark.parametrize("reader", [r for r in READERS if r.name != "config"],
                         ids=lambda r: r.name)
def test_utf8_bom_and_crlf_files_read_like_plain_ones(reader, tmp_path):
    path = tmp_path / reader.file
    plain = reader.read(_written(path, reader.valid.encode()))
    windows = b"\xef\xbb\xbf" + reader.valid.replace("\n", "\r\n").encode()
    assert reader.read(_written(path, windows)) == plain


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ---- index manifests --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bm25_index(tmp_path_factory) -> Path:
    from ragsift.retrieve import BM25Retriever
    from ragsift.types import Document

    retriever = BM25Retriever(show_progress=False)
    retriever.index({d: Document(d, t) for d, t in
                     [("d1", "cats sleep"), ("d2", "dogs bark"), ("d3", "wolves hunt")]})
    return retriever.save(tmp_path_factory.mktemp("index") / "bm25")


MANIFEST_VALUES = [None, True, -1, 0, 1.5, "x", "", [], {}, [1], {"a": 1}, "../model",
                   "/etc", "~/model", "a/b/c", "dense", "hybrid", 10**30, "\u0000"]


def mutate_manifest(manifest: dict, rng: random.Random) -> tuple[dict, str]:
    """``manifest`` with one key removed or set to a random value (config settings too)."""
    manifest = json.loads(json.dumps(manifest))
    target = manifest if rng.random() < 0.6 or not manifest["config"] else manifest["config"]
    key = rng.choice(sorted(target) + ["extra"])
    if rng.random() < 0.2 and key in target:
        del target[key]
        return manifest, f"del {key}"
    target[key] = rng.choice(MANIFEST_VALUES)
    return manifest, f"{key}={target[key]!r}"


def test_crafted_manifests_give_ragsift_errors(bm25_index, tmp_path):
    import shutil

    from ragsift.retrieve import Retriever

    original = json.loads((bm25_index / "manifest.json").read_text())
    for seed in range(100):
        manifest, what = mutate_manifest(original, random.Random(seed))
        folder = tmp_path / f"case-{seed}"
        shutil.copytree(bm25_index, folder)
        (folder / "manifest.json").write_text(json.dumps(manifest))
        try:
            Retriever.load(folder).search({"q": "wolves"}, k=2)
        except RagsiftError:
            pass
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"manifest seed {seed} ({what}): {type(exc).__name__}: {exc}")
        shutil.rmtree(folder)


@pytest.mark.parametrize("content", ["", "{", "[]", "null", '{"format_version": 1}',
                                     "\xff", "[" * 100000, '{"format_version": "1"}'])
def test_broken_manifest_files(bm25_index, tmp_path, content):
    import shutil

    from ragsift.retrieve import Retriever

    folder = tmp_path / "idx"
    shutil.copytree(bm25_index, folder)
    (folder / "manifest.json").write_bytes(content.encode("latin-1"))
    with pytest.raises(RagsiftError):
        Retriever.load(folder)


@pytest.mark.parametrize("name", ["doc_ids.json", "bm25s"])
def test_symlinks_inside_an_index_are_refused(bm25_index, tmp_path, name):
    import shutil

    from ragsift.errors import IndexMismatchError
    from ragsift.retrieve import Retriever

    folder = tmp_path / "idx"
    shutil.copytree(bm25_index, folder)
    real = tmp_path / f"elsewhere-{name}"
    (folder / name).rename(real)
    (folder / name).symlink_to(real)
    with pytest.raises(IndexMismatchError, match="symbolic link"):
        Retriever.load(folder)


@pytest.mark.parametrize("content", ['["d1", "d2"]', '["d1", "d1", "d2"]', '[1, 2, 3]', "{}",
                                     "[", '"d1 d2 d3"'])
def test_corrupt_index_files_name_the_index(bm25_index, tmp_path, content):
    import shutil

    from ragsift.retrieve import Retriever

    folder = tmp_path / "idx"
    shutil.copytree(bm25_index, folder)
    (folder / "doc_ids.json").write_text(content)
    try:
        Retriever.load(folder).search({"q": "wolves hunt"}, k=3)
    except RagsiftError as error:
        assert str(folder) in str(error)
    else:
        pytest.fail(f"doc_ids.json {content!r} accepted")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("config", [], "expected dict"), ("num_documents", "3", "expected int"),
    ("retriever", None, "expected str"), ("model", 5, "expected str or null"),
    ("num_documents", -1, "must be >= 0"), ("num_documents", True, "expected int"),
])
def test_manifest_types_are_checked_by_key(bm25_index, tmp_path, key, value, message):
    import shutil

    from ragsift.retrieve import Retriever

    folder = tmp_path / "idx"
    shutil.copytree(bm25_index, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, key: value}))
    with pytest.raises(DataFormatError) as info:
        Retriever.load(folder)
    assert info.value.path == str(folder / "manifest.json") and info.value.field == key
    assert message in str(info.value)


def test_manifest_models_outside_the_index_are_not_loaded(bm25_index, tmp_path, monkeypatch):
    import shutil

    from ragsift.errors import IndexMismatchError
    from ragsift.retrieve import Retriever

    folder = tmp_path / "idx"
    shutil.copytree(bm25_index, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "org" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    for model in (str(tmp_path / "elsewhere"), "../elsewhere", "./elsewhere", "~/x",
                  "elsewhere", "org/name"):  # the last two: hub-like names shadowed by the cwd
        (folder / "manifest.json").write_text(json.dumps({**manifest, "model": model}))
        with pytest.raises(IndexMismatchError, match="outside the index folder"):
            Retriever.load(folder)
        assert Retriever.load(folder, trust_model_paths=True).num_documents == 3
    for model in ("sentence-transformers/all-MiniLM-L6-v2", "minilm-l6", "org/other", None):
        (folder / "manifest.json").write_text(json.dumps({**manifest, "model": model}))
        assert Retriever.load(folder).num_documents == 3  # hub ids and packaged names
