"""Stella/Jasper vector distillation: a small bi-encoder learns a larger one's vectors.

The teacher encodes every training text once: its vectors go to the embedding cache
(:mod:`ragsift.retrieve.embedding_cache`, keyed by the teacher's fingerprint and the texts),
so a resumed run, or a new run with other loss settings, does not encode again. The student
is trained with the weighted sum of the three losses of :mod:`ragsift.train.losses` (cosine
through a learned projection to the teacher's dimension, in-batch similarity matrix,
relative similarity). The saved student is a plain sentence-transformers folder (the
projection is a training device and is not saved).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ragsift.errors import RagsiftError
from ragsift.models.bi_encoder import BiEncoder
from ragsift.retrieve.embedding_cache import EmbeddingCache, default_cache_dir
from ragsift.train.config import VectorDistillConfig
from ragsift.train.losses import (
    cosine_distillation,
    relative_similarity_distillation,
    similarity_matrix_distillation,
)
from ragsift.train.task import TrainingTask
from ragsift.train.tasks.embedding import EncoderModule, dense_run, save_bi_encoder
from ragsift.types import Corpus, Queries, Run

logger = logging.getLogger(__name__)

_TEACHER_BLOCK = 4096  # texts per cached block of teacher vectors


def distillation_texts(source: str | Path, limit: int | None = None, split: str = "train"
                       ) -> list[str]:
    """Texts of a BEIR folder (its queries, then ``title + text`` of the corpus) or of a jsonl
    with a ``text`` field; the first ``limit`` (``None``: all).

    A BEIR folder with a ``split`` qrels file gives only the queries judged in that split, so
    the queries of other splits (the test queries a student is evaluated on) stay unseen; a
    folder without it gives all its queries."""
    from ragsift.data.beir import iter_corpus, load_qrels, load_queries, qrels_path
    from ragsift.data.jsonl import field_str, read_jsonl

    path = Path(source)
    if path.is_dir():
        queries = load_queries(path)
        try:
            judged = load_qrels(qrels_path(path, split))
        except FileNotFoundError:  # no such split: every query is unlabelled text
            judged = queries
        queries = {qid: text for qid, text in queries.items() if qid in judged}
        texts = list(queries.values())
        texts += [doc.full_text() for doc in iter_corpus(path)]
    else:
        texts = [field_str(row, "text", path, line) for line, row in read_jsonl(path)]
    return texts[:limit]


class _TextsWithTargets(Dataset):
    def __init__(self, texts: list[str], targets: np.ndarray) -> None:
        self.texts, self.targets = texts, targets

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> tuple[str, np.ndarray]:
        return self.texts[index], self.targets[index]


class _ProjectedStudent(EncoderModule):
    def __init__(self, encoder: BiEncoder, teacher_dim: int, seed: int) -> None:
        super().__init__(encoder)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.projection = torch.nn.Linear(encoder.dim, teacher_dim, bias=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                prompt_length: int = 0, **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
        vectors = self.encoder.embed({"input_ids": input_ids, "attention_mask": attention_mask},
                                     int(prompt_length))
        return vectors, self.projection(vectors)


class VectorDistillTask(TrainingTask):
    """Distil ``config.teacher``'s vectors into ``config.model``."""

    config: VectorDistillConfig

    def __init__(self, config: VectorDistillConfig) -> None:
        super().__init__(config)
        if not config.teacher:
            raise RagsiftError("vector-distill needs a teacher (config key teacher, or "
                               "--set teacher=MODEL)")
        self.encoder = BiEncoder.from_pretrained(config.model, device="cpu",
                                                 attention_dropout=config.attention_dropout)
        self.texts = distillation_texts(config.data, config.max_texts, config.split)
        self.targets = self._teacher_vectors()
        self.module = _ProjectedStudent(self.encoder, self.targets.shape[1], config.seed)

    def _teacher_vectors(self) -> np.ndarray:
        """The teacher's vectors of :attr:`texts`, from the embedding cache when an earlier
        run (any loss settings) encoded the same texts with the same teacher and length."""
        teacher = BiEncoder.from_pretrained(self.config.teacher, device="cpu",
                                            max_length=self.config.max_length)
        # its own folder: these are plain encode() vectors, with no document prompt
        cache = EmbeddingCache(default_cache_dir(), f"{teacher.fingerprint()}-distill")
        blocks = [cache.get_or_compute(self.texts[start:start + _TEACHER_BLOCK],
                                       lambda texts: teacher.encode(texts, show_progress=True))
                  for start in range(0, len(self.texts), _TEACHER_BLOCK)]
        logger.info("teacher %s: %d texts, %d blocks from the embedding cache %s, %d encoded",
                    self.config.teacher, len(self.texts), cache.hits, cache.folder, cache.misses)
        return np.concatenate(blocks)

    def dataset(self) -> Dataset:
        return _TextsWithTargets(self.texts, self.targets)

    def collate(self, items: Sequence[tuple[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        features, prompt = self.encoder.tokenize([text for text, _ in items], "",
                                                 self.config.max_length)
        return {**features, "prompt_length": prompt,
                "teacher_vectors": torch.from_numpy(np.stack([t for _, t in items]))}

    def loss(self, outputs: tuple[torch.Tensor, torch.Tensor],
             batch: dict[str, torch.Tensor]) -> torch.Tensor:
        student, projected = outputs
        teacher = batch["teacher_vectors"].to(student.dtype)
        config = self.config
        return (config.cosine_weight * cosine_distillation(projected, teacher)
                + config.similarity_weight * similarity_matrix_distillation(student, teacher)
                + config.relative_weight * relative_similarity_distillation(
                    student, teacher, config.relative_margin))

    def save(self, folder: Path) -> None:
        save_bi_encoder(self.encoder, folder)

    def run(self, queries: Queries, corpus: Corpus, candidates: Run) -> Run:
        return dense_run(self.encoder, queries, corpus)
