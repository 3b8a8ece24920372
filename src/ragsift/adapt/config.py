"""Settings of ``ragsift adapt``: one dataclass, read from YAML (``configs/adapt.yaml``) with
:func:`ragsift.config_file.load_dataclass`; command-line flags override the file.

Example:
    >>> config = load_adapt_config(None, {"docs": "20", "cross_encoder": "true"})
    >>> (config.docs, config.cross_encoder, config.generator, config.model)
    (20, True, 'smollm2-135m', 'minilm-l6')
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ragsift.config_file import Range, load_dataclass, setting
from ragsift.models.generation.gguf_convert import Weights


@dataclass
class AdaptConfig:
    """What each stage of :func:`ragsift.adapt.stages.adapt` does (see docs/training.md,
    "Domain adaptation without qrels")."""

    generator: str = setting("smollm2-135m", "generator spec of ragsift synth (a GGUF runs on "
                                             "llama.cpp when installed, else transformers)")
    model: str = setting("minilm-l6", "the bi-encoder to adapt: folder, packaged name or hub id")
    teacher: str | None = setting(None, "teacher scoring the mined candidates: a cross-encoder "
                                        "or any reranker or bi-encoder (null: the base model "
                                        "itself, as a bi-encoder)")
    teacher_temperature: float | None = setting(
        None, "teacher temperature of the KL loss (null: `temperature` for a bi-encoder "
              "teacher, whose scores are cosines; 1 for a reranker, whose scores are logits)")
    docs: int | None = setting(None, "documents asked for a synthetic query: a seeded random "
                                     "sample (null: all, or what the budget allows)")
    budget_minutes: float | None = setting(None, "time budget of one run (null: none)")
    synth_share: float = setting(0.5, "share of the budget synthesis may use")
    probe_docs: int = setting(16, "documents generated first to measure the generation speed")
    seed: int = setting(0, "seed of the document sample, the negatives and training")
    max_new_tokens: int = setting(32, "most tokens generated per query")
    max_passage_tokens: int = setting(256, "the passage is cut to this many tokens in the "
                                           "prompt")
    generator_batch_size: int = setting(8, "prompts per generation batch")
    llm_weights: Weights = setting("native", "tensor type llama.cpp runs the GGUF generator in "
                                             "(native: as packaged; bf16 is ~2x faster on CPUs "
                                             "with AVX512_BF16; ragsift synth --llm-weights)")
    round_trip_retriever: str = setting("bm25", "retriever spec of the round-trip filter")
    round_trip_k: int = setting(3, "keep a query when its document is in this top k")
    mine_retriever: str | None = setting(None, "retriever spec mining the negatives (null: "
                                               "dense:MODEL, the model being adapted)")
    candidates: int = setting(30, "retrieved candidates per query considered as negatives")
    negatives: int = setting(8, "negatives kept per query after the false-negative filter")
    filter: Literal["margin", "percpos", "none"] = setting(
        "percpos", "false-negative filter on the teacher's scores (ragsift mine --filter)")
    percent: float = setting(0.95, "percpos: drop candidates scoring above percent * s+")
    margin: float = setting(0.05, "margin: drop candidates scoring above s+ - margin")
    shard_size: int = setting(64, "documents or queries per shard of the sharded jobs")
    train_negatives: int = setting(3, "teacher-scored negatives per training group (drawn "
                                      "anew each epoch; queries without any are left out)")
    epochs: float = setting(1.0, "passes over the training rows")
    max_steps: int | None = setting(None, "optimizer steps (null: `epochs` decide)")
    batch_size: int = setting(32, "queries per step of the bi-encoder")
    learning_rate: float = setting(5e-5, "peak learning rate of the bi-encoder")
    temperature: float = setting(0.05, "InfoNCE temperature of the bi-encoder")
    max_length: int = setting(256, "most tokens per document in training")
    grad_cache_chunk: int | None = setting(
        16, "bi-encoder rows encoded with gradients at once (GradCache; the loss is the same, "
            "memory falls with it; null: the whole batch)")
    cross_encoder: bool = setting(False, "also train a cross-encoder reranker (DIR/reranker)")
    cross_encoder_model: str | None = setting(None, "starting model of the reranker (null: "
                                                    "`model`, with a fresh score head)")
    cross_encoder_batch_size: int = setting(8, "queries per step of the reranker")


_AT_LEAST_1 = Range(1)
#: The allowed range of every numeric setting, by key.
LIMITS: dict[str, Range] = {
    "teacher_temperature": Range(0, low_open=True), "docs": _AT_LEAST_1,
    "budget_minutes": Range(0, low_open=True), "synth_share": Range(0, 1, low_open=True),
    "probe_docs": _AT_LEAST_1, "seed": Range(0, 2**32 - 1), "max_new_tokens": _AT_LEAST_1,
    "max_passage_tokens": _AT_LEAST_1, "generator_batch_size": _AT_LEAST_1,
    "round_trip_k": _AT_LEAST_1, "candidates": _AT_LEAST_1, "negatives": _AT_LEAST_1,
    "percent": Range(0, 1), "margin": Range(0), "shard_size": _AT_LEAST_1,
    "train_negatives": _AT_LEAST_1, "epochs": Range(0, low_open=True), "max_steps": _AT_LEAST_1,
    "batch_size": _AT_LEAST_1, "learning_rate": Range(0, 1, low_open=True),
    "temperature": Range(0, low_open=True), "max_length": _AT_LEAST_1,
    "grad_cache_chunk": _AT_LEAST_1,
    "cross_encoder_batch_size": _AT_LEAST_1,
}

#: Settings that only bound a run's time or memory, not its result; a resumed run may change them.
RUN_ONLY = ("budget_minutes", "grad_cache_chunk")


def load_adapt_config(path: str | Path | None = None,
                      overrides: dict[str, Any] | None = None) -> AdaptConfig:
    """The settings of ``path`` (YAML, optional) with ``overrides`` applied (``None`` values
    ignored; strings parsed as ``--set`` values are).

    Raises:
        DataFormatError: an unknown key, a value of the wrong type or out of :data:`LIMITS`,
            naming the file (or ``<command line>``), line and key.
    """
    return load_dataclass(AdaptConfig, path, overrides, what="adapt", limits=LIMITS)


def fingerprint(config: AdaptConfig) -> dict[str, Any]:
    """The settings a resumed run must share with the first (all but :data:`RUN_ONLY`)."""
    return {k: v for k, v in dataclasses.asdict(config).items() if k not in RUN_ONLY}
