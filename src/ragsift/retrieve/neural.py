"""The shared part of the retrievers that encode text with a neural model (dense, SPLADE,
ColBERT): the model loaded from a name, its name in the manifest, the document ids, and the
corpus encoded in blocks with a progress bar.

A subclass sets ``model_class`` (the model family, with ``from_pretrained(name, **options)``
and a ``name``) and keeps only its own index structure: a vector store, a sparse matrix or a
token index.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

from tqdm.auto import tqdm

from ragsift.retrieve.base import Retriever, refuse_other_model
from ragsift.types import Corpus, Document


class NeuralRetriever(Retriever):
    """A :class:`Retriever` over a model that encodes queries and documents.

    Args:
        encoder: a loaded ``model_class`` instance, or a model name/path to load one from.
        encoder_options: arguments for ``model_class.from_pretrained`` when ``encoder`` is a
            name (ignored for a loaded model).
        show_progress: show a progress bar while indexing.

    Attributes:
        encoder: the loaded model.
        doc_ids: the indexed document ids, in index order (position ``i`` is document ``i``).
    """

    #: The model family (``BiEncoder``, ``SpladeEncoder``, ``LateInteractionModel``).
    model_class: ClassVar[type]

    def __init__(self, encoder: Any, encoder_options: dict[str, Any] | None = None,
                 show_progress: bool = False) -> None:
        if not isinstance(encoder, self.model_class):
            encoder = self.model_class.from_pretrained(encoder, **(encoder_options or {}))
        self.encoder = encoder
        self.show_progress = show_progress
        self.doc_ids: list[str] = []

    @property
    def model_name(self) -> str:
        """The loaded model's name (a packaged name, hub id or folder), as manifests record."""
        return self.encoder.name

    @property
    def num_documents(self) -> int:
        return len(self.doc_ids)

    def _blocks(self, corpus: Corpus, block_size: int) -> Iterator[list[Document]]:
        """The documents of ``corpus`` in order, ``block_size`` at a time, under a progress bar.

        :attr:`doc_ids` is emptied first and grows by a block's ids when the caller asks for
        the next block (or ends the loop), so during a block it holds the ids of the blocks
        before it: ``len(self.doc_ids)`` is the block's first position.
        """
        self.doc_ids = []
        items = iter(corpus.items())
        with tqdm(total=len(corpus), desc="index", unit="doc",
                  disable=not self.show_progress) as progress:
            while block := list(islice(items, block_size)):
                yield [doc for _, doc in block]
                self.doc_ids.extend(doc_id for doc_id, _ in block)
                progress.update(len(block))

    def _write_doc_ids(self, folder: Path) -> None:
        """Write :attr:`doc_ids` to ``folder/doc_ids.json``."""
        (folder / "doc_ids.json").write_text(json.dumps(self.doc_ids))

    def _read_doc_ids(self, folder: Path) -> None:
        """Set :attr:`doc_ids` from ``folder/doc_ids.json`` (checked by ``load_checked``)."""
        self.doc_ids = json.loads((folder / "doc_ids.json").read_text())

    @classmethod
    def _index_model(cls, folder: Path, manifest: dict[str, Any], encoder: Any | None,
                     **settings: Any) -> Any:
        """The model to query the saved index in ``folder`` with: ``encoder`` when given (it
        must be the one the index was built with, else :class:`IndexMismatchError`), else the
        manifest's model loaded with ``settings`` (the lengths and options the index was built
        with)."""
        refuse_other_model(folder, manifest, encoder)
        if encoder is not None:
            return encoder
        return cls.model_class.from_pretrained(manifest["model"], **settings)

