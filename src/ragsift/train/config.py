"""Training configurations: YAML files parsed into validated dataclasses, one per task.

A config file holds the keys of the task's dataclass at the top level; an unknown or repeated
key, a value of the wrong type and a number out of range (:data:`LIMITS`) are errors that
name the file, its line and the key (:mod:`ragsift.config_file`). Command-line flags override
the file.

Example ``configs/embedding-scifact.yaml``::

    model: minilm-l6
    data: ../shared/datasets/scifact
    learning_rate: 3.0e-5
    temperature: 0.05
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ragsift.config_file import Range, load_dataclass
from ragsift.errors import RagsiftError

Task = Literal["embedding", "reranker", "colbert", "llm-reranker", "vector-distill"]


@dataclass
class TrainConfig:
    """Settings every task shares.

    Data: ``data`` is a training jsonl or a BEIR folder (``split`` qrels give positives, BM25
    ranks ``negatives_skip+1 .. negatives_skip+negatives_depth`` give negatives).
    Evaluation: ``eval_data`` (a BEIR folder) is scored with nDCG@10 on ``eval_split`` every
    ``eval_steps`` and at the end, on at most ``eval_queries`` queries; ``eval_at_start`` also
    scores the starting model (step 0), the baseline of the run.
    Speed: ``attention_dropout`` >= 0 replaces the encoder's attention dropout (-1: keep the
    model's); 0 lets PyTorch use its fused attention kernel on CPUs (see
    :mod:`ragsift.models.dropout`).
    """

    model: str = ""
    data: str = ""
    out: str = ""
    split: str = "train"
    negatives: int = 7
    negatives_depth: int = 30
    negatives_skip: int = 0
    max_steps: int = -1
    epochs: float = 1.0
    batch_size: int = 16
    gradient_accumulation_steps: int = 1
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    gradient_checkpointing: bool = False
    save_steps: int = 500
    save_total_limit: int = 2
    logging_steps: int = 10
    eval_data: str = ""
    eval_split: str = "test"
    eval_steps: int = 0
    eval_at_start: bool = False
    eval_queries: int = 200
    eval_k: int = 50
    resume: bool = True
    query_max_length: int = 64
    max_length: int = 256
    attention_dropout: float = -1.0

    @property
    def attention_dropout_rate(self) -> float | None:
        """``attention_dropout``, or ``None`` (keep the model's own) when it is negative."""
        return None if self.attention_dropout < 0 else self.attention_dropout


@dataclass
class LoraSettings:
    """LoRA adapters (peft) instead of full fine-tuning when ``lora_r`` > 0; merged on save."""

    lora_r: int = 0
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj",
                                                             "o_proj"])


@dataclass
class DistillSettings:
    """Distillation from teacher scores in the data (``distill``, set per task): KL compares
    ``softmax(t / T_t)`` with ``softmax(s / T)`` where ``T`` is ``distill_temperature`` and
    ``T_t`` is ``distill_teacher_temperature`` (0: the same ``T``), for a teacher whose scores
    live on another scale than the student's. A fresh cross-encoder head learns a cosine
    teacher fastest with the same small ``T`` (0.05) on both sides; the saved cross-encoder has
    ``1 / T`` folded into its head (docs/training.md has the measurements).

    ``distill_label_weight`` ``w`` > 0 adds the labels (the positive, column 0 of each group)
    to the teacher: ``T^2 * w * CE(softmax(s / T), positive)`` on top of the distillation loss,
    Hinton et al.'s soft + hard targets, which corrects groups where the teacher ranks a
    negative above the judged positive."""

    distill_temperature: float = 1.0
    distill_teacher_temperature: float = 0.0
    distill_label_weight: float = 0.0


@dataclass
class EmbeddingConfig(TrainConfig, LoraSettings, DistillSettings):
    """Bi-encoder: InfoNCE over in-batch and hard negatives, optionally MRL.

    ``matryoshka_dims`` (e.g. ``[384, 256, 128, 64]``) with ``matryoshka_weights`` wraps the
    loss in MRL. ``gather`` shares negatives across processes under torchrun. With teacher
    scores, ``distill`` compares each query's own group with the teacher's scores and
    ``distill_label_weight`` ``w`` adds ``w`` times the InfoNCE above.
    """

    temperature: float = 0.05
    symmetric: bool = False
    gather: bool = True
    matryoshka_dims: list[int] = field(default_factory=list)
    matryoshka_weights: list[float] = field(default_factory=list)
    grad_cache_chunk: int = 0
    distill: Literal["", "kl", "margin-mse"] = ""
    pooling: Literal["", "mean", "max", "cls", "mean_sqrt_len", "lasttoken"] = ""
    query_prompt: str = ""
    document_prompt: str = ""
    negatives: int = 1
    batch_size: int = 32


@dataclass
class RerankerConfig(TrainConfig, DistillSettings):
    """Cross-encoder from any encoder (a fresh 1-logit head when it has none): groups of one
    positive and ``negatives`` negatives, loss ``listwise`` (softmax CE), ``pointwise`` (BCE)
    or ``ranknet``; with teacher scores in the data, ``distill`` (``kl`` or ``margin-mse``)
    replaces the label loss (``distill_label_weight`` adds a listwise one back). ``layers``
    > 0 keeps only ``layers`` of the model's transformer layers (a smaller, faster student
    initialised from a bigger model): by default (``layers_from: uniform``) ones spread over
    the depth, the last included, or with ``first`` the bottom ones
    (:mod:`ragsift.models.layers`). The head reads [CLS], and a model trained with mean pooling
    (all-MiniLM-L6-v2) only puts the input into [CLS] in its last layer: its spread across
    inputs relative to its size is 0.02-0.21 after layers 1-5 and 0.94 after layer 6, so a
    student made of the first layers starts from a constant (docs/training.md).

    ``hidden_distill_weight`` ``w`` > 0 (with ``layers``) also teaches the cut student the
    token states of the full model it was cut from, TinyBERT's hidden-state distillation:
    ``w * hidden_state_mse`` between the student's embedding output and each of its layers'
    outputs and the full model's embedding output and the outputs of the layers they were
    taken from (:func:`ragsift.train.losses.hidden_state_mse`). The full model runs frozen
    beside the student (about one more forward pass per step); the student alone is saved."""

    loss: Literal["listwise", "pointwise", "ranknet"] = "listwise"
    distill: Literal["", "kl", "margin-mse"] = ""
    layers: int = 0
    layers_from: Literal["first", "uniform"] = "uniform"
    hidden_distill_weight: float = 0.0
    batch_size: int = 4
    max_length: int = 384


@dataclass
class ColbertConfig(TrainConfig, DistillSettings):
    """ColBERT: MaxSim with in-batch and hard negatives (InfoNCE at ``temperature``), a fresh
    ``embedding_size`` projection when the model has none; ``distill`` uses teacher scores;
    ``grad_cache_chunk`` as for embeddings."""

    embedding_size: int = 128
    temperature: float = 1.0
    query_length: int = 32
    document_length: int = 180
    gather: bool = True
    distill: Literal["", "kl"] = ""
    grad_cache_chunk: int = 0
    negatives: int = 1
    batch_size: int = 16


@dataclass
class LLMRerankerConfig(TrainConfig, LoraSettings):
    """LLM reranker: LoRA adapters (peft) on a causal LM, trained with listwise CE on the yes/no
    log-odds; the adapters are merged into the saved model, which loads as a plain causal LM."""

    lora_r: int = 8
    negatives: int = 3
    batch_size: int = 2
    learning_rate: float = 2e-4
    max_length: int = 384


@dataclass
class VectorDistillConfig(TrainConfig):
    """Stella/Jasper vector distillation: a student bi-encoder learns a teacher bi-encoder's
    vectors on unlabelled texts (``data``: a BEIR folder's corpus and the queries judged in
    ``split``, or a jsonl of ``{"text"}``; at most ``max_texts``, queries first). Loss:
    ``cosine_weight * cosine + similarity_weight * similarity-matrix + relative_weight *
    relative-similarity``; a learned projection maps the student to the teacher's dimension
    for the cosine term (dropped on save)."""

    teacher: str = ""
    cosine_weight: float = 10.0
    similarity_weight: float = 200.0
    relative_weight: float = 20.0
    relative_margin: float = 0.015
    max_texts: int = 0
    batch_size: int = 32


_POSITIVE = Range(0, low_open=True)
_AT_LEAST_0 = Range(0)
_AT_LEAST_1 = Range(1)
_FRACTION = Range(0, 1)
#: The allowed range of every numeric training setting, by key (list fields: of each item).
LIMITS: dict[str, Range] = {
    "negatives": _AT_LEAST_0, "negatives_depth": _AT_LEAST_1, "negatives_skip": _AT_LEAST_0,
    "max_steps": Range(-1), "epochs": _POSITIVE, "batch_size": _AT_LEAST_1,
    "gradient_accumulation_steps": _AT_LEAST_1, "learning_rate": Range(0, 1, low_open=True),
    "warmup_ratio": _FRACTION, "weight_decay": _AT_LEAST_0, "max_grad_norm": _AT_LEAST_0,
    "seed": Range(0, 2**32 - 1), "save_steps": _AT_LEAST_1, "save_total_limit": _AT_LEAST_0,
    "logging_steps": _AT_LEAST_1, "eval_steps": _AT_LEAST_0, "eval_queries": _AT_LEAST_1,
    "eval_k": _AT_LEAST_1, "query_max_length": _AT_LEAST_1, "max_length": _AT_LEAST_1,
    "attention_dropout": Range(-1, 1), "lora_r": _AT_LEAST_0, "lora_alpha": _POSITIVE,
    "lora_dropout": _FRACTION, "distill_temperature": _POSITIVE,
    "distill_teacher_temperature": _AT_LEAST_0, "distill_label_weight": _AT_LEAST_0,
    "temperature": _POSITIVE, "matryoshka_dims": _AT_LEAST_1,
    "matryoshka_weights": _AT_LEAST_0, "grad_cache_chunk": _AT_LEAST_0, "layers": _AT_LEAST_0,
    "hidden_distill_weight": _AT_LEAST_0, "embedding_size": _AT_LEAST_1,
    "query_length": _AT_LEAST_1, "document_length": _AT_LEAST_1, "cosine_weight": _AT_LEAST_0,
    "similarity_weight": _AT_LEAST_0, "relative_weight": _AT_LEAST_0,
    "relative_margin": _AT_LEAST_0, "max_texts": _AT_LEAST_0,
}

CONFIGS: dict[str, type[TrainConfig]] = {
    "embedding": EmbeddingConfig, "reranker": RerankerConfig, "colbert": ColbertConfig,
    "llm-reranker": LLMRerankerConfig, "vector-distill": VectorDistillConfig,
}


def load_config(task: str, path: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The task's config from a YAML file (optional) with ``overrides`` applied (``None``
    values are ignored). Raises :class:`DataFormatError` naming the file, line and key of an
    unknown or repeated key, a value of the wrong type (never coerced: ``batch_size: true`` is
    refused) or a number out of its range (:data:`LIMITS`)."""
    if task not in CONFIGS:
        raise ValueError(f"unknown training task {task!r}; choose from {sorted(CONFIGS)}")
    config = load_dataclass(CONFIGS[task], path, overrides, what=f"{task} training",
                            limits=LIMITS)
    for required in ("model", "data", "out"):
        if not getattr(config, required):
            raise RagsiftError(f"{task} training needs {required!r} (config file or "
                               f"--{required})")
    return config
