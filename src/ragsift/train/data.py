"""Training items: (query, one positive, a pool of negatives) from a jsonl file or a BEIR folder.

From a BEIR folder, positives are the documents judged relevant (> 0) in the split and negatives
are BM25's top ``depth`` documents for the query after the first ``skip`` ranks, minus every
judged document of that query. From a training jsonl (:mod:`ragsift.data.training`), the rows
give them, with optional teacher scores.

Each (query, positive) pair is one item; an item draws its ``negatives`` from its pool with a
generator seeded by ``(seed, epoch, item index)``: each epoch sees other negatives from the pool,
a run is reproducible and a resumed run sees the same batches (the Trainer calls ``set_epoch``).
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from ragsift.data.training import TrainingExample, read_training
from ragsift.errors import RagsiftError

logger = logging.getLogger(__name__)


@dataclass
class TrainingItem:
    """One training step's view of a query: a positive and sampled negatives.

    ``positive_keys`` identify every known positive of the query (text hashes), so that a
    positive of another query in the batch that is also relevant here is not used as a negative.
    ``scores`` are teacher scores of ``[positive] + negatives`` when the data has them.
    """

    query: str
    positive: str
    negatives: list[str]
    positive_keys: list[int]
    scores: list[float] | None = None


def text_key(text: str) -> int:
    """A stable signed 64-bit key of a text (same text, same key, in every process)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(),
                          "little", signed=True)


def examples_from_beir(folder: str | Path, split: str = "train", depth: int = 30,
                       skip: int = 0) -> list[TrainingExample]:
    """Qrels positives and BM25 negatives (ranks ``skip+1 .. skip+depth``, judged ones removed)."""
    from ragsift.data.beir import load_beir
    from ragsift.retrieve.bm25 import BM25Retriever
    from ragsift.types import ranked

    data = load_beir(folder, split)
    bm25 = BM25Retriever()
    bm25.index(data.corpus)
    run = bm25.search(data.queries, k=skip + depth + 20)
    examples = []
    for qid, query in data.queries.items():
        judged = data.qrels[qid]
        positives = [doc_id for doc_id, rel in judged.items() if rel > 0]
        if not positives:
            continue
        candidates = [doc_id for doc_id, _ in ranked(run.get(qid, {}))[skip:]
                      if doc_id not in judged][:depth]
        examples.append(TrainingExample(
            query, pos=[data.corpus[d].full_text() for d in positives],
            neg=[data.corpus[d].full_text() for d in candidates], query_id=qid,
            pos_ids=positives, neg_ids=candidates))
    logger.info("%s (%s): %d training queries, %d positives", folder, split, len(examples),
                sum(len(e.pos) for e in examples))
    return examples


def load_examples(source: str | Path, split: str = "train", depth: int = 30,
                  skip: int = 0) -> list[TrainingExample]:
    """Examples from a training jsonl file or a BEIR folder (see the module docstring)."""
    path = Path(source)
    if path.is_dir():
        return examples_from_beir(path, split, depth, skip)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such training file or BEIR folder")
    return list(read_training(path))


class TrainingItems(Dataset):
    """The (query, positive) items of ``examples`` with ``negatives`` sampled negatives each.

    Args:
        examples: groups (``pos``/``neg``) or scored lists (``docs``/``scores``: the
            best-scored document is the positive, the rest negatives, scores kept).
        negatives: negatives per item; items whose pool is smaller repeat negatives (a query
            without any negative is dropped, with a count in the log).
        seed: the sampling seed.
    """

    epoch = 0

    def __init__(self, examples: list[TrainingExample], negatives: int, seed: int = 0) -> None:
        self.negatives = negatives
        self.seed = seed
        self.items: list[tuple[TrainingExample, int]] = []
        dropped = 0
        for example in examples:
            example = _as_group(example)
            if negatives and not example.neg:
                dropped += 1
                continue
            self.items.extend((example, i) for i in range(len(example.pos)))
        if dropped:
            logger.warning("%d queries have no negatives and were left out", dropped)
        if not self.items:
            hint = (f"; {dropped} queries have no negatives: set negatives: 0 (in-batch "
                    f"negatives only) or mine some with ragsift mine" if dropped else "")
            raise RagsiftError(f"no training items: every query lacks positives or negatives"
                               f"{hint}")

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """Draw the negatives of ``epoch`` from now on (called by the Trainer's data loader)."""
        self.epoch = epoch

    def __getitem__(self, index: int) -> TrainingItem:
        example, which = self.items[index]
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}")
        pool = list(range(len(example.neg)))
        if len(pool) >= self.negatives:
            chosen = rng.sample(pool, self.negatives)
        else:
            chosen = [rng.choice(pool) for _ in range(self.negatives)] if pool else []
        scores = None
        if example.pos_scores is not None and example.neg_scores is not None:
            scores = [example.pos_scores[which]] + [example.neg_scores[i] for i in chosen]
        return TrainingItem(
            query=example.query, positive=example.pos[which],
            negatives=[example.neg[i] for i in chosen],
            positive_keys=[text_key(text) for text in example.pos], scores=scores)


def _as_group(example: TrainingExample) -> TrainingExample:
    """A scored list becomes a group: best-scored document positive, the others negatives."""
    if example.docs is None:
        return example
    order = sorted(range(len(example.docs)), key=lambda i: -example.scores[i])
    best, rest = order[0], order[1:]
    return TrainingExample(example.query, pos=[example.docs[best]],
                           neg=[example.docs[i] for i in rest],
                           pos_scores=[example.scores[best]],
                           neg_scores=[example.scores[i] for i in rest])
