"""NeuralRetriever, the base of the dense, SPLADE and ColBERT retrievers: the model loaded by
name, the corpus in blocks with the ids growing block by block, and the model of a saved index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ragsift.errors import IndexMismatchError
from ragsift.retrieve.neural import NeuralRetriever
from ragsift.types import Document


class FakeModel:
    def __init__(self, name: str, **options: Any) -> None:
        self.name, self.options = name, options

    @classmethod
    def from_pretrained(cls, name: str, **options: Any) -> FakeModel:
        return cls(name, **options)


class BlockRecorder(NeuralRetriever):
    """Indexing records each block's ids and the position ``doc_ids`` gives it."""

    model_class = FakeModel

    def index(self, corpus):
        self.seen = [(len(self.doc_ids), [doc.id for doc in block])
                     for block in self._blocks(corpus, block_size=2)]

    def search(self, queries, k=100):
        return {}

    def config(self):
        return {}

    def _save_files(self, folder):
        self._write_doc_ids(folder)

    @classmethod
    def _load_files(cls, folder, manifest, **options):
        raise NotImplementedError


def test_a_name_is_loaded_with_the_options_and_a_model_is_kept():
    loaded = BlockRecorder("org/model", encoder_options={"max_length": 64})
    assert isinstance(loaded.encoder, FakeModel) and loaded.model_name == "org/model"
    assert loaded.encoder.options == {"max_length": 64}
    model = FakeModel("mine")
    assert BlockRecorder(model, encoder_options={"max_length": 64}).encoder is model


def test_blocks_come_in_corpus_order_and_ids_grow_after_each(tmp_path: Path):
    corpus = {f"d{i}": Document(f"d{i}", f"text {i}") for i in range(5)}
    retriever = BlockRecorder(FakeModel("m"))
    retriever.doc_ids = ["stale"]
    retriever.index(corpus)
    assert retriever.seen == [(0, ["d0", "d1"]), (2, ["d2", "d3"]), (4, ["d4"])]
    assert retriever.doc_ids == list(corpus) and retriever.num_documents == 5
    retriever._save_files(tmp_path)
    reread = BlockRecorder(FakeModel("m"))
    reread._read_doc_ids(tmp_path)
    assert reread.doc_ids == list(corpus)


def test_the_model_of_a_saved_index(tmp_path: Path):
    manifest = {"model": "built-with"}
    loaded = BlockRecorder._index_model(tmp_path, manifest, None, max_length=32)
    assert loaded.name == "built-with" and loaded.options == {"max_length": 32}
    given = FakeModel("built-with")
    assert BlockRecorder._index_model(tmp_path, manifest, given, max_length=32) is given
    with pytest.raises(IndexMismatchError, match="refusing to query it with 'other'"):
        BlockRecorder._index_model(tmp_path, manifest, FakeModel("other"))
