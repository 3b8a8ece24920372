"""Stella/Jasper vector distillation: a small bi-encoder learns a larger one's vectors.

The teacher encodes every training text once (vectors cached in ``<out>.checkpoints/``, so a
resumed run does not encode again); the student is trained with the weighted sum of the three
losses of :mod:`ragsift.train.losses` (cosine through a learned projection to the teacher's
dimension, in-batch similarity matrix, relative similarity). The saved student is a plain
sentence-transformers folder (the projection is a training device and is not saved).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ragsift.atomic import atomic_file
from ragsift.models.bi_encoder import BiEncoder
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


def distillation_texts(source: str | Path, limit: int = 0) -> list[str]:
    """Texts of a BEIR folder (queries, then ``title + text`` of the corpus) or of a jsonl
    with a ``text`` field; the first ``limit`` (0: all)."""
    from ragsift.data.beir import iter_corpus, load_queries
    from ragsift.data.jsonl import field_str, read_jsonl

    path = Path(source)
    if path.is_dir():
        texts = list(load_queries(path).values())
        texts += [doc.full_text() for doc in iter_corpus(path)]
    else:
        texts = [field_str(row, "text", path, line) for line, row in read_jsonl(path)]
    return texts[:limit] if limit else texts


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
            raise ValueError("vector-distill needs a teacher (--set teacher=MODEL)")
        self.encoder = BiEncoder.from_pretrained(config.model, device="cpu",
                                                 attention_dropout=config.attention_dropout_rate)
        self.texts = distillation_texts(config.data, config.max_texts)
        self.targets = self._teacher_vectors()
        self.module = _ProjectedStudent(self.encoder, self.targets.shape[1], config.seed)

    def _teacher_vectors(self) -> np.ndarray:
        from ragsift.train.trainer import checkpoints_dir

        cache = checkpoints_dir(self.config.out) / "teacher_vectors.npy"
        meta = cache.with_suffix(".json")
        key = {"teacher": self.config.teacher, "texts": len(self.texts),
               "max_length": self.config.max_length}
        if cache.is_file() and meta.is_file() and json.loads(meta.read_text()) == key:
            return np.load(cache)
        teacher = BiEncoder.from_pretrained(self.config.teacher, device="cpu",
                                            max_length=self.config.max_length)
        logger.info("encoding %d texts with the teacher %s", len(self.texts),
                    self.config.teacher)
        vectors = teacher.encode(self.texts, show_progress=True)
        with atomic_file(cache, "wb") as handle:
            np.save(handle, vectors)
        with atomic_file(meta) as handle:
            handle.write(json.dumps(key))
        return vectors

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
