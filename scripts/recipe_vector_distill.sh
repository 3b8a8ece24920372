#!/usr/bin/env bash
# Distillation recipe 3 end to end: all-mpnet-base-v2's vectors distilled into MiniLM-L6 on a
# collection's unlabelled text (configs/vector-distill-scifact.yaml), then base MiniLM and the
# student searched as dense retrievers and evaluated (nDCG@10, recall@100) on DATA_DIR's test
# split and on each OTHER_DIR (out of domain), the student compared with the base by paired tests.
# MODELS_DIR: where the teacher is (or is assembled).
# usage: scripts/recipe_vector_distill.sh DATA_DIR [OTHER_DIR ...]
#   e.g. scripts/recipe_vector_distill.sh ../shared/datasets/scifact ../shared/datasets/hotpotqa-beir
set -euo pipefail
data=$1
shift
ragsift=${RAGSIFT:-ragsift}
config=configs/vector-distill-scifact.yaml
student=$(sed -n 's/^out: *//p' "$config")
teacher=$(bash scripts/fetch_mpnet.sh "${MODELS_DIR:-${RAGSIFT_CACHE_DIR:-$HOME/.cache/ragsift}/models}")
"$ragsift" train vector-distill --config "$config" --data "$data" --set "teacher=$teacher"
bash scripts/compare_dense.sh runs/vector-distill "minilm-l6 $student" "$data" "$@"
