#!/usr/bin/env bash
# Distillation recipe 4 end to end: SmolLM2 writes a query for each of DOCS sampled documents of
# DATA_DIR's corpus (scripts/synth_queries.sh: `ragsift synth`, round-trip filtered with BM25
# top 3), MiniLM-L6 is trained on the kept queries alone (configs/embedding-synth-scifact.yaml;
# no qrels), then base MiniLM and the trained model are evaluated as dense retrievers on
# DATA_DIR's test split and on each OTHER_DIR (paired tests against the base).
# usage: scripts/recipe_synth.sh DATA_DIR [OTHER_DIR ...]     (env: DOCS, default 1000)
#   e.g. DOCS=1000 scripts/recipe_synth.sh ../shared/datasets/scifact ../shared/datasets/hotpotqa-beir
set -euo pipefail
data=$1
ragsift=${RAGSIFT:-ragsift}
config=configs/embedding-synth-scifact.yaml
queries=$(sed -n 's/^data: *//p' "$config")
model=$(sed -n 's/^out: *//p' "$config")
bash scripts/synth_queries.sh "$data" "$queries" "${queries%-queries.jsonl}-beir"
"$ragsift" train embedding --config "$config"
bash scripts/compare_dense.sh runs/synth "minilm-l6 $model" "$@"
