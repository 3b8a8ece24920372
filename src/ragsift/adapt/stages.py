"""The stages of ``ragsift adapt`` and the state file that makes a rerun resume.

``DIR`` (``--out``) holds one folder per stage and ``adapt.json``:

1. ``synthetic/``: the generator writes one query per document of the sample
   (:func:`ragsift.jobs.synthesize.synthesize_queries`; ``part-N.jsonl``, concatenated into
   ``raw.jsonl``); the round-trip filter keeps those whose document the round-trip retriever
   ranks in its top k (``queries.jsonl``); ``beir/`` holds them as a BEIR folder (split
   ``train``: each query judges its source document relevant).
2. ``negatives/negatives.jsonl``: for every kept query, the mining retriever's top
   ``candidates`` minus the source document, scored with the teacher; candidates the
   false-negative filter flags (by default percpos: above 0.95 times the source's score) are
   dropped and ``negatives`` of the rest kept (:func:`ragsift.jobs.mine.mine_negatives`). The
   rows carry the teacher's raw scores of the positive and of each kept negative
   (``pos_scores``/``neg_scores``): they are the teacher labels, so they are not computed a
   second time.
3. ``model/``: the bi-encoder trained on those rows: KL between the student's softmax over
   each group (``cos / temperature``) and the teacher's (``score / teacher_temperature``) plus
   the InfoNCE over in-batch and hard negatives (:mod:`ragsift.train`); a
   sentence-transformers folder, usable as ``dense:DIR/model``.
4. ``reranker/`` (with ``cross_encoder``): a cross-encoder trained on the same rows, the same
   KL plus a listwise loss on the source document.

Every output is written atomically, so a stage is complete when its output exists, and is
then skipped. The jobs of stages 1 and 2 resume shard by shard and training resumes from its
last checkpoint, so rerunning the same command after a kill continues where it stopped.
``adapt.json`` records the corpus, the settings (a rerun with other ones is refused; the
budget may change), the number of documents synthesis took, and what each stage did.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ragsift.adapt.budget import Deadline, document_order, documents_within
from ragsift.adapt.config import AdaptConfig, fingerprint
from ragsift.atomic import atomic_file
from ragsift.data.beir import load_beir, load_corpus
from ragsift.errors import RagsiftError, UsageError
from ragsift.jobs.backends import Lazy, resolve
from ragsift.jobs.mine import FilterSettings, mine_negatives
from ragsift.jobs.sharded import shards_dir
from ragsift.jobs.synthesize import round_trip_filter, synthesize_queries, synthetic_beir
from ragsift.jobs.teacher import Teacher
from ragsift.models.generation.generator import TextGenerator
from ragsift.retrieve.spec import build_retriever
from ragsift.train.config import load_config
from ragsift.train.trainer import REPORT_FILE, train
from ragsift.types import Corpus

logger = logging.getLogger(__name__)

STATE_FILE = "adapt.json"
STAGES = ("synthetic", "negatives", "model", "reranker")
CHECKPOINT_STEPS = 50  # training checkpoints (and so resume points) every this many steps


@dataclass
class AdaptResult:
    """The adapted model's folder, the reranker's (or None), and the stages run now and
    skipped as complete."""

    model: Path
    reranker: Path | None
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class State:
    """``DIR/adapt.json``: the corpus and settings of the run, and a record per stage."""

    def __init__(self, out: Path, data: Path, config: AdaptConfig) -> None:
        self.path = out / STATE_FILE
        identity = {"data": str(data.resolve()), "settings": fingerprint(config)}
        self.values: dict[str, Any] = {**identity, "stages": {}}
        if self.path.is_file():
            previous = json.loads(self.path.read_text(encoding="utf-8"))
            # a setting added since that run was made had its default value there
            defaults = fingerprint(AdaptConfig())
            changed = sorted(k for k in identity["settings"]
                             if previous["settings"].get(k, defaults[k])
                             != identity["settings"][k])
            if previous["data"] != identity["data"] or changed:
                what = ", ".join(changed) if changed else f"the corpus ({previous['data']})"
                raise UsageError(f"{out} holds an adaptation run with other settings ({what} "
                                 f"differ); rerun with the same ones to resume, or use "
                                 f"another --out")
            self.values = previous

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def set(self, **values: Any) -> None:
        """Record ``values`` and write the file atomically."""
        self.values.update(values)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.path) as handle:
            handle.write(json.dumps(self.values, indent=2))

    def stage_done(self, stage: str, **info: Any) -> None:
        self.set(stages={**self.values["stages"], stage: info})


class Adaptation:
    """One run of the stages over the corpus at ``data`` into ``out`` (see the module
    docstring); ``generator`` replaces the one ``config.generator`` names (tests)."""

    def __init__(self, data: str | Path, out: str | Path, config: AdaptConfig,
                 generator: TextGenerator | None = None) -> None:
        self.start = time.monotonic()
        self.out = Path(out)
        self.config = config
        self.corpus: Corpus = load_corpus(data)
        self.state = State(self.out, Path(data), config)
        self._generator = generator

    @property
    def budget_end(self) -> float | None:
        """The :func:`time.monotonic` time the budget runs out, or None."""
        minutes = self.config.budget_minutes
        return None if minutes is None else self.start + 60 * minutes

    def run(self) -> AdaptResult:
        """Run the stages not complete yet, in order."""
        outputs: dict[str, tuple[Path, Callable[[], dict[str, Any]]]] = {
            "synthetic": (self.out / "synthetic" / "beir", self.synthesize),
            "negatives": (self.out / "negatives" / "negatives.jsonl", self.mine),
            "model": (self.out / "model", self.train_bi_encoder),
            "reranker": (self.out / "reranker", self.train_cross_encoder),
        }
        result = AdaptResult(self.out / "model",
                             self.out / "reranker" if self.config.cross_encoder else None)
        for stage in STAGES:
            output, step = outputs[stage]
            if stage == "reranker" and not self.config.cross_encoder:
                continue
            if output.exists():
                logger.info("adapt: %s is complete (%s); skipped", stage, output)
                result.skipped.append(stage)
                continue
            logger.info("adapt: stage %s", stage)
            began = time.monotonic()
            done = step()
            info = {"seconds": round(time.monotonic() - began, 3), **done}
            self.state.stage_done(stage, **info)
            logger.info("adapt: %s done: %s", stage, info)
            result.ran.append(stage)
        return result

    # -- 1. synthetic queries ------------------------------------------------------------------

    def generator(self) -> TextGenerator:
        """The generator, loaded on first use."""
        if self._generator is None:
            from ragsift.models.generation.generator import load_generator

            config = self.config
            self._generator = load_generator(
                config.generator, max_new_tokens=config.max_new_tokens,
                batch_size=config.generator_batch_size,
                max_passage_tokens=config.max_passage_tokens, weights=config.llm_weights)
        return self._generator

    def document_parts(self) -> list[list[str]]:
        """The documents to write queries for, as the parts generated one after the other:
        the probe and the rest under a budget, else one part; the count is fixed (in the
        state) by the first run (see :mod:`ragsift.adapt.budget`)."""
        config, folder = self.config, self.out / "synthetic"
        order = document_order(self.corpus, config.seed)[:config.docs]
        if not order:
            raise RagsiftError("the corpus has no document with text to write a query for")
        if self.state.get("docs") is None:
            if self.budget_end is None:
                self.state.set(docs=len(order), probe=None)
            else:
                probe = order[:config.probe_docs]
                part = folder / "part-0.jsonl"
                part.unlink(missing_ok=True)  # measure the speed on the whole probe
                shutil.rmtree(shards_dir(part), ignore_errors=True)
                job = self.generate(probe, part).job
                per_doc = job.seconds / len(probe)
                left = (self.start + config.synth_share * 60 * config.budget_minutes
                        - time.monotonic())
                docs = documents_within(len(probe), per_doc, left, len(order))
                logger.info("adapt: %.2f s per synthetic query; the budget allows %d documents",
                            per_doc, docs)
                self.state.set(docs=docs, probe=len(probe), seconds_per_doc=per_doc)
        docs, probe = self.state.get("docs"), self.state.get("probe")
        parts = [order[:probe], order[probe:docs]] if probe else [order[:docs]]
        return [part for part in parts if part]

    def generate(self, ids: Sequence[str], out: Path):
        """Synthetic query rows for the documents ``ids`` into ``out`` (a resumable job)."""
        return synthesize_queries(self.corpus, self.generator(), out, ids,
                                  shard_size=self.config.shard_size)

    def synthesize(self) -> dict[str, Any]:
        folder = self.out / "synthetic"
        folder.mkdir(parents=True, exist_ok=True)
        raw = folder / "raw.jsonl"
        parts = self.document_parts()
        with atomic_file(raw) as handle:
            for i, ids in enumerate(parts):
                part = folder / f"part-{i}.jsonl"
                if not part.is_file():
                    self.generate(ids, part)
                handle.write(part.read_text(encoding="utf-8"))
        queries = folder / "queries.jsonl"
        retriever = build_retriever(self.config.round_trip_retriever)
        kept = round_trip_filter(raw, self.corpus, retriever, queries, k=self.config.round_trip_k)
        if not kept.kept:
            raise RagsiftError(f"no synthetic query found its own document in the top "
                               f"{self.config.round_trip_k} ({raw}); try another generator or "
                               f"a larger round_trip_k")
        synthetic_beir(queries, self.corpus, folder / "beir")
        return {"documents": sum(map(len, parts)), "kept": kept.kept, "dropped": kept.dropped}

    # -- 2. negatives with teacher scores --------------------------------------------------------

    def mine(self) -> dict[str, Any]:
        config = self.config
        data = load_beir(self.out / "synthetic" / "beir", "train")
        retriever = build_retriever(config.mine_retriever or f"dense:{config.model}")
        retriever.index(data.corpus)
        run = retriever.search(data.queries, k=config.candidates + 1)  # + the source document
        name, kind = (config.teacher, "auto") if config.teacher else (config.model, "bi-encoder")
        teacher: Lazy[Teacher] = Lazy(partial(Teacher.load, name, kind))
        out = self.out / "negatives" / "negatives.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        settings = FilterSettings(config.filter, config.margin, config.percent)
        _, totals = mine_negatives(data, run, out, teacher, settings, config.negatives,
                                   config.candidates, seed=config.seed,
                                   shard_size=config.shard_size)
        if not totals["negatives"]:
            out.unlink()
            raise RagsiftError(f"the {config.filter} filter dropped every mined negative as a "
                               f"probable false negative; loosen it (--set filter=none, or a "
                               f"larger percent or margin) or mine more (--set candidates=N)")
        return {"teacher": name, "teacher_kind": resolve(teacher).kind, **totals}

    # -- 3. and 4. training ---------------------------------------------------------------------

    def teacher_temperature(self) -> float:
        """The KL's teacher temperature: the setting, else by the teacher's kind (recorded by
        the negatives stage): the InfoNCE temperature for cosines, 1 for logits."""
        if self.config.teacher_temperature is not None:
            return self.config.teacher_temperature
        kind = self.state.get("stages")["negatives"]["teacher_kind"]
        return self.config.temperature if kind == "bi-encoder" else 1.0

    def fit(self, task: str, model: str, out: Path, deadline: float | None,
            **settings: Any) -> dict[str, Any]:
        """Train ``task`` from ``model`` on the negatives' rows into ``out``, distilling the
        teacher's scores; stops at ``deadline`` (a :func:`time.monotonic` time) if given."""
        config = self.config
        overrides = {"model": model, "data": str(self.out / "negatives" / "negatives.jsonl"),
                     "out": str(out), "negatives": config.train_negatives,
                     "epochs": config.epochs, "max_steps": config.max_steps,
                     "max_length": config.max_length, "seed": config.seed, "distill": "kl",
                     "distill_teacher_temperature": self.teacher_temperature(),
                     "distill_label_weight": 1.0, "save_steps": CHECKPOINT_STEPS, **settings}
        stop = Deadline(deadline) if deadline is not None else None
        train(task, load_config(task, None, overrides), callbacks=[stop] if stop else None)
        report = json.loads((out / REPORT_FILE).read_text(encoding="utf-8"))
        return {"steps": report["steps"], "examples": report["examples"],
                "stopped_by_budget": bool(stop and stop.stopped_at is not None)}

    def train_bi_encoder(self) -> dict[str, Any]:
        config, end = self.config, self.budget_end
        if end is not None and config.cross_encoder:  # the reranker gets the second half
            end = time.monotonic() + (end - time.monotonic()) / 2
        return self.fit("embedding", config.model, self.out / "model", end,
                        batch_size=config.batch_size, learning_rate=config.learning_rate,
                        temperature=config.temperature, grad_cache_chunk=config.grad_cache_chunk)

    def train_cross_encoder(self) -> dict[str, Any]:
        config = self.config
        return self.fit("reranker", config.cross_encoder_model or config.model,
                        self.out / "reranker", self.budget_end,
                        batch_size=config.cross_encoder_batch_size)


def adapt(data: str | Path, out: str | Path, config: AdaptConfig,
          generator: TextGenerator | None = None) -> AdaptResult:
    """Adapt ``config.model`` to the corpus at ``data`` (a BEIR folder or ``corpus.jsonl``)
    into ``out``, resuming a run there (see the module docstring).

    Raises:
        UsageError: ``out`` holds a run with other settings or another corpus.
        RagsiftError: no document has text, or no synthetic query passes the round trip.
    """
    return Adaptation(data, out, config, generator).run()
