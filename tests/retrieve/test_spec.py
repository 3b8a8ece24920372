"""The table of retriever kinds (retrieve/spec.py): parser, builder and CLI help read one table, and
a new kind is one module plus one row (the worked example of docs/architecture.md)."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import ragsift.retrieve as retrieve_package
from ragsift.cli.options import retriever_help
from ragsift.errors import UsageError
from ragsift.retrieve import base as retrieve_base
from ragsift.retrieve.bm25 import BM25Retriever
from ragsift.retrieve.hybrid import HybridRetriever
from ragsift.retrieve.spec import (
    KINDS,
    RetrieverKind,
    RetrieverSpec,
    RetrieverSpecError,
    build_retriever,
    parse_spec,
    spec_forms,
)
from ragsift.types import Document

REPO = Path(__file__).resolve().parents[2]


def test_every_row_builds_its_own_kind_and_every_exported_kind_has_a_row():
    for name, row in KINDS.items():
        assert row.retriever_class().kind == name
    exported = {cls.kind for cls in vars(retrieve_package).values()
                if isinstance(cls, type) and issubclass(cls, retrieve_base.Retriever) and cls.kind}
    assert exported - {"hybrid"} == set(KINDS)


def test_a_row_whose_class_disagrees_is_a_programming_error():
    row = RetrieverKind("lexical", "ragsift.retrieve.bm25:BM25Retriever", "wrong kind")
    with pytest.raises(TypeError, match="kind = 'lexical'"):
        row.retriever_class()


def test_parse_accepts_every_form_of_the_table():
    assert parse_spec("bm25") == RetrieverSpec("bm25")
    assert parse_spec("bm25:bm25l") == RetrieverSpec("bm25", "bm25l")
    for name in ("dense", "colbert", "splade"):
        assert parse_spec(f" {name}:some/model ") == RetrieverSpec(name, "some/model")
        assert parse_spec(f"{name}:m").model == "m"
    assert parse_spec("bm25:atire").model is None
    hybrid = parse_spec("hybrid:bm25+dense:a+splade:b")
    assert hybrid.model is None
    assert [(m.kind, m.argument) for m in hybrid.members] == [
        ("bm25", None), ("dense", "a"), ("splade", "b")]


@pytest.mark.parametrize(("spec", "message"), [
    ("bm24", "accepted: bm25, bm25:METHOD, dense:MODEL"),
    ("dense", "dense needs a model, as dense:MODEL"),
    ("bm25:okapi", "bm25 METHOD must be one of"),
    ("hybrid:bm25", "hybrid needs two or more parts"),
    ("hybrid:bm25+hybrid:x", "hybrids do not nest"),
    ("hybrid:bm25+dense", "dense needs a model"),
])
def test_bad_specs_are_usage_errors_naming_the_forms(spec, message):
    with pytest.raises(RetrieverSpecError, match=re.escape(message)) as caught:
        parse_spec(spec)
    assert isinstance(caught.value, UsageError)


def test_builder_routes_per_kind_options_and_the_spec_argument():
    built = build_retriever("bm25:bm25l", bm25_options={"method": "atire", "k1": 1.2})
    assert isinstance(built, BM25Retriever) and (built.method, built.k1) == ("bm25l", 1.2)
    assert build_retriever("bm25", bm25_options={"b": 0.5}).b == 0.5
    hybrid = build_retriever("hybrid:bm25+bm25:robertson", fusion="convex", depth=7,
                             bm25_options={"k1": 0.9})
    assert isinstance(hybrid, HybridRetriever) and hybrid.depth == 7
    assert [(m.method, m.k1) for m in hybrid.retrievers] == [("lucene", 0.9), ("robertson", 0.9)]
    with pytest.raises(TypeError, match="unknown keyword"):
        build_retriever("bm25", bm26_options={})


def test_cli_help_lists_every_form_and_kind():
    text = retriever_help()
    assert text.startswith(" | ".join(spec_forms()))
    for name, row in KINDS.items():
        assert f"{name}: {row.summary}" in text


def test_docs_table_lists_exactly_the_kinds():
    docs = (REPO / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| `([\w.:]+)` \|", docs, flags=re.MULTILINE)
    assert dict(rows) == {name: row.target for name, row in KINDS.items()}


class OverlapRetriever(retrieve_base.Retriever):
    """The worked example of docs/architecture.md: score = |query words & document words| /
    |query words| (lowercased, split on white space); documents scoring 0 are not returned."""

    kind = "overlap"

    def __init__(self, lower: bool = True) -> None:
        self.lower = lower
        self.words: dict[str, set[str]] = {}

    def _split(self, text: str) -> set[str]:
        return set((text.lower() if self.lower else text).split())

    def index(self, corpus: dict[str, Document]) -> None:
        self.words = {d.id: self._split(f"{d.title} {d.text}") for d in corpus.values()}

    def search(self, queries: dict[str, str], k: int = 100) -> dict[str, dict[str, float]]:
        run = {}
        for qid, text in queries.items():
            query = self._split(text)
            scores = {d: len(query & w) / len(query) for d, w in self.words.items() if query & w}
            run[qid] = dict(sorted(scores.items(), key=lambda x: -x[1])[:k])
        return run

    def config(self) -> dict[str, Any]:
        return {"lower": self.lower}

    @property
    def num_documents(self) -> int:
        return len(self.words)

    def _save_files(self, folder: Path) -> None:
        (folder / "words.json").write_text(json.dumps({d: sorted(w) for d, w in
                                                       self.words.items()}))

    @classmethod
    def _load_files(cls, folder: Path, manifest: dict[str, Any], **options: Any):
        retriever = cls(**manifest["config"], **options)
        words = json.loads((folder / "words.json").read_text())
        retriever.words = {d: set(w) for d, w in words.items()}
        return retriever


@pytest.fixture
def overlap_kind(monkeypatch):
    """Register the example as the docs say: its module, then one row of KINDS."""
    monkeypatch.setattr(retrieve_base, "_REGISTRY", {**retrieve_base._REGISTRY,
                                                     "overlap": OverlapRetriever})
    module = types.ModuleType("ragsift_overlap_example")
    module.OverlapRetriever = OverlapRetriever
    monkeypatch.setitem(sys.modules, module.__name__, module)
    row = RetrieverKind("overlap", "ragsift_overlap_example:OverlapRetriever",
                        "share of the query's words in the document", argument=None)
    monkeypatch.setitem(KINDS, "overlap", row)
    return row


def test_a_new_kind_is_one_module_plus_one_row(overlap_kind, tmp_path):
    corpus = {"a": Document("a", "red apples and green pears"),
              "b": Document("b", "green tea", title="Tea")}
    retriever = build_retriever("overlap")
    retriever.index(corpus)
    # hand computation: {green, apples} & a = both -> 1.0; & b = {green} -> 0.5
    assert retriever.search({"q": "Green apples"}) == {"q": {"a": 1.0, "b": 0.5}}
    loaded = retrieve_base.Retriever.load(retriever.save(tmp_path / "index"))
    assert loaded.search({"q": "tea"}) == {"q": {"b": 1.0}}
    assert "overlap" in spec_forms() and "overlap: share of the query" in retriever_help()
    hybrid = build_retriever("hybrid:bm25+overlap", overlap_options={"lower": False})
    assert [m.kind for m in hybrid.retrievers] == ["bm25", "overlap"]
    assert hybrid.retrievers[1].lower is False
    with pytest.raises(RetrieverSpecError, match="overlap takes no argument"):
        parse_spec("overlap:x")
