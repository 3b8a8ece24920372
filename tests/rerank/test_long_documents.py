"""Long passages: windows, aggregation and the truncation warning, with a scorer we can predict."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ragsift.rerank.base import Reranker, aggregate_windows
from ragsift.rerank.long_documents import expand_pairs

FILLER = "Sentence number {} talks about weather and nothing else. "
NEEDLE = "The secret password is swordfish."


class KeywordReranker(Reranker):
    """Scores 1.0 for a window containing 'swordfish', else 0.1 per window; budget 40 tokens."""

    def __init__(self, tokenizer, **options):
        super().__init__(**options)
        self._tok = tokenizer
        self.seen: list[str] = []

    @property
    def tokenizer(self):
        return self._tok

    def passage_budget(self, query: str) -> int:
        return 40

    def score_fitted(self, pairs):
        self.seen.extend(p for _, p in pairs)
        # the model itself would truncate at the budget: emulate that
        kept = [self._tok.decode(self._tok(p, add_special_tokens=False)["input_ids"][:40])
                for _, p in pairs]
        return np.array([1.0 if "swordfish" in k else 0.1 for k in kept], np.float32)

    @classmethod
    def from_pretrained(cls, name, **options):
        raise NotImplementedError


@pytest.fixture
def tokenizer(minilm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir)


def long_passage(tokenizer) -> str:
    text = "".join(FILLER.format(i) for i in range(12)) + NEEDLE
    assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) > 100  # needle past 40
    return text


def test_max_finds_the_needle_past_the_limit_and_truncate_warns(tokenizer, caplog):
    passage = long_passage(tokenizer)
    pairs = [("password?", passage), ("password?", "short text")]
    assert KeywordReranker(tokenizer, long_doc="max").score(pairs).tolist() == pytest.approx(
        [1.0, 0.1])
    with caplog.at_level(logging.WARNING):
        truncated = KeywordReranker(tokenizer, long_doc="truncate").score(pairs)
    assert truncated.tolist() == pytest.approx([0.1, 0.1])
    assert "1 of 2 pairs are longer than the model takes" in caplog.text
    first = KeywordReranker(tokenizer, long_doc="first")
    assert first.score(pairs).tolist() == pytest.approx([0.1, 0.1])
    assert len(first.seen) == 2


def test_windows_fit_overlap_and_cover_the_text(tokenizer):
    passage = long_passage(tokenizer)
    windows, owners = expand_pairs([("q", passage), ("q", "tiny")], tokenizer, lambda q: 40,
                                   "max", overlap=10)
    assert owners.tolist() == [0] * (len(windows) - 1) + [1]
    assert len(windows) > 3
    for _, text in windows[:-1]:
        assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= 40
        assert text in passage
    assert windows[-2][1].endswith("swordfish.")
    assert windows[0][1].startswith("Sentence number 0")


def test_mean_and_topk_mean_by_hand(tokenizer):
    passage = long_passage(tokenizer)
    reranker = KeywordReranker(tokenizer, long_doc="mean")
    windows, _ = expand_pairs([("q", passage)], tokenizer, lambda q: 40, "mean")
    n = len(windows)
    assert reranker.score([("q", passage)])[0] == pytest.approx((1.0 + 0.1 * (n - 1)) / n)
    top2 = KeywordReranker(tokenizer, long_doc="topk-mean", top_windows=2)
    assert top2.score([("q", passage)])[0] == pytest.approx((1.0 + 0.1) / 2)


def test_aggregate_and_bad_strategy(tokenizer):
    raw = np.array([0.2, 0.9, 0.4, 0.5], np.float32)
    owners = np.array([0, 0, 0, 1])
    assert aggregate_windows(raw, owners, 2, "max").tolist() == pytest.approx([0.9, 0.5])
    assert aggregate_windows(raw, owners, 2, "topk-mean", 2).tolist() == pytest.approx(
        [0.65, 0.5])
    with pytest.raises(ValueError, match="strategy"):
        expand_pairs([("q", "p")], tokenizer, lambda q: 40, "median")  # type: ignore[arg-type]
