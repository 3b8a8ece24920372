#!/usr/bin/env bash
# Teacher labels for distillation: TEACHER (a ragsift reranker or bi-encoder) scores BM25's top
# 10 for each train query of DATA_DIR (int8 ONNX, 256-token windows) into OUT (training jsonl
# with pos_scores/neg_scores). An existing OUT is kept (delete it to label again).
# usage: scripts/label_bm25_top.sh DATA_DIR TEACHER OUT
set -euo pipefail
data=$1 teacher=$2 out=$3
ragsift=${RAGSIFT:-ragsift}
if [[ -s "$out" ]]; then
  echo "keeping the teacher labels in $out"
  exit 0
fi
mkdir -p "$(dirname "$out")"
"$ragsift" search --data "$data" --split train --retriever bm25 --k 10 --out "${out%.jsonl}.bm25.trec"
"$ragsift" label --data "$data" --split train --run "${out%.jsonl}.bm25.trec" \
  --teacher "$teacher" --teacher-backend onnx-int8 --teacher-max-length 256 --k 10 --out "$out"
