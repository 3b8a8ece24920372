"""Neural models on transformers: name resolution, the bi-encoder, batching.

Later families (cross-encoder, late interaction, LLM reranker, ONNX) live beside these, one file
each, and share :mod:`ragsift.models.batching`.
"""

from ragsift.models.bi_encoder import BiEncoder
from ragsift.models.hub import PACKAGED_MODELS, resolve_model

__all__ = ["PACKAGED_MODELS", "BiEncoder", "resolve_model"]
