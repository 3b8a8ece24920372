"""Collections: incremental BM25 and dense search against indexes built from scratch on the
survivors (bm25s and numpy brute force), filters against brute force, chunking, upserts,
input errors, merges and reopening."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from ragsift.collection import Collection, Filter
from ragsift.errors import DataFormatError, IndexMismatchError, RagsiftError
from ragsift.models.bi_encoder import BiEncoder
from ragsift.retrieve.bm25 import BM25Retriever
from tests.collection.conftest import WORDS, random_document

QUERIES = ["cell protein", "immune therapy trial", "brain signal brain", "tumor growth dose",
           "virus", "risk model data patient"]


def churn(col: Collection, rng: random.Random, rounds: int, per_round: int) -> dict[str, dict]:
    """Random adds (new ids and upserts of old ones) and deletes; returns the survivors."""
    alive: dict[str, dict] = {}
    next_id = 0
    for _ in range(rounds):
        batch = []
        for _ in range(per_round):
            if alive and rng.random() < 0.3:
                doc_id = rng.choice(sorted(alive))
            else:
                doc_id, next_id = f"d{next_id}", next_id + 1
            batch.append(random_document(rng, doc_id))
        batch = list({d["id"]: d for d in batch}.values())
        col.add(batch)
        alive.update({d["id"]: d for d in batch})
        gone = rng.sample(sorted(alive), k=min(len(alive), rng.randint(0, per_round // 2)))
        assert col.delete(gone) == len(gone)
        for doc_id in gone:
            del alive[doc_id]
    return alive


@pytest.fixture
def encoder(tiny_model_dir):
    return BiEncoder.from_pretrained(tiny_model_dir, device="cpu")


def chunk_scores(col: Collection, query: str, k: int, retriever: str) -> dict[str, float]:
    return {h.id: h.score for h in col.search(query, k=k, unit="chunk", retriever=retriever)}


def test_bm25_after_adds_and_deletes_equals_a_rebuild(tmp_path, rng):
    col = Collection.create(tmp_path / "inc", retriever="bm25", chunk_tokens=48,
                            chunk_overlap=8)
    alive = churn(col, rng, rounds=6, per_round=25)
    assert len(col) == len(alive) and set(col.ids()) == set(alive)
    assert len(col.snapshot.segments) > 1

    fresh = Collection.create(tmp_path / "fresh", retriever="bm25", chunk_tokens=48,
                              chunk_overlap=8)
    fresh.add(list(alive.values()))
    chunks = col.snapshot.chunk_documents()
    assert chunks.keys() == fresh.snapshot.chunk_documents().keys()
    reference = BM25Retriever()
    reference.index(chunks)
    expected = reference.search(dict(enumerate(QUERIES)), k=len(chunks))
    for qid, query in enumerate(QUERIES):
        got = chunk_scores(col, query, len(chunks), "bm25")
        rebuilt = chunk_scores(fresh, query, len(chunks), "bm25")
        assert got.keys() == rebuilt.keys() == expected[qid].keys()
        for chunk_id, score in got.items():
            assert score == pytest.approx(rebuilt[chunk_id], abs=1e-9)
            assert score == pytest.approx(expected[qid][chunk_id], rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("method", ["robertson", "atire"])
def test_other_bm25_methods_match_bm25s(tmp_path, rng, method):
    col = Collection.create(tmp_path / "c", retriever="bm25", chunk_tokens=64,
                            bm25={"method": method})
    churn(col, rng, rounds=2, per_round=20)
    chunks = col.snapshot.chunk_documents()
    reference = BM25Retriever(method=method)
    reference.index(chunks)
    for query in QUERIES:
        expected = reference.search({"q": query}, k=len(chunks))["q"]
        got = chunk_scores(col, query, len(chunks), "bm25")
        positive = {c: s for c, s in expected.items() if s > 0}
        assert got.keys() == positive.keys()
        for chunk_id, score in got.items():
            assert score == pytest.approx(positive[chunk_id], rel=1e-5, abs=1e-5)


def test_dense_after_adds_and_deletes_equals_exact_search(tmp_path, rng, encoder):
    col = Collection.create(tmp_path / "c", retriever="dense", encoder=encoder)
    churn(col, rng, rounds=4, per_round=20)
    chunks = col.snapshot.chunk_documents()
    ids = list(chunks)
    vectors = encoder.encode_documents([c.full_text() for c in chunks.values()])
    for query in QUERIES:
        q = encoder.encode_queries([query])[0]
        exact = vectors @ q
        order = np.argsort(-exact, kind="stable")[:10]
        got = col.search(query, k=10, unit="chunk")
        assert [h.id for h in got] == [ids[i] for i in order]
        np.testing.assert_allclose([h.score for h in got], exact[order], atol=1e-5)


def test_reopened_collection_answers_the_same(tmp_path, rng, encoder):
    col = Collection.create(tmp_path / "c", retriever="hybrid", encoder=encoder,
                            chunk_tokens=40, chunk_overlap=5)
    churn(col, rng, rounds=3, per_round=15)
    before = [[(h.id, h.score) for h in col.search(q, k=8)] for q in QUERIES]
    again = Collection.open(tmp_path / "c", encoder=encoder)
    assert again.generation == col.generation
    assert [[(h.id, h.score) for h in again.search(q, k=8)] for q in QUERIES] == before


def brute_force_matching(col: Collection, spec) -> set[str]:
    f = Filter.parse(spec)
    return {i for i in col.ids() if f.matches(col.get(i).metadata)}


FILTERS = [None, "year>=2000", "year>=2012", "source=pubmed", ["source in [arxiv, wiki]",
           "year<2010"], "tags=a", ["open=true", "score>0.5"], "year=2003",
           ["year=2003", "source=wiki", "open=false"], "score<0.004", "year>=2030"]


@pytest.mark.parametrize("retriever", ["bm25", "dense", "hybrid"])
def test_filtered_search_returns_min_k_matching_and_nothing_outside(tmp_path, retriever,
                                                                    encoder):
    rng = random.Random(99)
    col = Collection.create(tmp_path / "c", retriever=retriever, encoder=encoder,
                            chunk_tokens=40, chunk_overlap=4)
    col.add([random_document(rng, f"d{i}") for i in range(400)], commit_every=150)
    col.delete([f"d{i}" for i in range(0, 400, 7)])
    selectivities = []
    for spec in FILTERS:
        matching = brute_force_matching(col, spec)
        selectivities.append(len(matching) / len(col))
        for k in (1, 5, 30):
            query = " ".join(rng.sample(WORDS, 2))
            hits = col.search(query, k=k, filter=spec)
            ids = [h.id for h in hits]
            assert len(ids) == len(set(ids))
            assert set(ids) <= matching, spec
            if retriever == "bm25":
                terms = set(col.config.bm25.tokenize([query])[0])
                eligible = {i for i in matching
                            if terms & set(col.config.bm25.tokenize(
                                [col.get(i).title + " " + col.get(i).text])[0])}
                assert len(ids) == min(k, len(eligible))
            else:
                assert len(ids) == min(k, len(matching)), spec
    assert min(selectivities) <= 0.003 and max(selectivities) == 1.0


def test_filtered_dense_equals_exact_search_among_matching(tmp_path, encoder):
    rng = random.Random(5)
    col = Collection.create(tmp_path / "c", retriever="dense", encoder=encoder)
    col.add([random_document(rng, f"d{i}") for i in range(150)])
    chunks = col.snapshot.chunk_documents()
    spec = ["source=pubmed", "year>=2010"]
    keep = [c for c in chunks if Filter.parse(spec).matches(col.get(c.rsplit("#", 1)[0])
                                                            .metadata)]
    vectors = encoder.encode_documents([chunks[c].full_text() for c in keep])
    q = encoder.encode_queries(["immune cell"])[0]
    order = np.argsort(-(vectors @ q), kind="stable")[:7]
    hits = col.search("immune cell", k=7, filter=spec, unit="chunk")
    assert [h.id for h in hits] == [keep[i] for i in order]


def test_long_documents_are_chunked_with_spans_and_upserts_replace_chunks(tmp_path, rng):
    col = Collection.create(tmp_path / "c", retriever="bm25", chunk_tokens=30,
                            chunk_overlap=5)
    doc = random_document(rng, "long")
    doc["text"] = " ".join(f"Sentence {i} about tumor growth." for i in range(60))
    result = col.add([doc])
    assert result.added == 1 and result.chunks > 5
    hits = col.search("tumor", k=100, unit="chunk")
    assert {h.doc_id for h in hits} == {"long"} and len(hits) == result.chunks
    for hit in hits:
        assert doc["text"][hit.start:hit.end] == hit.text
        assert hit.id == f"long#{hit.chunk}"
    best = col.search("tumor", k=5)
    assert [h.id for h in best] == ["long"]
    assert best[0].score == max(h.score for h in hits)

    assert col.add([doc]).unchanged == 1  # same content: nothing written
    generation = col.generation
    doc["text"] = "Now it is about the heart."
    replaced = col.add([doc])
    assert replaced.replaced == 1 and replaced.chunks == 1
    assert col.generation == generation + 1
    assert col.search("tumor", k=5) == []
    assert [h.text for h in col.search("heart", k=5)] == ["Now it is about the heart."]


def test_a_bad_row_commits_nothing_and_names_the_place(tmp_path):
    col = Collection.create(tmp_path / "c", retriever="bm25")
    good = {"id": "a", "text": "fine"}
    with pytest.raises(DataFormatError, match=r"line 2, field \"id\".*whitespace"):
        col.add([good, {"id": "b c", "text": "bad id"}])
    with pytest.raises(DataFormatError, match=r"metadata.when"):
        col.add([good, {"id": "b", "text": "x", "metadata": {"when": {"nested": 1}}}])
    with pytest.raises(DataFormatError, match="duplicate id 'a'"):
        col.add([good, good])
    with pytest.raises(DataFormatError, match="metadata.x"):
        col.add([{"id": "n", "text": "x", "metadata": {"x": float("nan")}}])
    assert col.generation == 0 and len(col) == 0

    source = tmp_path / "docs.jsonl"
    source.write_text('{"id": "a", "text": "ok"}\n{"id": "b", "txt": "typo"}\n')
    from ragsift.collection import load_sources

    with pytest.raises(DataFormatError, match=r"docs.jsonl, line 2, field \"txt\""):
        load_sources([source])


def test_text_folder_ids_and_metadata(tmp_path):
    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "a.md").write_text("# Cells\nCells divide.")
    (notes / "sub" / "b.txt").write_text("Hearts beat.")
    (notes / "ignored.pdf").write_text("nope")
    (notes / ".hidden.md").write_text("hidden")
    from ragsift.collection import load_sources

    docs = {d.id: d for d in load_sources([notes])}
    assert set(docs) == {"a.md", "sub/b.txt"}
    assert docs["sub/b.txt"].metadata["path"] == "sub/b.txt"
    assert isinstance(docs["sub/b.txt"].metadata["mtime"], float)


def test_refusals(tmp_path, encoder):
    col = Collection.create(tmp_path / "c", retriever="dense", encoder=encoder)
    with pytest.raises(RagsiftError, match="already exists"):
        Collection.create(tmp_path / "c", retriever="bm25")
    with pytest.raises(RagsiftError, match="created with"):
        Collection.create(tmp_path / "c", retriever="bm25", exist_ok=True)
    assert Collection.create(tmp_path / "c", retriever="dense", encoder=encoder,
                             exist_ok=True).generation == 0
    other = BiEncoder.from_pretrained("minilm-l6", device="cpu")
    with pytest.raises(IndexMismatchError, match="refusing"):
        Collection.open(tmp_path / "c", encoder=other)
    with pytest.raises(ValueError, match="cannot search with 'bm25'"):
        col.search("x", retriever="bm25")
    with pytest.raises(IndexMismatchError, match="not a ragsift collection"):
        Collection.open(tmp_path)
    with pytest.raises(RagsiftError, match="retriever"):
        Collection.create(tmp_path / "d", retriever="sparse")


def test_many_small_adds_are_merged_and_optimize_drops_deleted(tmp_path, rng):
    col = Collection.create(tmp_path / "c", retriever="bm25")
    for i in range(20):
        col.add([random_document(rng, f"d{i}")])
    assert len(col.snapshot.segments) < 8
    col.delete([f"d{i}" for i in range(10)])
    before = [(h.id, round(h.score, 9)) for h in col.search("cell", k=20)]
    col.optimize()
    assert len(col.snapshot.segments) == 1
    assert col.snapshot.num_rows == int(col.snapshot.live.sum())
    assert [(h.id, round(h.score, 9)) for h in col.search("cell", k=20)] == before
    folders = {p.name for p in (tmp_path / "c" / "segments").iterdir()}
    assert len(folders) <= 1 + len(Collection.open(tmp_path / "c").snapshot.segments) + 8


def titled_text(hit) -> str:
    """What a reranker reads of a hit: its title and text (the text alone without a title)."""
    return f"{hit.title} {hit.text}" if hit.title else hit.text


def test_retrieve_and_rerank_scores_title_and_text(tmp_path, rng, tiny_cross_encoder):
    from ragsift.rerank import Reranker

    col = Collection.create(tmp_path / "c", retriever="bm25")
    col.add([random_document(rng, f"d{i}") for i in range(30)])
    reranker = Reranker.load(tiny_cross_encoder)
    hits = col.retrieve_and_rerank("cell protein", reranker, k_retrieve=10, k_rerank=3)
    candidates = col.search("cell protein", k=10)
    expected = reranker.score([("cell protein", titled_text(h)) for h in candidates])
    text_only = reranker.score([("cell protein", h.text) for h in candidates])
    assert not np.allclose(expected, text_only)  # titles are there and change the scores
    best = sorted(range(10), key=lambda i: (-expected[i], candidates[i].id))[:3]
    assert [h.id for h in hits] == [candidates[i].id for i in best]
    np.testing.assert_allclose([h.score for h in hits], expected[best], rtol=1e-5)
    assert hits == [dataclasses.replace(candidates[i], score=h.score) for i, h in zip(best, hits)]

    few = col.retrieve_and_rerank("cell protein", reranker, k_retrieve=2, k_rerank=5)
    assert sorted(h.id for h in few) == sorted(h.id for h in candidates[:2])
    with pytest.raises(ValueError, match="k_rerank must be a positive integer"):
        col.retrieve_and_rerank("cell protein", reranker, k_rerank=0)


def test_a_reader_follows_another_writers_commits_and_merges(tmp_path):
    writer = Collection.create(tmp_path / "c", retriever="bm25")
    for i in range(7):
        writer.add([{"id": f"d{i}", "text": f"cats sleep {i}"}])
    reader = Collection.open(tmp_path / "c")
    assert len(reader.search("cats", k=3)) == 3
    writer.add([{"id": "d7", "text": "cats again"}])  # fills a tier: merged
    writer.add([{"id": "d8", "text": "cats too"}])  # the reader's segments are gone now
    assert {h.id for h in reader.search("cats", k=20)} == {f"d{i}" for i in range(9)}
    assert reader.generation == writer.generation


def test_a_query_without_terms_finds_nothing(tmp_path):
    col = Collection.create(tmp_path / "c", retriever="bm25")
    col.add([{"id": "a", "text": "the and of it"}, {"id": "b", "text": "cats sleep"}])
    assert col.search("!!") == [] and col.search("the of") == []
    assert [h.id for h in col.search("cats")] == ["b"]


@pytest.mark.parametrize("row, field", [
    ({"id": "a", "text": "x\ud800y"}, "text"),
    ({"id": "a", "text": "x", "title": "\udfff"}, "title"),
    ({"id": "a\ud800", "text": "x"}, "id"),
    ({"id": "a", "text": "x", "metadata": {"k": "\ud800"}}, "metadata.k"),
    ({"id": "a", "text": "x", "metadata": {"k": ["ok", "\ud800"]}}, "metadata.k"),
])
def test_lone_surrogates_are_refused(tmp_path, row, field):
    col = Collection.create(tmp_path / "c", retriever="bm25")
    with pytest.raises(DataFormatError, match=f'field "{field}"'):
        col.add([row])
    assert len(col) == 0


def test_a_beir_folder_is_ingested_with_titles(tmp_path, tiny_beir):
    from ragsift.collection import load_sources
    from ragsift.data.beir import load_corpus

    corpus = load_corpus(tiny_beir)
    docs = load_sources([tiny_beir])
    assert [(d.id, d.title, d.text) for d in docs] == [
        (d.id, d.title, d.text) for d in corpus.values()]
    col = Collection.create(tmp_path / "c", retriever="bm25")
    assert col.add(docs).added == len(corpus)
    reference = BM25Retriever()
    reference.index(corpus)
    query = next(iter(load_sources([tiny_beir]))).title or "cats"
    expected = reference.search({"q": query}, k=5)["q"]
    got = {h.id: h.score for h in col.search(query, k=5)}
    assert list(got) == list(expected)
    assert list(got.values()) == pytest.approx(list(expected.values()), rel=1e-5)
