"""Synthetic queries: greedy generation (deterministic, resumable), cleaning, the round-trip
filter against BM25's known answers, and the CLI producing rows ragsift train reads."""

from __future__ import annotations

import json

import pytest
import torch

from ragsift.data.beir import load_beir, load_corpus
from ragsift.errors import DataFormatError, RagsiftError
from ragsift.jobs.sharded import shards_dir
from ragsift.jobs.synthesize import (
    check_template,
    choose_documents,
    clean_query,
    query_prompt,
    round_trip_filter,
    synthesize_queries,
    synthetic_beir,
)
from ragsift.models.generation.generator import Generator
from ragsift.retrieve.bm25 import BM25Retriever
from ragsift.types import Document
from tests.conftest import DOCS

DOCS_TEXT = {d: f"{title} {text}".strip() for d, (title, text) in DOCS.items()}


@pytest.fixture
def generator(tiny_llm) -> Generator:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llm)
    return Generator(model, AutoTokenizer.from_pretrained(tiny_llm), max_new_tokens=6,
                     batch_size=2, max_passage_tokens=24)


def rows_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_generation_is_greedy_deterministic_and_resumes_byte_for_byte(generator, tiny_beir,
                                                                     tmp_path):
    corpus = load_corpus(tiny_beir)
    straight = tmp_path / "straight.jsonl"
    result = synthesize_queries(corpus, generator, straight, shard_size=3, show_progress=False)
    rows = rows_of(straight)
    assert result.documents == 8 and result.queries == len(rows)
    assert result.empty == 8 - len(rows) and result.job.shards_done == 3
    assert [r["pos_ids"][0] for r in rows] == sorted(r["pos_ids"][0] for r in rows)
    for row in rows:  # each query is the model's own greedy decoding of its prompt, cleaned
        doc = corpus[row["pos_ids"][0]]
        assert row["query_id"] == f"synth-{doc.id}" and row["pos"] == [doc.full_text()]
        assert row["neg"] == [] and row["query"] == clean_query(row["query"]) != ""
        ids = torch.tensor([query_prompt(generator, doc)])
        alone = generator.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                         do_sample=False, max_new_tokens=6,
                                         pad_token_id=generator.tokenizer.pad_token_id)
        text = generator.tokenizer.decode(alone[0, ids.shape[1]:], skip_special_tokens=True)
        assert row["query"] == clean_query(text)

    complete = generator.complete
    calls = []

    def dying(prompts):  # the job is killed while generating its second shard
        calls.append(len(prompts))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return complete(prompts)

    out = tmp_path / "resumed.jsonl"
    generator.complete = dying
    with pytest.raises(KeyboardInterrupt):
        synthesize_queries(corpus, generator, out, shard_size=3, show_progress=False)
    assert not out.exists()
    assert sorted(p.name for p in shards_dir(out).glob("shard-*")) == ["shard-00000.jsonl"]
    with pytest.raises(RagsiftError, match="other settings.*template"):
        synthesize_queries(corpus, generator, out, template="Query for: {passage}",
                           shard_size=3, show_progress=False)
    generator.complete = complete
    resumed = synthesize_queries(corpus, generator, out, shard_size=3, show_progress=False)
    assert resumed.job.shards_skipped == 1 and resumed.job.shards_done == 2
    assert out.read_bytes() == straight.read_bytes()
    assert not shards_dir(out).exists()


def test_clean_query_on_hand_made_generations():
    cases = {
        '  Query: "what causes tides?"\nThe passage explains tides.': "what causes tides?",
        "Here is a search query:\n\n**how do vaccines work**": "how do vaccines work",
        "Question: What is BM25?": "What is BM25?",
        "1. Search query 1: bm25 ranking": "bm25 ranking",
        "- q: wolves   hunting\tpacks": "wolves hunting packs",
        "'wolves in packs'": "wolves in packs",
        "“eiffel tower height”": "eiffel tower height",
        "students' sleep and grades": "students' sleep and grades",
        "Query about cats": "Query about cats",  # a label needs its colon
        "Query:\n`rust memory safety`": "rust memory safety",
        "": "", "  \n \n": "", "Query:": "", '""': "", "Here are some queries:": "",
    }
    for raw, expected in cases.items():
        assert clean_query(raw) == expected, raw


def test_templates_and_prompts(generator):
    assert check_template("{title}: {passage}") == {"title", "passage"}
    with pytest.raises(RagsiftError, match="must contain {passage}"):
        check_template("Write a query about {title}")
    with pytest.raises(RagsiftError, match=r"unknown field.*'doc'"):
        check_template("{doc} {passage}")
    with pytest.raises(RagsiftError, match="literal brace"):
        check_template("{passage")
    tokenizer = generator.tokenizer
    doc = Document("d", "wolves live and hunt in packs across the northern hemisphere",
                   title="Wolves")

    def prompt_text(template, limit):
        generator.max_passage_tokens = limit
        return tokenizer.decode(query_prompt(generator, doc, template), skip_special_tokens=True)

    # the passage is title + text, cut to the budget; with {title} the title goes there alone
    # (MiniLM's tokenizer lowercases and has no chat template: message + "\nAnswer:")
    assert prompt_text("Q for {passage}", 3) == "q for wolves wolves live answer :"
    assert prompt_text("[{title}] {passage}", 2) == "[ wolves ] wolves live answer :"


def test_choose_documents_is_a_seeded_sorted_sample():
    corpus = {d: Document(d, f"text {d}") for d in "hgfedcba"}
    corpus["blank"] = Document("blank", "  ")
    assert choose_documents(corpus) == list("abcdefgh")  # sorted, the blank one left out
    first = choose_documents(corpus, docs=4, seed=1)
    assert first == sorted(first) and len(set(first)) == 4 and "blank" not in first
    assert choose_documents(corpus, docs=4, seed=1) == first
    assert {tuple(choose_documents(corpus, docs=4, seed=s)) for s in range(5)} != {tuple(first)}
    assert choose_documents(corpus, docs=50) == list("abcdefgh")
    with pytest.raises(RagsiftError, match="at least 1"):
        choose_documents(corpus, docs=0)
    with pytest.raises(RagsiftError, match="no document with text"):
        choose_documents({"x": Document("x", "")})


def test_round_trip_filter_keeps_queries_that_find_their_own_document(tiny_beir, tmp_path):
    corpus = load_corpus(tiny_beir)
    rows = [
        {"query": "wrought-iron lattice tower", "pos_ids": ["d5"]},  # d5's own words: rank 1
        {"query": "zxqv blorf quux", "pos_ids": ["d1"]},  # matches nothing: dropped
        {"query": "memory safety systems", "pos_ids": ["d1"]},  # finds d6, not d1: dropped
        # "wolves": d7 (title and text) ranks first, d2 (text) second
        {"query": "wolves", "pos_ids": ["d2"]},
    ]
    raw = tmp_path / "raw.jsonl"
    raw.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ranking = BM25Retriever(show_progress=False)
    ranking.index(corpus)
    assert list(ranking.search({"q": "wolves"}, k=3)["q"]) == ["d7", "d2"]

    out = tmp_path / "kept.jsonl"
    result = round_trip_filter(raw, corpus, BM25Retriever(show_progress=False), out, k=1)
    assert (result.kept, result.dropped) == (1, 3)
    assert rows_of(out) == [rows[0]]
    result = round_trip_filter(raw, corpus, BM25Retriever(show_progress=False), out, k=2)
    assert (result.kept, result.dropped) == (2, 2)
    assert rows_of(out) == [rows[0], rows[3]]

    with pytest.raises(RagsiftError, match="at least 1"):
        round_trip_filter(raw, corpus, BM25Retriever(), out, k=0)
    raw.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"query": "x", "pos_ids": ["d9"]}))
    with pytest.raises(DataFormatError, match=r"raw.jsonl, line 2.*pos_ids.*'d9'"):
        round_trip_filter(raw, corpus, BM25Retriever(), out)


def test_synthetic_queries_become_a_beir_split(tiny_beir, tmp_path):
    corpus = load_corpus(tiny_beir)
    rows = [{"query": "iron tower", "pos_ids": ["d5"], "query_id": "synth-d5"},
            {"query": "wolves", "pos_ids": ["d2", "d7"]},  # no id: synth-<source>
            {"query": "a repeat", "pos_ids": ["d5"], "query_id": "synth-d5"}]  # first row wins
    rows_file = tmp_path / "kept.jsonl"
    rows_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    folder = synthetic_beir(rows_file, corpus, tmp_path / "beir")
    exported = load_beir(folder, "train")
    assert exported.queries == {"synth-d5": "iron tower", "synth-d2": "wolves"}
    assert exported.qrels == {"synth-d5": {"d5": 1}, "synth-d2": {"d2": 1}}
    assert exported.corpus == corpus
    rows_file.write_text(json.dumps({"query": " ", "pos_ids": ["d5"]}) + "\n")
    with pytest.raises(DataFormatError, match=r"kept.jsonl, line 1.*query"):
        synthetic_beir(rows_file, corpus, tmp_path / "beir")
    assert load_beir(folder, "train").queries["synth-d5"] == "iron tower"  # left as it was


def test_cli_writes_rows_that_embedding_training_loads(tiny_llm, tiny_beir, tmp_path, capsys):
    from ragsift.cli.main import main
    from ragsift.train.data import TrainingItems, load_examples
    from ragsift.train.tasks.contrastive import contrastive_inputs

    out = tmp_path / "synth.jsonl"
    command = ["synth", "--data", str(tiny_beir), "--generator", str(tiny_llm), "--docs", "6",
               "--max-new-tokens", "6", "--batch-size", "4", "--shard-size", "4", "--out",
               str(out)]
    assert main(command) == 0
    raw = tmp_path / "synth.raw.jsonl"
    generated = raw.read_text().splitlines()
    assert 0 < len(generated) <= 6
    examples = load_examples(raw)  # what ragsift train embedding --data FILE reads
    assert [e.query_id for e in examples] == [json.loads(line)["query_id"] for line in generated]
    bm25 = BM25Retriever()
    bm25.index(load_corpus(tiny_beir))
    top3 = bm25.search({e.query_id: e.query for e in examples}, k=3)
    assert out.read_text().splitlines() == [  # the round-trip filter, checked independently
        line for line, e in zip(generated, examples) if e.pos_ids[0] in top3[e.query_id]]
    assert all(e.pos == [DOCS_TEXT[e.pos_ids[0]]] and e.neg == [] for e in examples)
    items = TrainingItems(examples, negatives=0)  # in-batch negatives only
    texts, keys = contrastive_inputs([items[i] for i in range(len(items))])
    assert texts == [e.pos[0] for e in examples] and keys["doc_keys"].shape == (len(examples),)
    with pytest.raises(RagsiftError, match="set negatives: 0"):
        TrainingItems(examples, negatives=1)

    # the tiny random LM writes word salad that finds nothing; edit the raw rows by hand (one
    # query copying its document's words) and rerun the filter alone
    edited = [json.loads(line) for line in generated]
    edited[0]["query"] = edited[0]["pos"][0]
    raw.write_text("".join(json.dumps(row) + "\n" for row in edited))
    beir = tmp_path / "synth-beir"
    assert main(["synth", "--data", str(tiny_beir), "--filter-only", "--out", str(out),
                 "--beir", str(beir), "--beir-split", "synth"]) == 0
    assert rows_of(out) == [edited[0]]
    exported = load_beir(beir, "synth")
    assert exported.queries == {edited[0]["query_id"]: edited[0]["query"]}
    assert exported.qrels == {edited[0]["query_id"]: {edited[0]["pos_ids"][0]: 1}}
    assert [e.query for e in load_examples(out)] == [edited[0]["query"]]
    assert main(command[:-2] + ["--template", "no passage", "--out", str(out)]) == 1
    assert "must contain {passage}" in capsys.readouterr().err
    assert main(["synth", "--data", str(tiny_beir), "--filter-only", "--out",
                 str(tmp_path / "other.jsonl")]) == 1
    assert "run without --filter-only" in capsys.readouterr().err

