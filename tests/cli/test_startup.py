"""Start-up: the parser lists every subcommand without importing them, and ``--help``,
``evaluate`` and ``datasets validate`` run without importing torch or transformers."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ragsift.cli.main import COMMANDS, build_parser

CLI = Path(__file__).resolve().parents[2] / "src" / "ragsift" / "cli"

#: Runs ``main(argv)`` in a fresh interpreter and prints the exit code and the heavy modules
#: it imported, as JSON on the last line of stdout.
PROBE = """
import json, sys
from ragsift.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in ("torch", "transformers") if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}))
"""


def run_probe(*argv: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                          timeout=120, check=False)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_table_lists_every_module_with_the_help_it_registers():
    modules = {p.stem for p in CLI.glob("*.py")
               if "def register(" in p.read_text()}
    fix = "keep COMMANDS in src/ragsift/cli/main.py in step with the subcommand modules"
    assert {command.module for command in COMMANDS.values()} == modules, fix
    for name, command in COMMANDS.items():
        subparsers = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"ragsift.cli.{command.module}").register(subparsers)
        registered = [(a.dest, a.help) for a in subparsers._choices_actions]
        assert registered == [(name, command.help)], fix


def test_placeholders_list_every_command_and_the_run_one_is_full(capsys):
    parser = build_parser(["evaluate"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps long help lines
    for name, command in COMMANDS.items():
        assert name in out and command.help in out
    args = parser.parse_args(["evaluate", "--qrels", "q.tsv", "a.trec"])
    assert args.runs == ["a.trec"] and callable(args.func)


@pytest.mark.parametrize("argv", [["--help"], ["evaluate", "--help"],
                                  ["datasets", "validate", "--help"]])
def test_help_imports_no_torch(argv):
    assert run_probe(*argv) == {"code": 0, "heavy": []}


def test_evaluate_and_validate_run_without_torch(tiny_beir, tmp_path):
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 1.0 t\n")
    assert run_probe("evaluate", "--qrels", str(tiny_beir / "qrels" / "test.tsv"),
                     "--json", str(run)) == {"code": 0, "heavy": []}
    assert run_probe("datasets", "validate", str(tiny_beir)) == {"code": 0, "heavy": []}


def test_the_probe_sees_torch_when_a_command_imports_it():
    """``search --help`` builds the retriever options, whose encoder backends import torch."""
    result = run_probe("search", "--help")
    assert result["code"] == 0 and "torch" in result["heavy"]
