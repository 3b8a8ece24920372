"""The ``pipeline`` config: a first stage, an optional reranker, an optional final fusion.

A YAML file with the keys of :class:`PipelineConfig` (see ``configs/pipeline-*.yaml``)::

    first_stage: [bm25, "dense:minilm-l6"]   # retriever specs; two or more are fused
    first_stage_fusion: rrf                  # rrf | convex
    rerank_model: cross-encoder-folder       # optional; any ragsift reranker
    rerank_top_n: 100
    final_fusion: convex                     # none | rrf | convex
    final_weight: 0.7
    hop_model: second-hop-folder             # optional; multi-hop questions
    k: 100

:func:`load_pipeline` reads it through :func:`ragsift.config_file.load_dataclass` (types,
ranges and unknown keys refused with the file and line) and then checks what types cannot say
(a spec that names no retriever kind, a weight per member, a final fusion without a reranker),
again naming the file and the line of the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ragsift.config_file import Range, load_dataclass, setting
from ragsift.errors import SettingError
from ragsift.models.onnx import BACKENDS
from ragsift.rerank.long_documents import STRATEGIES
from ragsift.retrieve.spec import HYBRID, RetrieverSpecError, parse_spec

LIMITS = {
    "k": Range(1), "depth": Range(1), "rrf_k": Range(0, low_open=True),
    "first_stage_weights": Range(0), "rerank_top_n": Range(1), "rerank_batch_size": Range(1),
    "rerank_max_length": Range(1), "final_weight": Range(0, 1), "hop_depth": Range(2),
    "hop_weight": Range(0, 1), "hop_rrf_k": Range(0, low_open=True),
    "hop_context_words": Range(1), "hop_max_length": Range(1),
}


class PipelineConfigError(SettingError):
    """A pipeline setting that cannot work; ``key`` names the config key it is about."""


@dataclass
class PipelineConfig:
    """One retrieval pipeline (see the module docstring and :mod:`ragsift.pipeline.runner`).

    Raises:
        PipelineConfigError: a setting that cannot work (a bad spec, a weight count that is
            not the member count, a final fusion without a reranker, ``k > rerank_top_n``).

    Example:
        >>> PipelineConfig(first_stage=["bm25", "dense:minilm-l6"]).first_stage_spec
        'hybrid:bm25+dense:minilm-l6'
        >>> PipelineConfig(first_stage=["bm25"], final_fusion="rrf")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ragsift.pipeline.config.PipelineConfigError: final_fusion: fuses the reranker's ...
    """

    first_stage: list[str] = setting(
        default_factory=lambda: ["bm25"],
        help="retriever specs (bm25, dense:MODEL with MODEL a packaged name, a hub id or a "
             "fine-tuned folder, ...); two or more are fused")
    first_stage_fusion: Literal["rrf", "convex"] = setting(
        "rrf", "how several first-stage runs are fused")
    first_stage_weights: list[float] | None = setting(
        None, "one fusion weight per first-stage spec (null: all 1)")
    normalization: Literal["minmax", "zscore"] = setting(
        "minmax", "per-query score normalisation of convex fusion (both fusions)")
    rrf_k: float = setting(60.0, "the RRF constant k (both fusions)")
    depth: int = setting(100, "documents each first-stage retriever returns before fusion")
    rerank_model: str | None = setting(
        None, "reranker folder, packaged name or hub id (null: no reranking)")
    rerank_top_n: int = setting(100, "first-stage documents the reranker re-scores")
    rerank_batch_size: int = setting(32, "reranker batch size")
    rerank_backend: str = setting("torch", f"reranker backend: {', '.join(BACKENDS)}")
    rerank_max_length: int | None = setting(None, "most tokens per pair (null: the model's)")
    rerank_long_doc: str = setting(
        "max", f"passages longer than the model takes: {', '.join(STRATEGIES)}")
    final_fusion: Literal["none", "rrf", "convex"] = setting(
        "none", "fuse the reranker's scores with the first stage's (none: reranker only)")
    final_weight: float = setting(
        0.5, "the reranker's weight w in the final fusion; the first stage gets 1 - w")
    hop_model: str | None = setting(
        None, "second-hop reranker (ragsift.pipeline.second_hop; null: no second hop)")
    hop_depth: int = setting(30, "the second hop re-orders ranks 2 .. hop_depth")
    hop_weight: float = setting(0.5, "the second hop's weight w in its RRF with the run")
    hop_rrf_k: float = setting(5.0, "the RRF constant of the second hop's fusion")
    hop_context_words: int = setting(64, "words of the first document in the hop query")
    hop_max_length: int | None = setting(None, "most tokens per second-hop pair (null: the "
                                               "model's)")
    k: int = setting(100, "documents per query in the output run")

    def __post_init__(self) -> None:
        if not self.first_stage:
            raise PipelineConfigError("first_stage", "give at least one retriever spec")
        for i, spec in enumerate(self.first_stage):
            try:
                parsed = parse_spec(spec)
            except RetrieverSpecError as exc:
                raise PipelineConfigError(f"first_stage[{i}]", str(exc)) from None
            if parsed.kind == HYBRID:
                raise PipelineConfigError(f"first_stage[{i}]", "list the members of a hybrid "
                                          "as items of first_stage instead")
        weights = self.first_stage_weights
        if weights is not None and len(weights) != len(self.first_stage):
            raise PipelineConfigError("first_stage_weights", f"{len(weights)} weights for "
                                      f"{len(self.first_stage)} first-stage specs")
        if self.rerank_backend not in BACKENDS:
            raise PipelineConfigError("rerank_backend", f"must be one of {list(BACKENDS)}")
        if self.rerank_long_doc not in STRATEGIES:
            raise PipelineConfigError("rerank_long_doc", f"must be one of {list(STRATEGIES)}")
        if self.rerank_model is None and self.final_fusion != "none":
            raise PipelineConfigError("final_fusion", "fuses the reranker's scores with the "
                                      "first stage's, so it needs rerank_model")
        if self.rerank_model is not None and self.k > self.rerank_top_n:
            raise PipelineConfigError("k", f"{self.k} is more than rerank_top_n "
                                      f"({self.rerank_top_n}): the run holds reranked "
                                      "documents only")

    @property
    def first_stage_spec(self) -> str:
        """The first stage as one retriever spec: the spec itself, or a hybrid of them all."""
        if len(self.first_stage) == 1:
            return self.first_stage[0]
        return f"{HYBRID}:{'+'.join(self.first_stage)}"

    @property
    def candidates(self) -> int:
        """How many first-stage documents per query the later stages see."""
        return self.rerank_top_n if self.rerank_model is not None else self.k


def load_pipeline(path: str | Path) -> PipelineConfig:
    """The :class:`PipelineConfig` of the YAML file at ``path``.

    Raises:
        DataFormatError: bad YAML, an unknown key, a value of the wrong type or out of range,
            or a setting :class:`PipelineConfig` refuses; names the file, line and key.
    """
    return load_dataclass(PipelineConfig, path, what="a pipeline", limits=LIMITS)
