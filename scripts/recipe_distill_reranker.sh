#!/usr/bin/env bash
# Distillation recipe 1 end to end (configs/reranker-student-scifact.yaml): the config's `model`
# (a cross-encoder, the teacher) labels BM25's top 10 for each train query of DATA_DIR and for
# each synthetic query SmolLM2 writes for DOCS of its documents (scripts/label_bm25_top.sh,
# scripts/synth_queries.sh; env DOCS, default 1000, the measured run used 700; labels already
# there are kept), a 2-layer student cut from it is trained on the teacher's logits and token
# states and, as the baseline, on the labels alone; then the teacher and both students rerank
# BM25's top 30 in domain (DATA_DIR's test split) and out of domain (each OTHER_DIR, plus the
# docstring task; OUT_OF_DOMAIN_QUERIES of each, default 100), with pairs/s on the same pairs
# (benchmarks/distill_reranker.py, every model on BACKEND, default onnx) and the distilled
# student's gain over the labels-only one with its p-value.
# The teacher (models/ce-minilm-scifact) comes from scripts/recipe_reranker.sh.
# usage: scripts/recipe_distill_reranker.sh DATA_DIR [OTHER_DIR ...]
#   e.g. scripts/recipe_distill_reranker.sh ../shared/datasets/scifact ../shared/datasets/hotpotqa-beir
set -euo pipefail
data=$1
shift
ragsift=${RAGSIFT:-ragsift}
config=configs/reranker-student-scifact.yaml
setting() { sed -n "s/^$1: *//p" "$config"; }
teacher=$(setting model) labels=$(setting data) student=$(setting out)
# the teacher labels BM25's top 10 for the train queries and for synthetic ones (no qrels
# needed: the source document is the positive); the student trains on both
synth=runs/synth/$(basename "$data")
bash scripts/label_bm25_top.sh "$data" "$teacher" "${labels%.jsonl}-train.jsonl"
bash scripts/synth_queries.sh "$data" "$synth-queries.jsonl" "$synth-beir"
bash scripts/label_bm25_top.sh "$synth-beir" "$teacher" "${labels%.jsonl}-synth.jsonl"
cat "${labels%.jsonl}-train.jsonl" "${labels%.jsonl}-synth.jsonl" > "$labels.tmp"
mv "$labels.tmp" "$labels"
"$ragsift" train reranker --config "$config"
"$ragsift" train reranker --config "$config" --set distill= --set hidden_distill_weight=0 \
  --out "$student-labels-only"
"$ragsift" datasets docstrings --out runs/python-docstrings
models=(--teacher "$teacher" --student "student (distilled)=$student"
        --student "student (labels only)=$student-labels-only"
        --baseline "student (distilled)=student (labels only)")
bench=(python -m benchmarks.distill_reranker --backend "${BACKEND:-onnx}")
"${bench[@]}" --data "$data" "${models[@]}" --out docs/results/distill-reranker-in-domain.json
others=()
for other in "$@" runs/python-docstrings; do others+=(--data "$other"); done
"${bench[@]}" "${others[@]}" "${models[@]}" \
  --limit-queries "${OUT_OF_DOMAIN_QUERIES:-100}" \
  --out docs/results/distill-reranker-out-of-domain.json
