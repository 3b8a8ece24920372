"""Rerankers: one API (:class:`Reranker`) over model families.

``Reranker.load(path_or_name)`` picks the family from the model's config. Adding a family is one
module plus one :func:`register_family` line below.
"""

from ragsift.rerank.base import Hit, Reranker, register_family
from ragsift.rerank.calibration import Calibration, expected_calibration_error
from ragsift.rerank.colbert import LateInteractionReranker, is_late_interaction
from ragsift.rerank.cross_encoder import CrossEncoderReranker, is_cross_encoder
from ragsift.rerank.llm import CausalLMReranker, is_causal_lm

register_family("colbert", LateInteractionReranker, is_late_interaction)
register_family("cross-encoder", CrossEncoderReranker, is_cross_encoder)
register_family("llm", CausalLMReranker, is_causal_lm)

__all__ = [
    "Calibration",
    "CausalLMReranker",
    "CrossEncoderReranker",
    "Hit",
    "LateInteractionReranker",
    "Reranker",
    "expected_calibration_error",
    "register_family",
]
