#!/usr/bin/env bash
# Search each BEIR folder's test split with every model as a dense retriever and evaluate the
# runs together (nDCG@10, recall@100; paired tests of each run against the first).
# usage: scripts/compare_dense.sh RUNS_DIR "MODEL [MODEL ...]" DATA_DIR [DATA_DIR ...]
#   e.g. scripts/compare_dense.sh runs/synth "minilm-l6 models/minilm-synth-scifact" \
#        ../shared/datasets/scifact
set -euo pipefail
runs_dir=$1 models=$2
shift 2
ragsift=${RAGSIFT:-ragsift}
mkdir -p "$runs_dir"
for folder in "$@"; do
  name=$(basename "$folder")
  runs=()
  for model in $models; do
    runs+=("$runs_dir/$name-$(basename "$model").trec")
    "$ragsift" search --data "$folder" --retriever "dense:$model" --out "${runs[-1]}"
  done
  echo "== $name: $models (p: paired tests against the first)"
  "$ragsift" evaluate --qrels "$folder/qrels/test.tsv" --metrics ndcg@10,recall@100 "${runs[@]}"
done
