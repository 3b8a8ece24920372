"""The shared training loop: the Hugging Face Trainer driving a :class:`TrainingTask`.

The HF Trainer brings the engine (DDP under ``torchrun``, FSDP / DeepSpeed through its
arguments, mixed precision, gradient accumulation, checkpointing and exact resume: model,
optimizer, scheduler, RNG states and the data position are restored). ragsift brings the task:
model, batches and loss.

Folders: checkpoints go to ``<out>.checkpoints/`` while training; the final model is written to
``<out>`` atomically (a temporary folder renamed at the end), with ``ragsift_train.json``
(config, steps, seconds, losses and evaluations). A rerun after a kill resumes from the last
complete checkpoint (one killed while being written, without its ``trainer_state.json``, is
removed); the checkpoints are deleted once the final model is written. The final evaluation
runs after the model is written, so a slow evaluation never holds the model back.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainerState, TrainingArguments, set_seed
from transformers.trainer_utils import TrainOutput

from ragsift.atomic import atomic_dir, atomic_file
from ragsift.train.config import TrainConfig
from ragsift.train.grad_cache import grad_cache_step
from ragsift.train.task import TrainingTask
from ragsift.train.tasks import build_task

logger = logging.getLogger(__name__)

REPORT_FILE = "ragsift_train.json"
TRAINER_STATE_FILE = "trainer_state.json"  # written last into a checkpoint by the Trainer


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The highest-numbered ``checkpoint-N`` in ``folder`` that holds ``trainer_state.json``
    (the Trainer writes it last), or ``None``. Incomplete ones (a kill while saving) are
    removed, so the run writes them again instead of resuming from half a checkpoint."""
    complete = []
    for path in folder.glob("checkpoint-*"):
        if not (path.is_dir() and path.name.partition("-")[2].isdigit()):
            continue
        if (path / TRAINER_STATE_FILE).is_file():
            complete.append(path)
        else:
            logger.warning("removing %s: a checkpoint that was not finished", path)
            shutil.rmtree(path)
    return max(complete, key=checkpoint_step, default=None)


def checkpoint_step(checkpoint: Path) -> int:
    """The optimizer step a checkpoint was saved at: the Trainer names it
    ``checkpoint-<global_step>``."""
    return int(checkpoint.name.partition("-")[2])


def finished_run(trainer: Trainer, checkpoint: Path) -> TrainOutput:
    """Restore a run whose last checkpoint is already at ``max_steps`` (killed after saving it,
    before the final model was written) without training: the Trainer, asked to resume there,
    would take one step past ``max_steps``."""
    logger.info("%s is already at max_steps: loading it without training", checkpoint)
    trainer._load_from_checkpoint(str(checkpoint))
    trainer.state = TrainerState.load_from_json(str(checkpoint / TRAINER_STATE_FILE))
    return TrainOutput(trainer.state.global_step, 0.0, {})


def unique_tensors(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state_dict`` without the later names of tensors that share storage with an earlier
    one (tied weights), in the original order."""
    seen: set[tuple[int, int]] = set()
    kept = {}
    for name, tensor in state_dict.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if key not in seen:
            seen.add(key)
            kept[name] = tensor
    return kept


class RetrievalTrainer(Trainer):
    """``Trainer`` whose loss comes from the task (the module returns representations)."""

    def __init__(self, task: TrainingTask, **kwargs: Any) -> None:
        super().__init__(model=task.module, data_collator=task.collate, **kwargs)
        self.task = task
        self.model_accepts_loss_kwargs = False  # our losses are means: let the Trainer scale

    def training_step(self, model: torch.nn.Module, inputs: dict[str, Any],
                      num_items_in_batch: Any = None) -> torch.Tensor:
        """The Trainer's step, or a GradCache step when the task's config asks for one."""
        rows = getattr(self.task.config, "grad_cache_chunk", None)
        if not rows:
            return super().training_step(model, inputs, num_items_in_batch)
        model.train()
        inputs = self._prepare_inputs(inputs)
        scale = 1.0 / self.current_gradient_accumulation_steps
        loss = grad_cache_step(model, inputs, self.task.loss, rows, self.accelerator.backward,
                               scale)
        return loss * scale

    def _save(self, output_dir: str | None = None,
              state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """The Trainer's checkpoint save, each tensor stored once: a causal LM that ties its
        output layer to its embeddings (SmolLM2, Llama 3.2, Qwen2.5-0.5B) has two names for
        one tensor, which safetensors refuses; resuming restores the tie."""
        if state_dict is None:
            state_dict = unique_tensors(self.model.state_dict())
        super()._save(output_dir, state_dict)

    def _issue_warnings_after_load(self, load_result: Any) -> None:
        """After a resume, warn about missing weights other than the tied names that
        :meth:`_save` left out (loading their twin filled them)."""
        state = self.model.state_dict()
        tied = set(state) - set(unique_tensors(state))
        missing = [key for key in load_result.missing_keys if key not in tied]
        if missing or load_result.unexpected_keys:
            logger.warning("checkpoint weights: %d missing (%s), %d unexpected (%s)",
                           len(missing), ", ".join(missing[:5]),
                           len(load_result.unexpected_keys),
                           ", ".join(load_result.unexpected_keys[:5]))

    def compute_loss(self, model: torch.nn.Module, inputs: dict[str, Any],
                     return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
        outputs = model(**inputs)
        loss = self.task.loss(outputs, inputs)
        return (loss, outputs) if return_outputs else loss


class BeirEvaluation(TrainerCallback):
    """nDCG@10 of the live model on a BEIR split at the start (``eval_at_start``), every
    ``eval_steps`` and (called by :func:`train` once the model is saved) at the end.

    Queries are the first ``eval_queries`` judged ones (sorted ids); candidates are BM25's top
    ``eval_k`` (rerankers re-score them, bi-encoders search the whole corpus). BM25's own
    nDCG@10 on them (``bm25_ndcg``) is the report's reference point.
    """

    def __init__(self, task: TrainingTask, config: TrainConfig) -> None:
        from ragsift.data.beir import load_beir
        from ragsift.evaluate import evaluate
        from ragsift.retrieve.bm25 import BM25Retriever

        self.task = task
        self.every = config.eval_steps
        self.at_start = config.eval_at_start
        data = load_beir(config.eval_data, config.eval_split)
        chosen = sorted(data.queries)[:config.eval_queries]
        self.queries = {qid: data.queries[qid] for qid in chosen}
        self.qrels = {qid: data.qrels[qid] for qid in chosen}
        self.corpus = data.corpus
        bm25 = BM25Retriever()
        bm25.index(self.corpus)
        self.candidates = bm25.search(self.queries, k=config.eval_k)
        self.history: list[dict[str, float]] = []
        self.bm25_ndcg = evaluate(self.qrels, self.candidates, ["ndcg@10"]).mean["ndcg@10"]
        logger.info("evaluation: %d queries; BM25 alone (the candidates' order): nDCG@10 %.4f",
                    len(self.queries), self.bm25_ndcg)

    def score(self, step: int) -> float:
        from ragsift.evaluate import evaluate

        start = time.perf_counter()
        run = self.task.run(self.queries, self.corpus, self.candidates)
        value = evaluate(self.qrels, run, ["ndcg@10"]).mean["ndcg@10"]
        self.history.append({"step": step, "ndcg@10": value,
                             "seconds": time.perf_counter() - start})
        logger.info("step %d: nDCG@10 %.4f on %d queries", step, value, len(self.queries))
        return value

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102 (Trainer hook)
        if self.at_start and state.global_step == 0 and state.is_world_process_zero:
            self.score(0)

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102 (Trainer hook)
        if self.every and state.global_step % self.every == 0 and state.is_world_process_zero:
            self.score(state.global_step)



def _precision(config: TrainConfig) -> dict[str, bool]:
    choice = config.precision
    if choice == "auto":
        choice = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() \
            else "fp32"
    return {"bf16": choice == "bf16", "fp16": choice == "fp16"}


def checkpoints_dir(out: str | Path) -> Path:
    """Where checkpoints of a run writing ``out`` live."""
    out = Path(out)
    return out.with_name(out.name + ".checkpoints")


def train(task_name: str, config: TrainConfig, callbacks: list[TrainerCallback] | None = None
          ) -> Path:
    """Train ``task_name`` as ``config`` says; returns the folder of the final model.

    Resumes from ``<out>.checkpoints`` when it holds a checkpoint and ``config.resume``.
    """
    set_seed(config.seed)
    out = Path(config.out)
    task = build_task(task_name, config)
    if config.gradient_checkpointing:
        task.enable_gradient_checkpointing()
    dataset = task.dataset()
    checkpoints = checkpoints_dir(out)
    args = TrainingArguments(
        output_dir=str(checkpoints), per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate, num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1, warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm,
        logging_steps=config.logging_steps, save_strategy="steps",
        save_steps=config.save_steps, save_total_limit=config.save_total_limit,
        seed=config.seed, data_seed=config.seed, report_to=[], remove_unused_columns=False,
        dataloader_drop_last=len(dataset) >= config.batch_size, dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),  # makes accelerate run DDP over gloo on CPUs
        **_precision(config))
    evaluation = BeirEvaluation(task, config) if config.eval_data else None
    trainer = RetrievalTrainer(task, args=args, train_dataset=dataset,
                               callbacks=[c for c in [evaluation, *(callbacks or [])] if c])
    resume = last_complete_checkpoint(checkpoints) if config.resume else None
    if resume:
        logger.info("resuming from %s", resume)
    start = time.perf_counter()
    if resume and config.max_steps and checkpoint_step(resume) >= config.max_steps:
        result = finished_run(trainer, resume)
    else:
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - start
    if trainer.is_world_process_zero():
        report = {
            "task": task_name, "config": dataclasses.asdict(config),
            "steps": result.global_step, "train_seconds": seconds,
            "train_runtime": result.metrics.get("train_runtime"),
            "examples": len(dataset), "resumed": bool(resume),
            "losses": [entry for entry in trainer.state.log_history if "loss" in entry],
            "evaluations": evaluation.history if evaluation else [],
            "evaluation_bm25_ndcg@10": evaluation.bm25_ndcg if evaluation else None,
        }
        with atomic_dir(out) as tmp:
            task.save(tmp)
            (tmp / REPORT_FILE).write_text(json.dumps(report, indent=2))
        shutil.rmtree(checkpoints, ignore_errors=True)
        logger.info("trained %s for %d steps in %.0fs; wrote %s", task_name, result.global_step,
                    seconds, out)
        if evaluation and (not evaluation.history
                           or evaluation.history[-1]["step"] != result.global_step):
            # the model is safe on disk before the (possibly long) final evaluation
            evaluation.score(result.global_step)
            report["evaluations"] = evaluation.history
            with atomic_file(out / REPORT_FILE) as handle:
                handle.write(json.dumps(report, indent=2))
    return out
