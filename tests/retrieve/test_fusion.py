import pytest

from ragsift.retrieve.fusion import convex, normalize_scores, rrf
from ragsift.retrieve.hybrid import HybridRetriever

A = {"q": {"d1": 3.0, "d2": 2.0, "d3": 1.0}}
B = {"q": {"d3": 0.9, "d4": 0.5}}


def test_rrf_by_hand_with_weights():
    fused = rrf([A, B], k=60, weights=[1.0, 2.0])["q"]
    assert fused["d1"] == pytest.approx(1 / 61)
    assert fused["d3"] == pytest.approx(1 / 63 + 2 / 61)
    assert fused["d4"] == pytest.approx(2 / 62)


def test_convex_minmax_and_zscore_by_hand():
    fused = convex([A, B], weights=[0.3, 0.7])["q"]
    assert fused["d1"] == pytest.approx(0.3 * 1.0 + 0.7 * 0.0)
    assert fused["d2"] == pytest.approx(0.3 * 0.5)
    assert fused["d3"] == pytest.approx(0.3 * 0.0 + 0.7 * 1.0)
    z = normalize_scores({"a": 1.0, "b": 2.0, "c": 3.0}, "zscore")
    std = (2 / 3) ** 0.5
    assert z == pytest.approx({"a": -1 / std, "b": 0.0, "c": 1 / std})
    fused_z = convex([A, B], normalization="zscore")["q"]
    assert fused_z["d4"] == pytest.approx(-1.0 + -1.2247448713915890)  # B's z of d4, A's floor
    assert normalize_scores({"a": 2.0, "b": 2.0}, "minmax") == {"a": 1.0, "b": 1.0}


def test_queries_from_either_run_and_validation():
    fused = rrf([A, {"other": {"x": 1.0}}])
    assert set(fused) == {"q", "other"}
    with pytest.raises(ValueError):
        rrf([A, B], weights=[1.0])
    with pytest.raises(ValueError):
        normalize_scores({"a": 1.0}, "softmax")  # type: ignore[arg-type]


class _Fixed:
    """A stand-in member retriever that returns a fixed run."""

    def __init__(self, run):
        self.run = run
        self.depths = []

    def search(self, queries, k):
        self.depths.append(k)
        return {q: dict(list(self.run[q].items())[:k]) for q in queries}


def test_hybrid_search_is_fused_member_runs_cut_to_k():
    a, b = _Fixed(A), _Fixed(B)
    hybrid = HybridRetriever([a, b], fusion="rrf", depth=50)  # type: ignore[list-item]
    result = hybrid.search({"q": "text"}, k=2)
    assert a.depths == [50] and b.depths == [50]
    assert list(result["q"]) == ["d3", "d1"]
    with pytest.raises(ValueError):
        HybridRetriever([a])  # type: ignore[list-item]
