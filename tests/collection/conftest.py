"""Random documents for collection tests: a small vocabulary (so queries share terms), lengths
from a few words to several chunks, and metadata of every kind filters handle."""

from __future__ import annotations

import random

import pytest

WORDS = ("cell protein gene virus immune cancer brain heart drug trial mouse study blood "
         "signal growth tumor enzyme receptor therapy dose patient risk model data").split()


def random_text(rng: random.Random, low: int = 3, high: int = 160) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    sentences, start = [], 0
    while start < len(words):
        end = start + rng.randint(4, 15)
        sentences.append(" ".join(words[start:end]).capitalize() + ".")
        start = end
    return " ".join(sentences)


def random_document(rng: random.Random, doc_id: str) -> dict:
    meta = {"year": rng.randint(2000, 2024), "source": rng.choice(["pubmed", "arxiv", "wiki"]),
            "score": round(rng.uniform(0, 1), 3), "open": rng.random() < 0.5}
    if rng.random() < 0.5:
        meta["tags"] = rng.sample(["a", "b", "c", "d"], rng.randint(1, 3))
    title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 4)))
    return {"id": doc_id, "text": random_text(rng), "title": title, "metadata": meta}


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1234)
