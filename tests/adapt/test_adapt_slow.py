"""``ragsift adapt`` with the real models (SmolLM2-135M writing the queries, MiniLM-L6 adapted
and as its own teacher) on a slice of SciFact, evaluated against base MiniLM on the slice's
test qrels. Slow: skipped unless ``-m slow``; skipped when ../shared/datasets/scifact is
absent. ``RAGSIFT_SLOW_DOCS`` sets the unjudged documents in the slice (default 300)."""

from __future__ import annotations

import json
import os

import pytest

from ragsift.adapt.config import load_adapt_config
from ragsift.adapt.stages import STATE_FILE, adapt
from ragsift.data.beir import load_beir
from ragsift.evaluate import evaluate
from ragsift.retrieve.spec import build_retriever
from tests.conftest import shared_dataset


def ndcg_at_10(model: str, corpus, queries, qrels) -> float:
    retriever = build_retriever(f"dense:{model}", dense_options={"show_progress": False})
    retriever.index(corpus)
    return evaluate(qrels, retriever.search(queries, k=10), ["ndcg@10"]).mean["ndcg@10"]


@pytest.mark.slow
def test_adapting_minilm_to_a_scifact_slice(tmp_path):
    data = load_beir(shared_dataset("scifact"), "test")
    judged = {d for docs in data.qrels.values() for d in docs}
    filler = int(os.environ.get("RAGSIFT_SLOW_DOCS", "0")) or 300
    keep = judged | set(list(data.corpus)[:filler])
    corpus = {d: doc for d, doc in data.corpus.items() if d in keep}
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"_id": d, "title": doc.title, "text": doc.text}) + "\n"
                            for d, doc in corpus.items()))
    config = load_adapt_config(None, {"docs": 48, "max_steps": 8, "batch_size": 8})
    result = adapt(path, tmp_path / "run", config)
    state = json.loads((tmp_path / "run" / STATE_FILE).read_text())
    assert state["stages"]["synthetic"]["kept"] > 24  # most questions find their passage
    assert state["stages"]["model"]["steps"] == 8

    base = ndcg_at_10("minilm-l6", corpus, data.queries, data.qrels)
    adapted = ndcg_at_10(str(result.model), corpus, data.queries, data.qrels)
    print(f"nDCG@10 on the slice ({len(corpus)} documents): base {base:.4f}, adapted "
          f"{adapted:.4f}")
    # measured 2026-12-05 (566 documents, 300 queries): base 0.8351, adapted 0.8404 (43 of
    # 48 queries kept); eight steps move the model a little and must not break it
    assert adapted >= base - 0.01
