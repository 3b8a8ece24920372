"""Argument parsing of the benchmark scripts that outside checks call."""

import pytest

from benchmarks.distill_reranker import baseline_spec, gain_over, student_spec


def test_student_spec_defaults_to_the_shared_length():
    assert student_spec("small=models/st2", 256) == ("small", "models/st2", 256)


def test_student_spec_takes_its_own_length():
    assert student_spec("small@128=models/st2@128", 256) == ("small@128", "models/st2", 128)


@pytest.mark.parametrize("spec", ["models/st2", "=models/st2", "small=", "s=m@", "s=m@x",
                                  "s=m@0"])
def test_student_spec_rejects_malformed_specs(spec):
    with pytest.raises(ValueError, match="--student"):
        student_spec(spec, 256)


def test_baseline_spec_names_two_rows():
    assert baseline_spec("distilled=labels only", ["bm25", "teacher", "distilled",
                                                   "labels only"]) == ("distilled", "labels only")


@pytest.mark.parametrize("spec", ["distilled", "distilled=nobody", "nobody=teacher"])
def test_baseline_spec_rejects_unknown_rows(spec):
    with pytest.raises(ValueError, match="--baseline"):
        baseline_spec(spec, ["bm25", "teacher", "distilled"])


def test_gain_over_is_the_paired_difference_relative_to_the_baseline():
    per_query = {"student": {"q1": 0.5, "q2": 1.0}, "base": {"q1": 0.25, "q2": 0.75}}
    gain = gain_over(per_query, "student", "base")
    assert gain["baseline"] == "base"
    assert gain["gain_vs_baseline"] == pytest.approx(0.25)
    assert gain["relative_gain"] == pytest.approx(0.25 / 0.5)
    # both differences are +0.25: 2 of the 4 sign vectors reach |mean| 0.25 -> p about 0.5
    assert gain["p_vs_baseline"] == pytest.approx(0.5, abs=0.03)
    assert gain_over(per_query, "student", None) == {}
