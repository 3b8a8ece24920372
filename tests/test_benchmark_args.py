"""Argument parsing of the benchmark scripts that outside checks call."""

import pytest

from benchmarks.distill_reranker import student_spec


def test_student_spec_defaults_to_the_shared_length():
    assert student_spec("small=models/st2", 256) == ("small", "models/st2", 256)


def test_student_spec_takes_its_own_length():
    assert student_spec("small@128=models/st2@128", 256) == ("small@128", "models/st2", 128)


@pytest.mark.parametrize("spec", ["models/st2", "=models/st2", "small=", "s=m@", "s=m@x",
                                  "s=m@0"])
def test_student_spec_rejects_malformed_specs(spec):
    with pytest.raises(ValueError, match="--student"):
        student_spec(spec, 256)
