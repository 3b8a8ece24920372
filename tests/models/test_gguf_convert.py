"""GGUF conversion for the llama.cpp backend: the tensor types of the converted files (read back
with the ``gguf`` package), the cache, the BF16 generator against the F32 one (greedy answers and
the log-probs of their tokens, by numpy from llama.cpp's logits), and the errors of unknown or
misplaced ``weights``."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from ragsift.errors import DataFormatError, UsageError

QUESTION = "What is the capital of France?"
# Largest per-token log-prob difference between the BF16 and the F32 copy over the greedy F32
# answers of three short prompts, measured 2026-12-05 (1 thread): 0.046. The Q8_0 copy and the
# packaged Q4_1 file differ from F32 by 0.10 to 0.31 on the same tokens.
BF16_LOG_PROB_BOUND = 0.1


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """A cache folder for the whole module, so each copy is converted once (the copies take
    ~1 GB; removed after the module)."""
    folder = tmp_path_factory.mktemp("gguf-cache")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def cache(shared_cache, monkeypatch):
    """``$RAGSIFT_CACHE_DIR`` set to :func:`shared_cache` (over conftest's per-test one)."""
    monkeypatch.setenv("RAGSIFT_CACHE_DIR", str(shared_cache))
    return shared_cache


def tensor_types(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Name -> (tensor type, shape) of every tensor of a GGUF file."""
    from gguf import GGUFReader

    return {t.name: (t.tensor_type.name, tuple(int(n) for n in t.shape))
            for t in GGUFReader(path).tensors}


@pytest.fixture(scope="module")
def source_types(gguf) -> dict[str, tuple[str, tuple[int, ...]]]:
    """:func:`tensor_types` of the packaged GGUF (read once: GGUFReader takes seconds)."""
    return tensor_types(gguf)


@pytest.mark.parametrize(("weights", "tensor_type"), [("bf16", "BF16"), ("q8_0", "Q8_0")])
def test_converted_tensors_have_the_asked_type(gguf, cache, source_types, weights, tensor_type):
    from ragsift.models.generation.gguf_convert import converted_gguf

    path = converted_gguf(gguf, weights)
    assert path.parent.parent == cache / f"gguf-{weights}"
    source, converted = source_types, tensor_types(path)
    assert {n: s for n, (_, s) in converted.items()} == {n: s for n, (_, s) in source.items()}
    # the quantised matrices (Q4_1, one Q8_0) take the new type; the F32 norms stay F32
    expected = {n: "F32" if kind == "F32" else tensor_type for n, (kind, _) in source.items()}
    assert {n: kind for n, (kind, _) in converted.items()} == expected
    assert sum(kind == tensor_type for kind in expected.values()) == 211


def test_second_call_returns_the_cached_copy(gguf, cache, monkeypatch):
    import llama_cpp

    from ragsift.models.generation.gguf_convert import converted_gguf

    path = converted_gguf(gguf, "bf16")
    made = path.stat().st_mtime_ns

    def fail(*args):
        raise AssertionError("converted again")

    monkeypatch.setattr(llama_cpp, "llama_model_quantize", fail)
    assert converted_gguf(gguf, "bf16") == path and path.stat().st_mtime_ns == made
    assert converted_gguf(gguf, "native") == gguf


def test_file_hash_is_read_once_per_version_of_the_file(tmp_path, monkeypatch):
    from ragsift.models.generation import gguf_convert

    path = tmp_path / "model.gguf"
    path.write_bytes(b"weights" * 1000)
    assert gguf_convert.file_sha256(path) == hashlib.sha256(b"weights" * 1000).hexdigest()
    reads = []
    monkeypatch.setattr(gguf_convert, "hash_file",
                        lambda p: reads.append(p) or hashlib.sha256(p.read_bytes()).hexdigest())
    gguf_convert.file_sha256(path)
    assert reads == []
    path.write_bytes(b"other weights")
    assert gguf_convert.file_sha256(path) == hashlib.sha256(b"other weights").hexdigest()
    assert reads == [path]


def greedy_log_probs(path: Path, prompt: list[int], answer: list[int]) -> np.ndarray:
    """Log-probs of the ``answer`` tokens after ``prompt`` under the GGUF ``path`` (a
    log-softmax by numpy of llama.cpp's logits at every position)."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, n_threads=1, logits_all=True,
                          verbose=False)
    llm.eval(prompt + answer)
    logits = np.asarray(llm.scores[len(prompt) - 1:len(prompt) + len(answer) - 1],
                        dtype=np.float64)
    log_probs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    llm.close()
    return log_probs[np.arange(len(answer)), answer]


def test_bf16_generator_answers_as_the_f32_one(gguf, cache):
    from ragsift.models.generation.llama_cpp_generator import LlamaCppGenerator

    answers, generators = {}, {}
    for weights in ("f32", "bf16"):
        generator = LlamaCppGenerator.from_pretrained("smollm2-135m", weights=weights,
                                                      n_threads=1, max_new_tokens=16)
        answers[weights] = generator.complete([generator.encode(QUESTION)])[0]
        generators[weights] = generator
    assert "Paris" in answers["f32"]
    assert answers["bf16"] == answers["f32"]
    assert generators["bf16"].model_path.name.endswith(".bf16.gguf")
    prompt = generators["f32"].encode(QUESTION)
    tokens = generators["f32"].llm.tokenize(answers["f32"].encode(), add_bos=False)
    reference = greedy_log_probs(generators["f32"].model_path, prompt, tokens)
    bf16 = greedy_log_probs(generators["bf16"].model_path, prompt, tokens)
    assert np.abs(bf16 - reference).max() < BF16_LOG_PROB_BOUND
    assert generators["bf16"].fingerprint() != generators["f32"].fingerprint()


def test_unknown_weights_name_the_allowed_values(gguf, cache):
    from ragsift.models.generation.gguf_convert import converted_gguf
    from ragsift.models.generation.llama_cpp_generator import LlamaCppGenerator

    with pytest.raises(UsageError, match="'int4': use one of native, f32, bf16, f16, q8_0"):
        converted_gguf(gguf, "int4")
    with pytest.raises(UsageError, match="'q4_k': use one of native, f32, bf16, f16, q8_0"):
        LlamaCppGenerator.from_pretrained("smollm2-135m", weights="q4_k")


@pytest.mark.parametrize("spec", ["transformers:smollm2-135m", "openai:some-model"])
def test_weights_on_another_backend_are_refused(spec):
    from ragsift.models.generation.generator import load_generator

    with pytest.raises(UsageError, match="only the llama-cpp backend converts"):
        load_generator(spec, weights="bf16")


def test_rag_config_passes_llm_weights_to_the_generator():
    from ragsift.config_file import load_dataclass
    from ragsift.rag.pipeline import RagConfig

    config = load_dataclass(RagConfig, None, {"llm_weights": "q8_0"})
    assert config.generator_options()["weights"] == "q8_0"
    assert RagConfig().generator_options()["weights"] == "native"
    with pytest.raises(DataFormatError, match="llm_weights"):
        load_dataclass(RagConfig, None, {"llm_weights": "int4"})
