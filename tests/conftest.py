"""Shared fixtures: a tiny BEIR folder, the packaged MiniLM, and a tiny random BERT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"

DOCS = {
    "d1": ("Cats", "Cats are small domesticated carnivorous mammals that sleep a lot."),
    "d2": ("Dogs", "Dogs were domesticated from wolves and are loyal companions."),
    "d3": ("Python", "Python is a programming language that emphasises readability."),
    "d4": ("BM25", "BM25 ranks documents by term frequency and inverse document frequency."),
    "d5": ("", "The Eiffel Tower is a wrought-iron lattice tower in Paris, France."),
    "d6": ("Rust", "Rust is a systems programming language focused on memory safety."),
    "d7": ("Wolves", "Wolves live and hunt in packs across the northern hemisphere."),
    "d8": ("Search", "Dense retrieval encodes queries and documents into vectors."),
}
QUERIES = {
    "q1": "which animals sleep a lot",
    "q2": "programming language readability",
    "q3": "ranking documents with term frequency",
    "q4": "tower in paris",
    "q5": "where do wolves hunt",
}
QRELS = {"q1": {"d1": 1}, "q2": {"d3": 2, "d6": 1}, "q3": {"d4": 1}, "q4": {"d5": 1},
         "q5": {"d7": 1, "d2": 1}}


def write_beir(folder: Path, docs=DOCS, queries=QUERIES, qrels=QRELS, header=True) -> Path:
    """Write a BEIR folder from plain dicts; returns the folder."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w") as f:
        for doc_id, (title, text) in docs.items():
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w") as f:
        for qid, text in queries.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    with open(folder / "qrels" / "test.tsv", "w") as f:
        if header:
            f.write("query-id\tcorpus-id\tscore\n")
        for qid, judged in qrels.items():
            for doc_id, rel in judged.items():
                f.write(f"{qid}\t{doc_id}\t{rel}\n")
    return folder


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "tiny")


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGSIFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from ragsift.models.hub import resolve_model

    return resolve_model("minilm-l6")


def build_tiny_bert(folder: Path, tokenizer_dir: Path, seed: int = 0,
                    dropout: float = 0.1) -> Path:
    """A 2-layer, 32-wide BERT bi-encoder (random weights, the given tokenizer, mean pooling,
    normalised) saved in the sentence-transformers layout at ``folder``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from ragsift.models.bi_encoder import BiEncoder
    from ragsift.models.st_layout import SentenceTransformerLayout

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    layout = SentenceTransformerLayout(transformer_dir=Path("."), pooling="mean", normalize=True,
                                       max_seq_length=64)
    return BiEncoder(BertModel(config), tokenizer, layout, name="tiny", device="cpu").save(folder)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    """A 2-layer, 32-wide BERT with random weights and MiniLM's tokenizer, in the ST layout."""
    return build_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert", minilm_dir)


def shared_dataset(name: str) -> Path:
    """A folder of ../shared/datasets, or skip the test when it is absent."""
    folder = SHARED / name
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"{folder} not present")
    return folder


def build_cross_encoder(folder: Path, tokenizer_dir: Path, num_labels: int, seed: int) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from ragsift.rerank import CrossEncoderReranker

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        num_labels=num_labels)
    model = BertForSequenceClassification(config)
    return CrossEncoderReranker(model, tokenizer, max_length=128, device="cpu").save(folder)


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory, minilm_dir) -> Path:
    return build_cross_encoder(tmp_path_factory.mktemp("ce") / "one-label", minilm_dir, 1, 0)


@pytest.fixture(scope="session")
def tiny_cross_encoder_2(tmp_path_factory, minilm_dir) -> Path:
    return build_cross_encoder(tmp_path_factory.mktemp("ce") / "two-labels", minilm_dir, 2, 1)


@pytest.fixture(scope="session")
def minilm_cross_encoder(tmp_path_factory, minilm_dir) -> Path:
    """MiniLM's encoder with a fresh (seeded) 1-logit head: real features, untrained head."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ragsift.rerank import CrossEncoderReranker

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(minilm_dir, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    folder = tmp_path_factory.mktemp("ce") / "minilm-fresh-head"
    return CrossEncoderReranker(model, tokenizer, max_length=256, device="cpu").save(folder)


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory, minilm_dir):
    """A 2-layer, 32-wide Llama with random weights and MiniLM's tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    config = LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id)
    folder = tmp_path_factory.mktemp("llm") / "tiny-llama"
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
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


def build_tiny_mlm(folder: Path, tokenizer_dir: Path, seed: int) -> Path:
    """A 2-layer, 32-wide BertForMaskedLM (a SPLADE encoder) with random weights, the given
    tokenizer, and an output bias drawn from N(0, 1): many positive logits, so dense sparse
    vectors and demanding comparisons."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    model = BertForMaskedLM(config)
    with torch.no_grad():
        model.cls.predictions.bias.normal_(0.0, 1.0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
