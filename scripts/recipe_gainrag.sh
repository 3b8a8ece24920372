#!/usr/bin/env bash
# Recipe 5 end to end (GainRAG on a QA collection in the hotpotqa layout): gain labels from the
# generator for the first TRAIN_N train questions, the same questions' supporting flags as
# relevance labels, one selector trained on each (configs/reranker-gainrag-hotpotqa.yaml), then the
# EM / F1 table (benchmarks/rag_hotpotqa.py) on the first TEST_N test questions.
# usage: scripts/recipe_gainrag.sh QA_DIR [TRAIN_N] [TEST_N]
#   e.g. scripts/recipe_gainrag.sh ../shared/datasets/hotpotqa 100 100
set -euo pipefail
qa=$1 train_n=${2:-300} test_n=${3:-300}
ragsift=${RAGSIFT:-ragsift}
config=configs/reranker-gainrag-hotpotqa.yaml
base=$(sed -n 's/^model: *//p' "$config")
"$ragsift" gain-label --questions "$qa/train.jsonl" --limit "$train_n" --shard-size 4 \
  --max-passage-tokens 256 --out runs/hotpot-train-gains.jsonl
"$ragsift" gain-label --questions "$qa/train.jsonl" --limit "$train_n" --labels supporting \
  --out runs/hotpot-train-supporting.jsonl
"$ragsift" train reranker --config "$config"
"$ragsift" train reranker --config "$config" --data runs/hotpot-train-supporting.jsonl \
  --out models/reranker-hotpotqa-supporting
python -m benchmarks.rag_hotpotqa --questions "$qa/test.jsonl" --limit "$test_n" \
  --reranker "$base" --reranker models/reranker-hotpotqa-supporting \
  --selector models/selector-hotpotqa --out docs/results/rag-hotpotqa.json
