"""Generator backends: llama.cpp in process against ``llama_cpp.Llama`` itself, the
OpenAI-compatible backend against llama-cpp-python's own server on 127.0.0.1, and the errors
of an unreachable or silent server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ragsift.errors import RagsiftError
from ragsift.rag.generator import Generator, load_generator
from ragsift.rag.pipeline import Pipeline, RagConfig

NEW_TOKENS = 12
QUESTIONS = ["Where is the Eiffel Tower?", "Who wrote Hamlet?", "What do bees make?"]
CONTEXTS = [["Eiffel Tower: The tower is in Paris, France."],
            ["Hamlet: a tragedy written by William Shakespeare around 1600."], []]
MESSAGES = ["Name the capital of Italy.", "Write one sentence about cats."]


@pytest.fixture(scope="module")
def gguf() -> Path:
    """The packaged SmolLM2-135M GGUF (skips when llama-cpp-python or the model is missing)."""
    pytest.importorskip("llama_cpp")
    from ragsift.errors import ModelNotFoundError
    from ragsift.models.hub import PACKAGED_MODELS, packaged_model_dir

    try:
        folder = packaged_model_dir("smollm2-135m")
    except ModelNotFoundError as exc:
        pytest.skip(str(exc))
    return folder / PACKAGED_MODELS["smollm2-135m"].gguf_file


@pytest.fixture(scope="module")
def local(gguf):
    """The default generator of the packaged GGUF: the llama.cpp backend."""
    from ragsift.rag.llama_cpp_generator import LlamaCppGenerator

    generator = load_generator("smollm2-135m", max_new_tokens=NEW_TOKENS)
    assert isinstance(generator, LlamaCppGenerator)
    return generator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(gguf, local, tmp_path_factory):
    """``python -m llama_cpp.server`` on a free loopback port; yields its ``/v1`` URL."""
    pytest.importorskip("openai")
    pytest.importorskip("sse_starlette")  # llama-cpp-python[server]
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host",
             "127.0.0.1", "--port", str(port), "--n_ctx", str(local.llm.n_ctx()),
             "--n_threads", str(os.cpu_count() or 1)],
            stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/models", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("llama_cpp.server did not answer within 60 s")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_llama_cpp_is_greedy_and_equals_llama_cpp_itself(local, gguf):
    import llama_cpp

    prompts = [local.encode(m) for m in MESSAGES]
    texts = local.complete(prompts)
    assert local.complete(prompts[::-1]) == texts[::-1]  # deterministic, order-independent
    direct = llama_cpp.Llama(model_path=str(gguf), n_ctx=local.llm.n_ctx(),
                             n_threads=os.cpu_count(), verbose=False)
    for message, text in zip(MESSAGES, texts):
        reply = direct.create_chat_completion(
            [{"role": "user", "content": message}], temperature=0.0, repeat_penalty=1.0,
            max_tokens=NEW_TOKENS)
        assert text == reply["choices"][0]["message"]["content"] != ""
    expansion = local.expand(QUESTIONS[:1], "gar", max_new_tokens=8)
    assert expansion == [local.complete([local.encode(
        f"Answer the question in a few words, then give the title of a page about it.\n"
        f"Question: {QUESTIONS[0]}")], 8)[0].strip()]
    # the GGUF's chat template gives the same ids as the transformers path's tokenizer
    from transformers import AutoTokenizer

    from ragsift.models.causal_lm import user_prompt_ids

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    assert prompts == [user_prompt_ids(tokenizer, m) for m in MESSAGES]
    short = local.cut("one two three four five " * 100)
    assert short != "one two three four five " * 100
    assert len(local.llm.tokenize(short.encode(), add_bos=False)) <= local.max_passage_tokens


def test_backend_choice_and_errors(local, tiny_llm):
    assert local.fingerprint() == load_generator("llama-cpp:smollm2-135m",
                                                 max_new_tokens=NEW_TOKENS).fingerprint()
    assert local.fingerprint() != load_generator("smollm2-135m",
                                                 max_new_tokens=NEW_TOKENS + 1).fingerprint()
    assert isinstance(load_generator(f"transformers:{tiny_llm}"), Generator)
    assert isinstance(load_generator(str(tiny_llm)), Generator)  # not a GGUF
    with pytest.raises(RagsiftError, match="no .gguf file"):
        load_generator(f"llama-cpp:{tiny_llm}")
    with pytest.raises(RagsiftError, match="n_ctx"):
        local.complete([local.encode("word " * local.llm.n_ctx())])


def test_openai_server_answers_equal_llama_cpp_in_process(server, local):
    remote = load_generator("openai:smollm2", base_url=server, api_key_env="RAGSIFT_NO_KEY",
                            max_new_tokens=NEW_TOKENS, batch_size=2,
                            # the server's default repeat_penalty is 1.1; greedy needs 1.0
                            extra_body={"repeat_penalty": 1.0})
    assert remote.generate(QUESTIONS, CONTEXTS) == local.generate(QUESTIONS, CONTEXTS)
    assert remote.expand(QUESTIONS[:2], "hyde", 8) == local.expand(QUESTIONS[:2], "hyde", 8)


def test_pipeline_builds_the_openai_generator_from_its_config():
    pytest.importorskip("openai")
    config = RagConfig(generator="openai:my-model", base_url="http://127.0.0.1:9/v1/",
                       api_key_env="RAGSIFT_NO_KEY")
    generator = Pipeline(config).generator()
    assert (generator.model, generator.base_url) == ("my-model", "http://127.0.0.1:9/v1")
    assert generator.prompt("Q?", []) == "Answer the question with a short answer.\nQuestion: Q?"


def test_openai_errors_name_the_server_and_model(monkeypatch):
    pytest.importorskip("openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(RagsiftError, match="OPENAI_API_KEY"):
        load_generator("openai:gpt-4o-mini")
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    start = time.monotonic()
    with pytest.raises(RagsiftError, match=rf"{url} \(model 'm'\): cannot reach the server"):
        load_generator("openai:m", base_url=url).generate(["Q?"], [[]])
    assert time.monotonic() - start < 10
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        with pytest.raises(RagsiftError, match=rf"{url} \(model 'm'\): no answer within 0.5"):
            load_generator("openai:m", base_url=url, timeout=0.5, max_retries=0
                           ).generate(["Q?"], [[]])
