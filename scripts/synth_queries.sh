#!/usr/bin/env bash
# Synthetic queries for DATA_DIR's corpus: SmolLM2 writes one query for each of DOCS sampled
# documents (`ragsift synth`, seed 0), kept when BM25 ranks the source document in its top 3.
# Writes QUERIES (training rows, the source document as positive) and BEIR_DIR (the kept
# queries as a BEIR folder with `train` qrels, for `ragsift search` / `label` / `mine`).
# Resumable: a rerun after a kill keeps the finished shards.
# usage: scripts/synth_queries.sh DATA_DIR QUERIES BEIR_DIR     (env: DOCS, default 1000)
set -euo pipefail
data=$1 queries=$2 beir=$3
ragsift=${RAGSIFT:-ragsift}
mkdir -p "$(dirname "$queries")"
"$ragsift" synth --data "$data" --generator smollm2-135m --docs "${DOCS:-1000}" --seed 0 \
  --retriever bm25 --round-trip-k 3 --out "$queries" --beir "$beir"
