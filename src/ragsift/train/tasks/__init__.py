"""One module per trainable model family; :func:`build_task` picks it by name."""

from __future__ import annotations

from ragsift.train.config import TrainConfig
from ragsift.train.task import TrainingTask


def build_task(name: str, config: TrainConfig) -> TrainingTask:
    """The training task ``name`` (embedding, reranker, colbert, llm-reranker,
    vector-distill) for ``config``."""
    if name == "embedding":
        from ragsift.train.tasks.embedding import EmbeddingTask

        return EmbeddingTask(config)
    if name == "reranker":
        from ragsift.train.tasks.reranker import RerankerTask

        return RerankerTask(config)
    if name == "colbert":
        from ragsift.train.tasks.colbert import ColbertTask

        return ColbertTask(config)
    if name == "llm-reranker":
        from ragsift.train.tasks.llm_reranker import LLMRerankerTask

        return LLMRerankerTask(config)
    if name == "vector-distill":
        from ragsift.train.tasks.vector_distill import VectorDistillTask

        return VectorDistillTask(config)
    raise ValueError(f"unknown training task {name!r}")
