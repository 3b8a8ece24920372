#!/usr/bin/env bash
# Distillation recipe 1 end to end: a 2-layer cross-encoder student trained on a teacher's scores
# (configs/reranker-student-scifact.yaml) and the same student trained on the labels alone, then
# the teacher, both students and REFERENCE (e.g. the 6-layer recipe-2 cross-encoder) reranking
# BM25's top 30 in domain (DATA_DIR's test split) and out of domain (each OTHER_DIR, plus the
# docstring task; OUT_OF_DOMAIN_QUERIES of each, default 100), with pairs/s on the same pairs
# (benchmarks/distill_reranker.py, every model on BACKEND, default onnx).
# The teacher labels come from scripts/recipe_reranker.sh (its `ragsift label` step).
# usage: scripts/recipe_distill_reranker.sh DATA_DIR TEACHER REFERENCE [OTHER_DIR ...]
#   e.g. scripts/recipe_distill_reranker.sh ../shared/datasets/scifact models/minilm-scifact \
#        models/ce-minilm-scifact ../shared/datasets/hotpotqa-beir
set -euo pipefail
data=$1 teacher=$2 reference=$3
shift 3
ragsift=${RAGSIFT:-ragsift}
config=configs/reranker-student-scifact.yaml
student=$(sed -n 's/^out: *//p' "$config")
"$ragsift" train reranker --config "$config"
"$ragsift" train reranker --config "$config" --set distill= --out "$student-labels-only"
"$ragsift" datasets docstrings --out runs/python-docstrings
models=(--teacher "$teacher" --student "student (distilled)=$student"
        --student "student (labels only)=$student-labels-only")
bench=(python -m benchmarks.distill_reranker --backend "${BACKEND:-onnx}")
"${bench[@]}" --data "$data" "${models[@]}" \
  --student "reference=$reference" --out docs/results/distill-reranker-in-domain.json
others=()
for other in "$@" runs/python-docstrings; do others+=(--data "$other"); done
"${bench[@]}" "${others[@]}" "${models[@]}" \
  --limit-queries "${OUT_OF_DOMAIN_QUERIES:-100}" \
  --out docs/results/distill-reranker-out-of-domain.json
