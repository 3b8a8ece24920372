"""Gain labels on every backend: the formula by hand; the llama.cpp scorer against llama.cpp's
own all-positions evaluation; llama.cpp and llama-cpp-python's OpenAI-compatible server against
the transformers path on the same weights (HotpotQA when present); one-line errors."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import log_softmax
from scipy.stats import spearmanr

from ragsift.errors import RagsiftError
from ragsift.jobs.gain import contrastive_log_probs, gain_from_log_probs, resolve_backend
from tests.conftest import SHARED
from tests.llama_server import free_port, llama_server

QUESTION = "In which city is the Eiffel Tower?"
ANSWER = "Paris"
PASSAGES = ["The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
            "Bananas are yellow fruit that grow in warm places.",
            "The Colosseum is an amphitheatre in Rome, Italy."]
MADE_UP = [  # (question, answer, passages): used when ../shared/datasets/hotpotqa is absent
    (QUESTION, ANSWER, PASSAGES),
    ("Who wrote Hamlet?", "William Shakespeare",
     ["Hamlet is a tragedy written by William Shakespeare around 1600.",
      "Hamlet is a small village.", "Shakespeare's plays include Macbeth and Othello."]),
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gain-cache")


@pytest.fixture(scope="module")
def f32_gguf(gguf, cache) -> Path:
    from ragsift.models.generation.gguf_convert import converted_gguf

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAGSIFT_CACHE_DIR", str(cache))
        return converted_gguf(gguf, "f32")


@pytest.fixture(scope="module")
def llama_scorer(f32_gguf, cache):
    from ragsift.jobs.gain_llama_cpp import LlamaCppGainScorer

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAGSIFT_CACHE_DIR", str(cache))
        # one thread: on cores shared with other work llama.cpp's spinning threads are slow
        return LlamaCppGainScorer.from_pretrained("smollm2-135m", n_threads=1)


def test_gain_formula_by_hand():
    # PPL of two tokens with p = 1/2 each is 2: gain = -log(2 + 1)
    assert gain_from_log_probs(np.log([0.5, 0.5])) == pytest.approx(-math.log(3))
    assert gain_from_log_probs(np.array([-1000.0])) == pytest.approx(-1000.0)  # no overflow
    with_passage = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    without = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    # a = 0.5: mixed rows [3, -0.5, 0] and [0, 1.5, -1.5]; targets 0 and 1
    expected = [3 - math.log(math.exp(3) + math.exp(-0.5) + 1),
                1.5 - math.log(1 + math.exp(1.5) + math.exp(-1.5))]
    got = contrastive_log_probs(with_passage, without, [0, 1], 0.5)
    assert got == pytest.approx(expected)


def test_backend_resolution(tiny_llm):
    assert resolve_backend("openai:gpt-x") == ("openai", "gpt-x")
    assert resolve_backend("llama-cpp:smollm2-135m") == ("llama-cpp", "smollm2-135m")
    assert resolve_backend(str(tiny_llm)) == ("transformers", str(tiny_llm))  # not a GGUF


def test_float32_copy_is_made_once_and_keeps_the_tokenizer(gguf, f32_gguf, cache, monkeypatch):
    import llama_cpp

    from ragsift.models.generation.gguf_convert import converted_gguf

    monkeypatch.setenv("RAGSIFT_CACHE_DIR", str(cache))
    made = f32_gguf.stat().st_mtime_ns
    assert converted_gguf(gguf, "f32") == f32_gguf and f32_gguf.stat().st_mtime_ns == made
    assert f32_gguf.stat().st_size > 4 * gguf.stat().st_size  # 32 bits a weight, not ~5
    quantised = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    dequantised = llama_cpp.Llama(model_path=str(f32_gguf), vocab_only=True, verbose=False)
    assert dequantised.metadata["tokenizer.chat_template"] == \
        quantised.metadata["tokenizer.chat_template"]
    assert dequantised.tokenize(QUESTION.encode()) == quantised.tokenize(QUESTION.encode())


def test_llama_cpp_gains_equal_llama_cpps_all_positions_logits(llama_scorer, f32_gguf):
    import llama_cpp

    reference = llama_cpp.Llama(model_path=str(f32_gguf), n_ctx=1024, n_threads=1,
                                logits_all=True, verbose=False)
    target = llama_scorer.answer_ids("Paris, France")
    assert target == reference.tokenize(b"Paris, France", add_bos=False)

    def answer_logits(prompt):  # one batch over prompt + answer, every position's logits
        reference.reset()
        reference.eval(prompt + target)
        return reference.scores[len(prompt) - 1:len(prompt) - 1 + len(target)].astype(float)

    without = answer_logits(llama_scorer.prompt_ids(QUESTION, None))
    expected = []
    for passage in PASSAGES:
        mixed = 1.5 * answer_logits(llama_scorer.prompt_ids(QUESTION, passage)) - 0.5 * without
        log_probs = log_softmax(mixed, axis=-1)[np.arange(len(target)), target]
        expected.append(-math.log(math.exp(-log_probs.mean()) + 1))
    got = llama_scorer.gains(QUESTION, "Paris, France", PASSAGES)
    assert got == pytest.approx(expected, abs=0.01)
    assert got[0] == max(got)  # the passage holding the answer helps most


def test_cli_labels_with_llama_cpp(llama_scorer, cache, tmp_path, monkeypatch):
    from ragsift.cli.main import main

    monkeypatch.setenv("RAGSIFT_CACHE_DIR", str(cache))  # the float32 copy made above
    rows = [{"id": "q1", "question": QUESTION, "answer": ANSWER,
             "paragraphs": [{"title": "", "text": p, "is_supporting": i == 0}
                            for i, p in enumerate(PASSAGES)]}]
    questions = tmp_path / "qa.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "gains.jsonl"
    assert main(["gain-label", "--questions", str(questions), "--generator", "smollm2-135m",
                 "--threads", "1", "--out", str(out)]) == 0
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["docs"] == PASSAGES and row["supporting"] == [0]
    expected = llama_scorer.gains(QUESTION, ANSWER, PASSAGES)
    assert row["scores"] == pytest.approx(expected.tolist(), abs=1e-5)


def qa_examples(limit: int) -> list[tuple[str, str, list[str]]]:
    """The first ``limit`` HotpotQA test questions with their paragraphs, else the made-up
    set."""
    from ragsift.data.qa import load_qa

    path = SHARED / "hotpotqa" / "test.jsonl"
    if not path.is_file():
        return MADE_UP[:limit]
    return [(e.question, e.answer, [p.full_text() for p in e.paragraphs])
            for e in load_qa(path)[:limit]]


def agreement(scorer, reference, examples) -> tuple[float, float, float]:
    """The least per-question Spearman correlation of the two scorers' gains, the largest
    absolute difference of their gains and that of their gold-token log-probs."""
    rhos, gain_diffs, token_diffs = [], [], []
    for question, answer, passages in examples:
        ours = scorer.answer_log_probs(question, answer, passages)
        theirs = reference.answer_log_probs(question, answer, passages)
        gains = np.array([[gain_from_log_probs(x) for x in ours],
                          [gain_from_log_probs(x) for x in theirs]])
        rhos.append(spearmanr(gains[0], gains[1]).statistic)
        gain_diffs.append(float(np.abs(gains[0] - gains[1]).max()))
        token_diffs += [float(np.abs(x - y).max()) for x, y in zip(ours, theirs)]
    print(f"per-question Spearman {np.round(rhos, 4).tolist()}, max |gain diff| "
          f"{max(gain_diffs):.4f}, max |log-prob diff| {max(token_diffs):.4f} "
          f"(median {np.median(token_diffs):.4f})")
    return min(rhos), max(gain_diffs), max(token_diffs)


@pytest.fixture(scope="module")
def transformers_scorer():
    pytest.importorskip("gguf")
    from ragsift.jobs.gain import GainScorer

    return GainScorer.from_pretrained("smollm2-135m", batch_size=4)


@pytest.mark.slow
def test_llama_cpp_labels_agree_with_transformers_on_the_same_weights(llama_scorer,
                                                                      transformers_scorer):
    examples = qa_examples(int(os.environ.get("RAGSIFT_SLOW_QUERIES", "0")) or 3)
    for question, answer, passages in examples:  # the same tokens (HotpotQA has space runs)
        assert llama_scorer.answer_ids(answer) == transformers_scorer.answer_ids(answer)
        for passage in [None, *passages]:
            assert llama_scorer.prompt_ids(question, passage) == \
                transformers_scorer.prompt_ids(question, passage)
    rho, gain_diff, token_diff = agreement(llama_scorer, transformers_scorer, examples)
    # measured on 40 HotpotQA questions x 10 paragraphs: 1.0, 0.0000 and 0.0001
    assert rho >= 0.99 and gain_diff < 0.01 and token_diff < 0.01


def test_openai_errors_are_one_line(gguf, tmp_path, monkeypatch):
    pytest.importorskip("openai")
    from ragsift.jobs.gain import load_gain_scorer

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(RagsiftError, match=r"need alpha 0 \(--alpha 0\), not 0.5"):
        load_gain_scorer("openai:m", base_url="http://127.0.0.1:9/v1", alpha=0.5)
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(RagsiftError, match=rf"{url} \(model 'm'\): cannot reach the server"):
        load_gain_scorer("openai:m", base_url=url, alpha=0.0, max_retries=0)
    # a server whose model keeps only the last position's logits cannot echo prompt log-probs
    with llama_server(gguf, "smol", tmp_path / "server.log", "--logits_all", "False") as url:
        with pytest.raises(RagsiftError, match=rf"{url}: the server has no model 'nope'.*"
                                               r"'smol'"):
            load_gain_scorer("openai:nope", base_url=url, alpha=0.0)
        scorer = load_gain_scorer("openai:smol", base_url=url, alpha=0.0)
        with pytest.raises(RagsiftError, match=r"\(model 'smol'\): HTTP 500: .*gain labels need "
                                               r"the log-probs of the prompt's tokens"):
            scorer.gains(QUESTION, ANSWER, PASSAGES[:1])


@pytest.mark.slow
def test_openai_labels_agree_with_transformers_and_llama_cpp(f32_gguf, llama_scorer,
                                                            transformers_scorer, tmp_path):
    from ragsift.jobs.gain import load_gain_scorer

    llama_scorer.alpha = transformers_scorer.alpha = 0.0  # all a server's log-probs allow
    try:
        with llama_server(f32_gguf, "smollm2-f32", tmp_path / "server.log") as url:
            remote = load_gain_scorer("openai:smollm2-f32", base_url=url, alpha=0.0,
                                      tokenizer="smollm2-135m", batch_size=2)
            assert remote.prompt_text(remote.message(QUESTION, None))[0] == \
                transformers_scorer.tokenizer.decode(transformers_scorer.prompt_ids(QUESTION,
                                                                                    None))
            # the server scores each prompt token in Python: short prompts keep this test short
            rho, gain_diff, token_diff = agreement(remote, transformers_scorer, MADE_UP)
            assert rho >= 0.99 and gain_diff < 0.02 and token_diff < 0.02  # measured 0.0036
            rho, gain_diff, token_diff = agreement(remote, llama_scorer, MADE_UP)
            assert rho >= 0.99 and gain_diff < 0.02 and token_diff < 0.02
    finally:
        llama_scorer.alpha = transformers_scorer.alpha = 0.5
