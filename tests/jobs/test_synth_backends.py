"""Synthetic queries on the llama.cpp backend (the default for the packaged GGUF): greedy queries
equal to llama_cpp.Llama's own chat completion of the same prompt, a killed job resumed to the
same bytes, and the CLI choosing llama.cpp by itself."""

from __future__ import annotations

import json

import pytest

from ragsift.data.beir import load_corpus
from ragsift.errors import RagsiftError
from ragsift.jobs.sharded import shards_dir
from ragsift.jobs.synthesize import (
    DEFAULT_TEMPLATE,
    choose_documents,
    clean_query,
    synthesize_queries,
)

NEW_TOKENS = 12
DOC_IDS = ["d1", "d4", "d5", "d7"]


@pytest.fixture(scope="module")
def generator(gguf):
    from ragsift.models.generation.generator import load_generator
    from ragsift.models.generation.llama_cpp_generator import LlamaCppGenerator

    # one thread: on cores shared with other work llama.cpp's spinning threads slow it down
    generator = load_generator("smollm2-135m", max_new_tokens=NEW_TOKENS,
                               max_passage_tokens=48, n_threads=1)
    assert isinstance(generator, LlamaCppGenerator)
    return generator


def test_llama_cpp_queries_are_llama_cpps_own_greedy_completions(generator, gguf, tiny_beir,
                                                                  tmp_path):
    import llama_cpp

    corpus = load_corpus(tiny_beir)
    out = tmp_path / "straight.jsonl"
    result = synthesize_queries(corpus, generator, out, DOC_IDS, shard_size=2,
                                show_progress=False)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert result.documents == 4 and result.queries == len(rows) >= 3  # real questions
    direct = llama_cpp.Llama(model_path=str(gguf), n_ctx=generator.llm.n_ctx(), n_threads=1,
                             verbose=False)
    by_id = {row["pos_ids"][0]: row for row in rows}
    for doc_id in DOC_IDS:
        doc = corpus[doc_id]
        message = DEFAULT_TEMPLATE.format(passage=generator.cut(doc.full_text()))
        reply = direct.create_chat_completion([{"role": "user", "content": message}],
                                              temperature=0.0, repeat_penalty=1.0,
                                              max_tokens=NEW_TOKENS)
        query = clean_query(reply["choices"][0]["message"]["content"])
        if query:
            assert by_id[doc_id]["query"] == query
            assert by_id[doc_id]["pos"] == [doc.full_text()]
        else:
            assert doc_id not in by_id


def test_a_killed_llama_cpp_job_resumes_to_the_same_bytes(generator, tiny_beir, tmp_path):
    corpus = load_corpus(tiny_beir)
    straight = tmp_path / "straight.jsonl"
    synthesize_queries(corpus, generator, straight, DOC_IDS, shard_size=2, show_progress=False)
    complete = generator.complete
    calls = []

    def dying(prompts, *args, **kwargs):  # killed while generating the second shard
        calls.append(len(prompts))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return complete(prompts, *args, **kwargs)

    out = tmp_path / "resumed.jsonl"
    generator.complete = dying
    try:
        with pytest.raises(KeyboardInterrupt):
            synthesize_queries(corpus, generator, out, DOC_IDS, shard_size=2,
                               show_progress=False)
    finally:
        generator.complete = complete
    assert not out.exists()
    assert [p.name for p in shards_dir(out).glob("shard-*")] == ["shard-00000.jsonl"]
    with pytest.raises(RagsiftError, match=r"other settings \(template differ"):
        synthesize_queries(corpus, generator, out, DOC_IDS, "Query for: {passage}",
                           shard_size=2, show_progress=False)
    resumed = synthesize_queries(corpus, generator, out, DOC_IDS, shard_size=2,
                                 show_progress=False)
    assert (resumed.job.shards_skipped, resumed.job.shards_done) == (1, 1)
    assert out.read_bytes() == straight.read_bytes()


def test_cli_runs_a_gguf_model_on_llama_cpp(generator, tiny_beir, tmp_path):
    from ragsift.cli.main import main

    corpus = load_corpus(tiny_beir)
    reference = tmp_path / "reference.jsonl"
    synthesize_queries(corpus, generator, reference, choose_documents(corpus, 3, seed=0),
                       show_progress=False)
    out = tmp_path / "cli.jsonl"
    assert main(["synth", "--data", str(tiny_beir), "--generator", "smollm2-135m",
                 "--max-new-tokens", str(NEW_TOKENS), "--max-passage-tokens", "48",
                 "--docs", "3", "--no-filter", "--out", str(out)]) == 0
    assert out.read_text() == reference.read_text()


def test_cli_names_an_unreachable_server_in_one_line(tiny_beir, tmp_path, capsys):
    pytest.importorskip("openai")
    import socket

    from ragsift.cli.main import main

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    assert main(["synth", "--data", str(tiny_beir), "--generator", "openai:m", "--base-url",
                 url, "--out", str(tmp_path / "x.jsonl")]) == 1
    error = capsys.readouterr().err.strip()
    assert f"{url} (model 'm'): cannot reach the server" in error
    assert "Traceback" not in error
