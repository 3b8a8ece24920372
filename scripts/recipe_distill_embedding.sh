#!/usr/bin/env bash
# Distillation recipe 2 end to end (configs/embedding-distill-scifact.yaml): the teacher
# (TEACHER, default the cross-encoder from scripts/recipe_reranker.sh) labels BM25's top 10
# for each train query of DATA_DIR (scripts/label_bm25_top.sh; labels already there are kept),
# MiniLM-L6 is trained on its score lists (KL + InfoNCE) and, as the baseline, with the InfoNCE
# alone on the same groups; then base MiniLM and both students search DATA_DIR's test split and
# each OTHER_DIR plus the docstring task as dense retrievers (paired tests against base MiniLM).
# usage: scripts/recipe_distill_embedding.sh DATA_DIR [OTHER_DIR ...]
#   e.g. scripts/recipe_distill_embedding.sh ../shared/datasets/scifact ../shared/datasets/hotpotqa-beir
set -euo pipefail
data=$1
ragsift=${RAGSIFT:-ragsift}
config=configs/embedding-distill-scifact.yaml
setting() { sed -n "s/^$1: *//p" "$config"; }
labels=$(setting data) student=$(setting out)
bash scripts/label_bm25_top.sh "$data" "${TEACHER:-models/ce-minilm-scifact}" "$labels"
"$ragsift" train embedding --config "$config"
"$ragsift" train embedding --config "$config" --set distill= --out "$student-labels-only"
"$ragsift" datasets docstrings --out runs/python-docstrings
bash scripts/compare_dense.sh runs/distill-embedding "minilm-l6 $student-labels-only $student" \
  "$@" runs/python-docstrings
