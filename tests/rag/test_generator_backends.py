"""Generator backends: llama.cpp in process against ``llama_cpp.Llama`` itself, the
OpenAI-compatible backend against llama-cpp-python's own server on 127.0.0.1 (same greedy
answers, few-shot prompts and stop sequences included), and the errors of an unreachable or
silent server and of a model name the server does not have."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import replace

import pytest

from ragsift.errors import RagsiftError
from ragsift.models.generation.generator import Generator, load_generator
from ragsift.rag.pipeline import Pipeline, RagConfig
from tests.llama_server import free_port, llama_server

NEW_TOKENS = 12
QUESTIONS = ["Where is the Eiffel Tower?", "Who wrote Hamlet?", "What do bees make?"]
CONTEXTS = [["Eiffel Tower: The tower is in Paris, France."],
            ["Hamlet: a tragedy written by William Shakespeare around 1600."], []]
MESSAGES = ["Name the capital of Italy.", "Write one sentence about cats."]


@pytest.fixture(scope="module")
def local(gguf):
    """The default generator of the packaged GGUF: the llama.cpp backend."""
    from ragsift.models.generation.llama_cpp_generator import LlamaCppGenerator

    generator = load_generator("smollm2-135m", max_new_tokens=NEW_TOKENS)
    assert isinstance(generator, LlamaCppGenerator)
    return generator


@pytest.fixture(scope="module")
def server(gguf, local, tmp_path_factory):
    """``python -m llama_cpp.server`` on a free loopback port; yields its ``/v1`` URL."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with llama_server(gguf, "smollm2", log, n_ctx=local.llm.n_ctx(),
                      threads=os.cpu_count() or 1, timeout=60) as url:
        yield url


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
    # few-shot turns and a stop sequence: the chat template and stop of llama.cpp's own chat
    chat = [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "red"},
            {"role": "user", "content": "List three fruits, one per line."}]
    reply = direct.create_chat_completion(chat, temperature=0.0, repeat_penalty=1.0,
                                          max_tokens=NEW_TOKENS, stop=["\n"])
    full = local.complete([local.encode_chat(chat)])[0]
    assert local.complete([local.encode_chat(chat)], stop=["\n"]) == \
        [reply["choices"][0]["message"]["content"]] == [full.split("\n")[0]]
    assert "\n" in full  # the stop sequence did end the text early
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
    # the server's default repeat_penalty is 1.1; greedy parity needs 1.0 (server_options)
    config = RagConfig(generator="openai:smollm2", base_url=server, api_key_env="RAGSIFT_NO_KEY",
                       max_new_tokens=NEW_TOKENS, batch_size=2,
                       server_options=["repeat_penalty=1.0", "seed=0"])
    remote = Pipeline(config).generator()
    assert remote.extra_body == {"repeat_penalty": 1.0, "seed": 0}
    # the default prompt: few-shot turns, stop at a newline, short answers
    assert remote.generate(QUESTIONS, CONTEXTS) == local.generate(QUESTIONS, CONTEXTS)
    prompts = [remote.encode(m) for m in MESSAGES]
    assert remote.complete(prompts) == local.complete([local.encode(m) for m in MESSAGES])
    assert remote.expand(QUESTIONS[:2], "hyde", 8) == local.expand(QUESTIONS[:2], "hyde", 8)
    wrong = load_generator("openai:no-such-model", base_url=server,
                           api_key_env="RAGSIFT_NO_KEY")
    with pytest.raises(RagsiftError, match=rf"^{server}: the server has no model "
                                           r"'no-such-model'; it serves 'smollm2'$"):
        wrong.generate(["Q?"], [[]])


def test_pipeline_builds_the_openai_generator_from_its_config():
    pytest.importorskip("openai")
    config = RagConfig(generator="openai:my-model", base_url="http://127.0.0.1:9/v1/",
                       api_key_env="RAGSIFT_NO_KEY", timeout=7.5, few_shot=[["A?", "a"]],
                       prompt_template_no_context="Q: {question}",
                       server_options=["repeat_penalty=1.0", "stop_hint=x"])
    generator = Pipeline(config).generator()
    assert (generator.model, generator.base_url) == ("my-model", "http://127.0.0.1:9/v1")
    assert generator.client.timeout == 7.5
    assert generator.extra_body == {"repeat_penalty": 1.0, "stop_hint": "x"}
    assert generator.prompt("Q?", []) == "Q: A?\nAnswer: a\n\nQ: Q?\nAnswer:"  # plain text
    chat = Pipeline(replace(config, use_chat_template=True)).generator()
    assert chat.prompt("Q?", []) == [
        {"role": "user", "content": "Q: A?"}, {"role": "assistant", "content": "a"},
        {"role": "user", "content": "Q: Q?"}]
    with pytest.raises(RagsiftError, match=r"server_options\[1\]: expected KEY=VALUE"):
        RagConfig(server_options=["seed=1", "seed"])


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
