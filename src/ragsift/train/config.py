"""Training configurations: YAML files parsed into validated dataclasses, one per task, and
:data:`TASKS`, the table of training tasks.

A config file holds the keys of the task's dataclass at the top level; an unknown or repeated
key, a value of the wrong type and a number out of range (:data:`LIMITS`) are errors that
name the file, its line and the key (:mod:`ragsift.config_file`). ``None`` (YAML ``null``, or
the key left out) means "not set" for the ``Optional`` keys. Command-line flags override the
file. Every key carries its help text, which ``ragsift train TASK --help`` prints.

Example ``configs/embedding-scifact.yaml``::

    model: minilm-l6
    data: ../shared/datasets/scifact
    learning_rate: 3.0e-5
    temperature: 0.05
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ragsift.config_file import Range, load_dataclass, setting
from ragsift.errors import SettingError, UsageError
from ragsift.train.registry import Entry, GroupLoss

Distill = Literal["kl", "margin-mse"]


@dataclass
class TrainConfig:
    """Settings every task shares."""

    model: str = setting("", "starting model: a folder, packaged name or hub id (required)")
    data: str = setting("", "a BEIR folder (qrels positives + BM25 negatives) or a training "
                            "jsonl (required)")
    out: str = setting("", "folder the trained model is written to (required)")
    split: str = setting("train", "qrels split of a BEIR folder to train on")
    negatives: int = setting(7, "hard negatives per positive")
    negatives_depth: int = setting(30, "BM25 ranks negatives are drawn from (after the skip)")
    negatives_skip: int = setting(0, "BM25 ranks skipped before drawing negatives")
    max_steps: int | None = setting(None, "optimizer steps (null: `epochs` decide)")
    epochs: float = setting(1.0, "passes over the data (when max_steps is null)")
    batch_size: int = setting(16, "queries (groups) per device step")
    gradient_accumulation_steps: int = setting(1, "device steps per optimizer step")
    learning_rate: float = setting(2e-5, "peak learning rate (linear warmup and decay)")
    warmup_ratio: float = setting(0.1, "fraction of the steps spent warming up")
    weight_decay: float = setting(0.01, "AdamW weight decay")
    max_grad_norm: float = setting(1.0, "gradient clipping norm")
    seed: int = setting(0, "seed of weights, negatives and data order")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = setting(
        "auto", "auto: bf16 on GPUs that support it, else fp32")
    gradient_checkpointing: bool = setting(False, "recompute activations to save memory")
    save_steps: int = setting(500, "checkpoint every this many steps")
    save_total_limit: int = setting(2, "checkpoints kept")
    logging_steps: int = setting(10, "log the loss every this many steps")
    eval_data: str | None = setting(None, "BEIR folder scored with nDCG@10 during training "
                                          "(null: no evaluation)")
    eval_split: str = setting("test", "qrels split of eval_data")
    eval_steps: int | None = setting(None, "evaluate every this many steps (null: only at the "
                                           "end)")
    eval_at_start: bool = setting(False, "also score the starting model (step 0)")
    eval_queries: int = setting(200, "evaluate on the first this many judged queries")
    eval_k: int = setting(50, "BM25 candidates per evaluation query")
    resume: bool = setting(True, "resume from the last complete checkpoint")
    query_max_length: int = setting(64, "most tokens per query")
    max_length: int = setting(256, "most tokens per document (per pair for cross-encoders)")
    attention_dropout: float | None = setting(
        None, "replace the encoder's attention dropout (null: keep the model's); 0 lets "
              "PyTorch use its fused attention kernel on CPUs")


@dataclass
class LoraSettings:
    """LoRA adapters (peft) instead of full fine-tuning; merged on save."""

    lora_r: int | None = setting(None, "LoRA rank (null: full fine-tuning)")
    lora_alpha: int = setting(16, "LoRA scaling alpha")
    lora_dropout: float = setting(0.05, "dropout on the LoRA path")
    lora_targets: list[str] = setting(default_factory=lambda: ["q_proj", "k_proj", "v_proj",
                                                               "o_proj"],
                                      help="module names that get adapters")


@dataclass
class DistillSettings:
    """Distillation from teacher scores in the data (``distill``, set per task): KL compares
    ``softmax(t / T_t)`` with ``softmax(s / T)`` where ``T`` is ``distill_temperature`` and
    ``T_t`` is ``distill_teacher_temperature`` (``None``: the same ``T``), for a teacher whose
    scores live on another scale than the student's. The saved cross-encoder has ``1 / T``
    folded into its head.

    ``distill_label_weight`` ``w`` > 0 adds the labels (the positive, column 0 of each group)
    to the teacher: ``T^2 * w * CE(softmax(s / T), positive)`` on top of the distillation loss,
    Hinton et al.'s soft + hard targets, which corrects groups where the teacher ranks a
    negative above the judged positive."""

    distill_temperature: float = setting(1.0, "student temperature T of the KL loss")
    distill_teacher_temperature: float | None = setting(
        None, "teacher temperature of the KL loss (null: the student's)")
    distill_label_weight: float = setting(0.0, "weight of the label cross-entropy added to "
                                               "the distillation loss")


@dataclass
class EmbeddingConfig(TrainConfig, LoraSettings, DistillSettings):
    """Bi-encoder: InfoNCE over in-batch and hard negatives, optionally MRL.

    ``matryoshka_dims`` (e.g. ``[384, 256, 128, 64]``) with ``matryoshka_weights`` wraps the
    loss in MRL. ``gather`` shares negatives across processes under torchrun. With teacher
    scores, ``distill`` compares each query's own group with the teacher's scores and
    ``distill_label_weight`` ``w`` adds ``w`` times the InfoNCE above.
    """

    temperature: float = setting(0.05, "InfoNCE temperature")
    symmetric: bool = setting(False, "add the document-to-query InfoNCE")
    gather: bool = setting(True, "share documents across processes under torchrun")
    matryoshka_dims: list[int] = setting(default_factory=list,
                                         help="MRL dimensions (empty: no MRL)")
    matryoshka_weights: list[float] = setting(default_factory=list,
                                              help="MRL weight per dimension (empty: all 1)")
    grad_cache_chunk: int | None = setting(None, "GradCache chunk rows (null: whole batch)")
    distill: Distill | None = setting(None, "loss on teacher scores (null: labels only)")
    pooling: Literal["mean", "max", "cls", "mean_sqrt_len", "lasttoken"] | None = setting(
        None, "pooling (null: the model's own)")
    query_prompt: str | None = setting(None, "prompt before queries (null: the model's own)")
    document_prompt: str | None = setting(None, "prompt before documents (null: the model's "
                                                "own)")
    negatives: int = 1
    batch_size: int = 32

    def __post_init__(self) -> None:
        """Raise :class:`SettingError` (key ``matryoshka_weights``) unless
        ``matryoshka_weights`` is empty or has one weight per ``matryoshka_dims`` entry."""
        if self.matryoshka_weights and len(self.matryoshka_weights) != len(self.matryoshka_dims):
            raise SettingError("matryoshka_weights", f"{len(self.matryoshka_weights)} weights "
                               f"for {len(self.matryoshka_dims)} matryoshka_dims; give one "
                               "weight per dimension, or none for weight 1 each")


@dataclass
class GroupLossSettings:
    """The loss of tasks that score groups of one positive and ``negatives`` negatives
    (:data:`ragsift.train.registry.GROUP_LOSSES`)."""

    loss: GroupLoss = setting("listwise", "the loss of each group (the group losses above)")
    lambdaloss_weighting: Literal["ndcg2", "ndcg2++"] = setting(
        "ndcg2++", "LambdaLoss pair weights: NDCG-Loss2 or NDCG-Loss2++")
    lambdaloss_mu: float = setting(10.0, "weight of NDCG-Loss2's term in NDCG-Loss2++")


@dataclass
class RerankerConfig(TrainConfig, GroupLossSettings, DistillSettings):
    """Cross-encoder from any encoder (a fresh 1-logit head when it has none): groups of one
    positive and ``negatives`` negatives, scored by ``loss``; with teacher scores in the data,
    ``distill`` (``kl`` or ``margin-mse``) replaces the label loss (``distill_label_weight``
    adds a listwise one back). ``layers`` keeps only that many of the model's transformer
    layers (a smaller, faster student initialised from a bigger model): by default
    (``layers_from: uniform``) ones spread over the depth, the last included, or with
    ``first`` the bottom ones (:mod:`ragsift.models.layers`). The head reads [CLS], and a
    model trained with mean pooling (all-MiniLM-L6-v2) only puts the input into [CLS] in its
    last layer, so a student made of its first layers starts from a near-constant score
    (docs/training.md has the measurements).

    ``hidden_distill_weight`` ``w`` > 0 (with ``layers``) also teaches the cut student the
    token states of the full model it was cut from, TinyBERT's hidden-state distillation:
    ``w * hidden_state_mse`` between the student's embedding output and each of its layers'
    outputs and the full model's embedding output and the outputs of the layers they were
    taken from (:func:`ragsift.train.losses.hidden_state_mse`). The full model runs frozen
    beside the student (about one more forward pass per step); the student alone is saved."""

    distill: Distill | None = setting(None, "loss on teacher scores (null: labels only)")
    layers: int | None = setting(None, "keep this many transformer layers (null: all)")
    layers_from: Literal["first", "uniform"] = setting(
        "uniform", "which layers a cut student keeps")
    hidden_distill_weight: float = setting(0.0, "weight of the hidden-state loss against the "
                                                "model the student was cut from")
    batch_size: int = 4
    max_length: int = 384

    def __post_init__(self) -> None:
        """Raise :class:`SettingError` (key ``hidden_distill_weight``) for
        ``hidden_distill_weight`` > 0 without ``layers``."""
        if self.hidden_distill_weight > 0 and not self.layers:
            raise SettingError("hidden_distill_weight", "needs layers: the student learns the "
                               "hidden states of the model it is cut from; set layers or drop "
                               "hidden_distill_weight")


@dataclass
class ColbertConfig(TrainConfig, DistillSettings):
    """ColBERT: MaxSim with in-batch and hard negatives (InfoNCE at ``temperature``), a fresh
    ``embedding_size`` projection when the model has none; ``distill`` uses teacher scores;
    ``grad_cache_chunk`` as for embeddings."""

    embedding_size: int = setting(128, "token vector size of a fresh projection")
    temperature: float = setting(1.0, "InfoNCE temperature")
    query_length: int = setting(32, "query tokens (padded with [MASK])")
    document_length: int = setting(180, "most document tokens")
    gather: bool = setting(True, "share documents across processes under torchrun")
    distill: Literal["kl"] | None = setting(None, "loss on teacher scores (null: labels only)")
    grad_cache_chunk: int | None = setting(None, "GradCache chunk rows (null: whole batch)")
    negatives: int = 1
    batch_size: int = 16


@dataclass
class LLMRerankerConfig(TrainConfig, GroupLossSettings, LoraSettings):
    """LLM reranker: LoRA adapters (peft) on a causal LM, trained with ``loss`` on the yes/no
    log-odds; the adapters are merged into the saved model, which loads as a plain causal LM.
    The prompt follows ``instruction`` (the question asked about each pair) and ``template``
    (:data:`ragsift.rerank.llm.TEMPLATES`)."""

    template: Literal["plain", "qwen3"] = setting(
        "plain", "prompt layout: plain (the model's chat template) or qwen3 "
                 "(Qwen3-Reranker's system prompt, <Instruct>/<Query>/<Document>)")
    instruction: str | None = setting(None, "the task instruction in the prompt (null: the "
                                            "template's default)")
    lora_r: int | None = 8
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

    teacher: str | None = setting(None, "teacher bi-encoder (required)")
    cosine_weight: float = setting(10.0, "weight of the cosine loss")
    similarity_weight: float = setting(200.0, "weight of the similarity-matrix loss")
    relative_weight: float = setting(20.0, "weight of the relative-similarity loss")
    relative_margin: float = setting(0.015, "margin of the relative-similarity loss")
    max_texts: int | None = setting(None, "most training texts (null: all)")
    batch_size: int = 32


_POSITIVE = Range(0, low_open=True)
_AT_LEAST_0 = Range(0)
_AT_LEAST_1 = Range(1)
_FRACTION = Range(0, 1)
#: The allowed range of every numeric training setting, by key (list fields: of each item).
LIMITS: dict[str, Range] = {
    "negatives": _AT_LEAST_0, "negatives_depth": _AT_LEAST_1, "negatives_skip": _AT_LEAST_0,
    "max_steps": _AT_LEAST_1, "epochs": _POSITIVE, "batch_size": _AT_LEAST_1,
    "gradient_accumulation_steps": _AT_LEAST_1, "learning_rate": Range(0, 1, low_open=True),
    "warmup_ratio": _FRACTION, "weight_decay": _AT_LEAST_0, "max_grad_norm": _AT_LEAST_0,
    "seed": Range(0, 2**32 - 1), "save_steps": _AT_LEAST_1, "save_total_limit": _AT_LEAST_0,
    "logging_steps": _AT_LEAST_1, "eval_steps": _AT_LEAST_1, "eval_queries": _AT_LEAST_1,
    "eval_k": _AT_LEAST_1, "query_max_length": _AT_LEAST_1, "max_length": _AT_LEAST_1,
    "attention_dropout": _FRACTION, "lora_r": _AT_LEAST_1, "lora_alpha": _POSITIVE,
    "lora_dropout": _FRACTION, "distill_temperature": _POSITIVE,
    "distill_teacher_temperature": _POSITIVE, "distill_label_weight": _AT_LEAST_0,
    "temperature": _POSITIVE, "matryoshka_dims": _AT_LEAST_1,
    "matryoshka_weights": _AT_LEAST_0, "grad_cache_chunk": _AT_LEAST_1, "layers": _AT_LEAST_1,
    "hidden_distill_weight": _AT_LEAST_0, "embedding_size": _AT_LEAST_1,
    "query_length": _AT_LEAST_1, "document_length": _AT_LEAST_1, "cosine_weight": _AT_LEAST_0,
    "similarity_weight": _AT_LEAST_0, "relative_weight": _AT_LEAST_0,
    "relative_margin": _AT_LEAST_0, "max_texts": _AT_LEAST_1, "lambdaloss_mu": _AT_LEAST_0,
}


@dataclass(frozen=True)
class TaskEntry(Entry):
    """A :data:`TASKS` row: the task class (``target``, imported on use), its config class and
    its one-line ``help``."""

    config: type[TrainConfig] = TrainConfig


_TASKS = "ragsift.train.tasks"

#: The training tasks: ``ragsift train`` offers these names, :func:`load_config` parses their
#: configs and :func:`ragsift.train.tasks.build_task` builds them. A new task is its module in
#: ``ragsift/train/tasks/``, its config dataclass and one entry here.
TASKS: dict[str, TaskEntry] = {
    "embedding": TaskEntry(f"{_TASKS}.embedding:EmbeddingTask",
                           "bi-encoder (sentence-transformers layout), InfoNCE", EmbeddingConfig),
    "reranker": TaskEntry(f"{_TASKS}.reranker:RerankerTask",
                          "cross-encoder (CrossEncoder layout), a group loss", RerankerConfig),
    "colbert": TaskEntry(f"{_TASKS}.colbert:ColbertTask",
                         "ColBERT (PyLate layout), MaxSim InfoNCE", ColbertConfig),
    "llm-reranker": TaskEntry(f"{_TASKS}.llm_reranker:LLMRerankerTask",
                              "causal-LM reranker, LoRA, a group loss on yes/no log-odds",
                              LLMRerankerConfig),
    "vector-distill": TaskEntry(f"{_TASKS}.vector_distill:VectorDistillTask",
                                "bi-encoder learning a teacher's vectors (Stella/Jasper)",
                                VectorDistillConfig),
}


def load_config(task: str, path: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The task's config from a YAML file (optional) with ``overrides`` applied (``None``
    values are ignored). Raises :class:`DataFormatError` naming the file, line and key of an
    unknown or repeated key, a value of the wrong type (never coerced: ``batch_size: true`` is
    refused) or a number out of its range (:data:`LIMITS`);
    :class:`~ragsift.errors.LocatedSettingError` (a usage error), with the file, line and key,
    for settings that cannot work together; :class:`UsageError` for a task that is not in
    :data:`TASKS` or a config without ``model``, ``data`` or ``out``."""
    if task not in TASKS:
        raise UsageError(f"unknown training task {task!r}; choose from {sorted(TASKS)}")
    config = load_dataclass(TASKS[task].config, path, overrides, what=f"{task} training",
                            limits=LIMITS)
    for required in ("model", "data", "out"):
        if not getattr(config, required):
            raise UsageError(f"{task} training needs {required!r} (config file or "
                             f"--{required})")
    return config
