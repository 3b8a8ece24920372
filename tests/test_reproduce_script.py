"""scripts/reproduce.sh: bash accepts its syntax, and every config and script it names exists.

Running it takes minutes even with QUICK=1 (it trains four models), so the tests check what can
break without running it: a syntax error, or a config or script renamed or deleted under it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "reproduce.sh"


def _datasets(text: str) -> list[str]:
    """The dataset names of the script's ``for name in A B; do`` loop."""
    match = re.search(r"^for name in ([^;]+); do$", text, re.MULTILINE)
    assert match, "reproduce.sh: no `for name in ...; do` loop over datasets"
    return match.group(1).split()


def _named_files(text: str) -> set[str]:
    """Every ``configs/*.yaml`` and ``scripts/*.sh`` path of the repository in the script (not
    one under a folder, such as ``$out/configs/``, that the script writes), with ``$name``
    (also written ``$1``, the dataset name passed to a helper) expanded over the datasets."""
    paths = set(re.findall(r"(?<![\w/])(?:configs|scripts)/[\w.$-]+\.(?:yaml|sh)", text))
    return {path.replace("$name", name).replace("$1", name)
            for path in paths for name in _datasets(text)}


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_bash_accepts_the_syntax():
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _optional_files(text: str) -> set[str]:
    """The paths the script tests for (``[[ -f PATH ]]``) before using: a dataset may lack
    them (the second-hop config exists for multi-hop collections only)."""
    paths = re.findall(r"\[\[ -f ((?:configs|scripts)/[\w.$-]+) \]\]", text)
    return {path.replace("$name", name) for path in paths for name in _datasets(text)}


def test_every_named_config_and_script_exists():
    text = SCRIPT.read_text()
    optional = _optional_files(text)
    assert optional, "the second-hop config is tested for before use"
    assert any((ROOT / path).is_file() for path in optional)
    named = _named_files(text) - optional
    # the four recipe configs, the pipeline config and the recipe-2 script, at least
    assert {"configs/embedding-scifact.yaml", "configs/reranker-hotpotqa-beir.yaml",
            "configs/pipeline-hybrid-rrf.yaml", "configs/pipeline-hotpotqa-beir.yaml",
            "scripts/recipe_reranker.sh"} <= named
    missing = sorted(path for path in named if not (ROOT / path).is_file())
    assert not missing, f"reproduce.sh names files that do not exist: {missing}"


def test_names_are_expanded_over_every_dataset():
    text = 'for name in scifact nowhere; do\n  x configs/embedding-$name.yaml\ndone\n'
    named = _named_files(text + '  y "$out/configs/pipeline-$name.yaml"\n')
    assert named == {"configs/embedding-scifact.yaml", "configs/embedding-nowhere.yaml"}
