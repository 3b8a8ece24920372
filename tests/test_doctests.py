"""Every ``>>>`` example in ragsift's docstrings runs (examples marked ``+SKIP`` need models or
files the test machine may lack): the docs cannot drift from the code."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import ragsift

MODULES = sorted(info.name for info in pkgutil.walk_packages(ragsift.__path__, "ragsift."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
