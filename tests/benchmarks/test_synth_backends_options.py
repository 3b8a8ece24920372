"""``benchmarks.synth_backends --llm-weights``: one llama.cpp row per weight type, checked
against the types llama.cpp can convert to before any model loads."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.synth_backends import _weights


def test_llm_weights_lists_the_rows_in_order():
    assert _weights("native, bf16,q8_0") == ["native", "bf16", "q8_0"]


@pytest.mark.parametrize("text, words", [("native,q3", "weights 'q3': use one of native"),
                                         (" , ", "name at least one weight type")])
def test_llm_weights_refuses_unknown_or_no_types(text, words):
    with pytest.raises(argparse.ArgumentTypeError, match=words):
        _weights(text)
