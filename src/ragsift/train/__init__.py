"""Training retrieval models on the Hugging Face Trainer: tasks (embedding, reranker, colbert,
llm-reranker), their losses (:mod:`ragsift.train.losses`) and configs."""

from ragsift.train.config import load_config
from ragsift.train.trainer import train

__all__ = ["load_config", "train"]
