"""Training speed: ragsift's embedding trainer vs sentence-transformers' trainer, same loss.

Both fine-tune the same MiniLM folder (``resolve_model("minilm-l6")``) on the same triples
(query, positive, one BM25 hard negative) from the ``train`` qrels of each BEIR folder (the first
``--examples`` (query, positive) pairs in qrels order, the negative drawn by ragsift's seeded
sampler), with the same loss -- InfoNCE over in-batch + hard negatives at temperature 0.05,
which is sentence-transformers' ``MultipleNegativesRankingLoss(scale=20)`` -- the same batch
size, max length 256 for every text, learning rate, warm-up, seed and number of steps, on the
CPU with the same torch threads.

- ragsift: ``ragsift.train.train("embedding", config)`` on a jsonl of the triples;
- sentence-transformers: ``SentenceTransformerTrainer`` with a ``datasets.Dataset`` of
  (anchor, positive, negative) columns.

Both are HF Trainers; the measure is the Trainer's own ``train_runtime`` (the training loop,
data loading and tokenisation included, model loading excluded), as examples (queries) per
second. Runs alternate (ragsift, ragsift with ``attention_dropout: 0``, sentence-transformers,
...) and the best of ``--repeats`` is kept. Target: ragsift >= 1.0x. The second ragsift row
trains without attention dropout (the model's 0.1 otherwise, like the peer): a different
regularisation, which lets PyTorch use its fused attention kernel
(:mod:`ragsift.models.dropout`).

Usage:
    python -m benchmarks.train [--data DIR ...] [--examples 256] [--batch-size 16]
        [--steps 6] [--repeats 2] [--threads N] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from functools import partial
from pathlib import Path

import torch

from benchmarks.common import SHARED, environment, report
from ragsift.data.training import TrainingExample, write_training
from ragsift.models.hub import resolve_model
from ragsift.train.config import load_config
from ragsift.train.data import TrainingItems, examples_from_beir
from ragsift.train.trainer import REPORT_FILE, train

PEER = "sentence-transformers"
NO_ATTENTION_DROPOUT = "ragsift, attention_dropout=0"
TARGET = 1.0


def triples(folder: Path, limit: int) -> list[tuple[str, str, str]]:
    """(query, positive, hard negative) for the first ``limit`` (query, positive) pairs."""
    items = TrainingItems(examples_from_beir(folder, "train"), negatives=1, seed=0)
    return [(item.query, item.positive, item.negatives[0])
            for item in (items[i] for i in range(min(limit, len(items))))]


def run_ragsift(data: list[tuple[str, str, str]], args: argparse.Namespace, work: Path,
                attention_dropout: float | None = None) -> float:
    path = work / "triples.jsonl"
    write_training([TrainingExample(q, pos=[p], neg=[n]) for q, p, n in data], path)
    config = load_config("embedding", None, {
        "model": "minilm-l6", "data": str(path), "out": str(work / "ragsift-out"),
        "batch_size": args.batch_size, "max_steps": args.steps, "negatives": 1,
        "learning_rate": 2e-5, "warmup_ratio": 0.1, "temperature": 0.05, "seed": 0,
        "max_length": 256, "query_max_length": 256, "save_steps": 10_000, "logging_steps": 1,
        "attention_dropout": attention_dropout})
    out = train("embedding", config)
    return float(json.loads((out / REPORT_FILE).read_text())["train_runtime"])


def run_peer(data: list[tuple[str, str, str]], args: argparse.Namespace, work: Path) -> float:
    import datasets
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = SentenceTransformer(str(resolve_model("minilm-l6")), device="cpu")
    model.max_seq_length = 256
    dataset = datasets.Dataset.from_dict({"anchor": [q for q, _, _ in data],
                                          "positive": [p for _, p, _ in data],
                                          "negative": [n for _, _, n in data]})
    training_args = SentenceTransformerTrainingArguments(
        output_dir=str(work / "peer-out"), per_device_train_batch_size=args.batch_size,
        max_steps=args.steps, learning_rate=2e-5, warmup_steps=0.1, seed=0, report_to=[],
        save_strategy="no", logging_steps=1, dataloader_drop_last=True,
        dataloader_pin_memory=False)
    trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=dataset,
                                         loss=MultipleNegativesRankingLoss(model, scale=20.0))
    return float(trainer.train().metrics["train_runtime"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", type=Path, metavar="DIR",
                        help="a BEIR folder with a train split (default: scifact in "
                             "../shared/datasets)")
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, metavar="FILE")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    folders = args.data or [SHARED / "scifact"]
    results, rows = [], []
    for folder in folders:
        if not (folder / "qrels" / "train.tsv").is_file():
            raise SystemExit(f"{folder}: no qrels/train.tsv")
        data = triples(folder, args.examples)
        systems = {"ragsift": partial(run_ragsift, data, args),
                   NO_ATTENTION_DROPOUT: partial(run_ragsift, data, args, attention_dropout=0.0),
                   PEER: partial(run_peer, data, args)}
        times: dict[str, list[float]] = {name: [] for name in systems}
        for _ in range(args.repeats):
            for name, run in systems.items():
                with tempfile.TemporaryDirectory() as work:
                    times[name].append(run(Path(work)))
        examples = args.steps * args.batch_size
        rates = {name: examples / min(seconds) for name, seconds in times.items()}
        results.append({"dataset": folder.name, "steps": args.steps,
                        "batch_size": args.batch_size, "examples_per_s": rates,
                        "ratio": rates["ragsift"] / rates[PEER],
                        "ratio_no_attention_dropout": rates[NO_ATTENTION_DROPOUT] / rates[PEER],
                        "target": TARGET, "seconds": times, "threads": torch.get_num_threads()})
        rows += [[folder.name, name, f"{rate:.2f}", f"{rate / rates[PEER]:.2f}x"]
                 for name, rate in rates.items()]
    report(results, ["dataset", "system", "examples/s", f"vs {PEER}"], rows, args.out,
           benchmark="train-infonce",
           environment=environment(["torch", "transformers", "sentence-transformers"]))


if __name__ == "__main__":
    main()
