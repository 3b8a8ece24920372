"""``ragsift collection``: the CLI contract end to end (create, add, search --json with
filters, delete with --ids-file, info, --rerank) checked against the Python API."""

from __future__ import annotations

import json
import random

import pytest

from ragsift.cli.main import main
from ragsift.collection import Collection
from tests.collection.conftest import random_document


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def sources(tmp_path):
    rng = random.Random(11)
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text("".join(json.dumps(random_document(rng, f"d{i}")) + "\n"
                             for i in range(40)))
    notes = tmp_path / "notes"
    (notes / "deep").mkdir(parents=True)
    (notes / "cells.md").write_text("# Cells\n\nCell protein folding in the immune system.")
    (notes / "deep" / "heart.txt").write_text("The heart pumps blood.")
    return jsonl, notes


def test_create_add_search_delete_info(tmp_path, capsys, sources, tiny_model_dir):
    jsonl, notes = sources
    folder = str(tmp_path / "col")
    code, out, _ = run(capsys, "collection", "create", folder, "--retriever", "hybrid",
                       "--embedder", str(tiny_model_dir), "--chunk-tokens", "40",
                       "--chunk-overlap", "4")
    assert code == 0 and "hybrid" in out
    code, out, _ = run(capsys, "collection", "add", folder, str(jsonl), str(notes))
    assert code == 0 and out.startswith("42 added, 0 replaced, 0 unchanged")
    assert run(capsys, "collection", "add", folder, str(jsonl))[1].startswith(
        "0 added, 0 replaced, 40 unchanged")

    code, out, _ = run(capsys, "collection", "search", folder, "cell protein", "--k", "5",
                       "--filter", "year>=2010", "--filter", "source in [pubmed, arxiv]",
                       "--json")
    results = json.loads(out)["results"]
    col = Collection.open(folder)
    expected = col.search("cell protein", k=5, filter=["year>=2010",
                                                       "source in [pubmed, arxiv]"])
    assert [(r["id"], r["score"]) for r in results] == [(h.id, h.score) for h in expected]
    assert len(results) == 5
    for r in results:
        assert r["metadata"]["year"] >= 2010 and r["metadata"]["source"] in ("pubmed", "arxiv")
        assert {"id", "score", "text", "title", "start", "end"} <= set(r)

    chunks = json.loads(run(capsys, "collection", "search", folder, "heart pumps", "--json",
                            "--unit", "chunk", "--filter", "path=deep/heart.txt")[1])
    assert [r["id"] for r in chunks["results"]] == ["deep/heart.txt#0"]

    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("d1\nd2\n\n")
    code, out, _ = run(capsys, "collection", "delete", folder, "d3", "nope", "--ids-file",
                       str(ids_file))
    assert code == 0 and out.startswith("3 deleted, 1 not found")
    info = json.loads(run(capsys, "collection", "info", folder)[1])
    assert info["documents"] == 39 and info["retriever"] == "hybrid"
    assert info["generation"] == Collection.open(folder).generation


def test_rerank_flag(tmp_path, capsys, sources, tiny_cross_encoder):
    jsonl, _ = sources
    folder = str(tmp_path / "col")
    run(capsys, "collection", "create", folder, "--retriever", "bm25")
    run(capsys, "collection", "add", folder, str(jsonl))
    out = run(capsys, "collection", "search", folder, "immune therapy", "--k", "3",
              "--rerank", str(tiny_cross_encoder), "--k-retrieve", "10", "--json")[1]
    from ragsift.rerank import Reranker

    reranker = Reranker.load(tiny_cross_encoder)
    candidates = Collection.open(folder).search("immune therapy", k=10)
    assert any(h.title for h in candidates)
    texts = [f"{h.title} {h.text}" if h.title else h.text for h in candidates]
    scores = reranker.score([("immune therapy", text) for text in texts])
    expected = sorted(zip(scores.tolist(), (h.id for h in candidates)),
                      key=lambda pair: (-pair[0], pair[1]))[:3]
    got = json.loads(out)["results"]
    assert [r["id"] for r in got] == [doc_id for _, doc_id in expected]
    assert [r["score"] for r in got] == pytest.approx([s for s, _ in expected], rel=1e-5)
    by_id = {h.id: h.to_dict() for h in candidates}
    assert [{**r, "score": None} for r in got] == [{**by_id[r["id"]], "score": None}
                                                   for r in got]


@pytest.mark.parametrize("argv, message", [
    (["search", "{dir}", "q", "--filter", "year~2"], "cannot read filter"),
    (["search", "{dir}", "q", "--filter", "year>>2"], "needs a number"),
    (["add", "{dir}", "{bad}"], 'bad.jsonl, line 2, field "id"'),
    (["search", "{missing}", "q"], "not a ragsift collection"),
    (["create", "{dir}"], "already exists"),
])
def test_errors_are_one_line(tmp_path, capsys, argv, message):
    folder = tmp_path / "col"
    Collection.create(folder, retriever="bm25")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "ok", "text": "fine"}\n{"id": "tab\\there", "text": "x"}\n')
    argv = [a.format(dir=folder, bad=bad, missing=tmp_path / "nothing") for a in argv]
    code, _, err = run(capsys, "collection", *argv)
    assert code in (1, 2)
    assert message in err and "Traceback" not in err
    assert Collection.open(folder).generation == 0
