#!/usr/bin/env bash
# Reproduce the quality tables (README "Measured quality", docs/training.md "Recipes measured
# here", recipes 1 and 2) from scratch in one command. For SciFact and hotpotqa-beir:
#   1. base runs on the test split: BM25, MiniLM-L6 (dense:minilm-l6), their RRF hybrid
#      (configs/pipeline-hybrid-rrf.yaml) and their convex hybrid;
#   2. recipe 1: the MiniLM bi-encoder trained from configs/embedding-<dataset>.yaml, then
#      searched as a dense retriever;
#   3. recipe 2: scripts/recipe_reranker.sh with the recipe-1 model as teacher (BM25 top 30 of
#      the train queries labelled, the cross-encoder trained from configs/reranker-<dataset>.yaml,
#      BM25's top 100 of the test queries reranked);
#   4. the pipeline recipe (configs/pipeline-<dataset>.yaml, docs/training.md "Pipelines
#      measured here") with this dataset's recipe-1 and recipe-2 models: BM25 + the bi-encoder,
#      RRF, the top 100 (SciFact: 50) re-scored by the cross-encoder, RRF of both orders;
#   5. `ragsift evaluate` of all runs, BM25 first (paired tests of every run against BM25).
# Everything goes under OUT; a step whose output is there is skipped, so a rerun resumes. At the
# end it prints the tables and the wall time of each step (also in OUT/timings.tsv).
# QUICK=1 runs every step on a slice of each dataset (16 train and 5 test queries, their judged
# documents and 60 others) with 2-step schedules: a check of the plumbing in minutes, not of
# the figures.
# usage: scripts/reproduce.sh   (run from anywhere; relative paths are from the repository root)
# env: DATA_ROOT (default ../shared/datasets), OUT (default reproduce, or reproduce-quick with
#      QUICK=1), QUICK (0 or 1), RAGSIFT (default ragsift), PYTHON (default the python next to
#      ragsift, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=${QUICK:-0}
data_root=${DATA_ROOT:-../shared/datasets}
if [[ $quick == 1 ]]; then out=${OUT:-reproduce-quick}; else out=${OUT:-reproduce}; fi
export RAGSIFT=${RAGSIFT:-ragsift}
ragsift=$RAGSIFT
python=${PYTHON:-$(dirname "$(command -v "$ragsift")")/python}
[[ -x $python ]] || python=python3
metrics=ndcg@10,recall@100,mrr@10
mkdir -p "$out/runs" "$out/models" "$out/configs" "$out/tables"
timings=()

# step NAME OUTPUT COMMAND...: run COMMAND unless OUTPUT exists; record its wall time.
step() {
  local name=$1 output=$2
  shift 2
  if [[ -e $output ]]; then
    echo "== $name: kept ($output exists)"
    timings+=("$name	kept")
    return
  fi
  echo "== $name"
  local start=$SECONDS
  "$@"
  timings+=("$name	$((SECONDS - start)) s")
  printf '%s\t%s\t%s s\n' "$(date -u +%FT%TZ)" "$name" "$((SECONDS - start))" \
    >>"$out/timings.tsv"
}

# quick_slice SRC DST: a small BEIR folder with both splits (benchmarks/common.py slice_dataset).
quick_slice() {
  "$python" - "$1" "$2" <<'EOF'
import os
import shutil
import sys
from pathlib import Path

from benchmarks.common import slice_dataset
from ragsift.data.beir import BeirDataset, load_beir
from ragsift.data.beir_write import write_beir

src, dst = sys.argv[1], Path(sys.argv[2])
train = slice_dataset(load_beir(src, "train"), 16, 60)
test = slice_dataset(load_beir(src, "test"), 5, 60)
keep = train.corpus.keys() | test.corpus.keys()
corpus = {d: doc for d, doc in load_beir(src, "test").corpus.items() if d in keep}
queries = {**train.queries, **test.queries}
write_beir(BeirDataset(corpus, queries, train.qrels, dst, "train"), dst)
staged = dst.with_name(dst.name + ".test")
write_beir(BeirDataset(corpus, queries, test.qrels, staged, "test"), staged)
os.replace(staged / "qrels" / "test.tsv", dst / "qrels" / "test.tsv")
shutil.rmtree(staged)
EOF
}

# reranker_config CONFIG MODEL_OUT LABELS DST [START]: DST, the reranker config CONFIG writing
# MODEL_OUT from LABELS (and from START, when given: its `model:`) (QUICK: 2 steps of 2
# groups); scripts/recipe_reranker.sh reads its `out:`.
reranker_config() {
  local edits=(-e "s|^out: .*|out: $2|" -e "s|^data: .*|data: $3|")
  if [[ -n ${5:-} ]]; then
    edits+=(-e "s|^model: .*|model: $5|")
  fi
  if [[ $quick == 1 ]]; then
    edits+=(-e "s|^batch_size: .*|batch_size: 2|" -e '$a max_steps: 2')
  fi
  sed "${edits[@]}" "$1" >"$4.tmp"
  mv "$4.tmp" "$4"
}

# pipeline_config CONFIG BI_ENCODER CROSS_ENCODER DST [HOP_MODEL]: DST, the pipeline recipe
# CONFIG with these models (its `dense:models/minilm-*` member becomes BI_ENCODER).
pipeline_config() {
  sed -e "s|dense:models/minilm-[^\"]*|dense:$2|" -e "s|^rerank_model: .*|rerank_model: $3|" \
    -e "s|^hop_model: .*|hop_model: ${5:-}|" "$1" >"$4.tmp"
  mv "$4.tmp" "$4"
}

# runfile RUN: the test-split run file RUN of the dataset at hand ($prefix).
runfile() { echo "$prefix-test-$1.trec"; }

tables=()
for name in scifact hotpotqa-beir; do
  src=$data_root/$name
  if [[ ! -d $src ]]; then
    echo "== $name: skipped ($src not found; DATA_ROOT is the folder holding it)"
    continue
  fi
  data=$src
  train_args=()
  if [[ $quick == 1 ]]; then
    data=$out/data/$name
    step "$name: quick slice" "$data/qrels/test.tsv" quick_slice "$src" "$data"
    train_args=(--max-steps 2 --batch-size 4 --set eval_queries=5)
  fi
  prefix=$out/runs/$name
  bi_encoder=$out/models/minilm-$name
  step "$name: bm25" "$(runfile bm25)" \
    "$ragsift" search --data "$data" --split test --retriever bm25 --k 100 --out "$(runfile bm25)"
  step "$name: minilm-l6" "$(runfile minilm)" \
    "$ragsift" search --data "$data" --retriever dense:minilm-l6 --out "$(runfile minilm)"
  step "$name: hybrid rrf" "$(runfile hybrid-rrf)" \
    "$ragsift" search --data "$data" --pipeline configs/pipeline-hybrid-rrf.yaml \
    --out "$(runfile hybrid-rrf)"
  step "$name: hybrid convex" "$(runfile hybrid-convex)" \
    "$ragsift" search --data "$data" --retriever hybrid:bm25+dense:minilm-l6 --fusion convex \
    --out "$(runfile hybrid-convex)"
  step "$name: recipe 1 training" "$bi_encoder" \
    "$ragsift" train embedding --config "configs/embedding-$name.yaml" --data "$data" \
    --eval-data "$data" --out "$bi_encoder" "${train_args[@]}"
  step "$name: recipe 1 search" "$(runfile recipe1)" \
    "$ragsift" search --data "$data" --retriever "dense:$bi_encoder" --out "$(runfile recipe1)"
  config=$out/configs/reranker-$name.yaml
  reranker_config "configs/reranker-$name.yaml" "$out/models/ce-minilm-$name" \
    "$prefix-train-labels.jsonl" "$config"
  # the recipe writes $prefix-test-ce.trec last (and BM25's test run again, identically)
  step "$name: recipe 2 (label, train, rerank)" "$(runfile ce)" \
    bash scripts/recipe_reranker.sh "$data" "$bi_encoder" "$config" "$prefix"
  pipeline=$out/configs/pipeline-$name.yaml
  pipeline_config "configs/pipeline-$name.yaml" "$bi_encoder" "$out/models/ce-minilm-$name" \
    "$pipeline"
  step "$name: pipeline" "$(runfile pipeline)" \
    "$ragsift" search --data "$data" --pipeline "$pipeline" --out "$(runfile pipeline)"
  evaluated=(bm25 minilm hybrid-rrf hybrid-convex recipe1 ce pipeline)
  # the second hop, for collections of multi-hop questions (a second-hop config of their own)
  if [[ -f configs/reranker-hop-$name.yaml ]]; then
    pairs=$prefix-train-hop-pairs.jsonl
    step "$name: second-hop pairs" "$pairs" \
      "$ragsift" hop-pairs --data "$data" --run "$prefix-train-bm25.trec" --out "$pairs"
    hop_config=$out/configs/reranker-hop-$name.yaml
    reranker_config "configs/reranker-hop-$name.yaml" "$out/models/ce-hop-$name" "$pairs" \
      "$hop_config" "$out/models/ce-minilm-$name"
    step "$name: second-hop training" "$out/models/ce-hop-$name" \
      "$ragsift" train reranker --config "$hop_config"
    hop_pipeline=$out/configs/pipeline-hop-$name.yaml
    pipeline_config configs/pipeline-hotpotqa-beir-hop.yaml "$bi_encoder" \
      "$out/models/ce-minilm-$name" "$hop_pipeline" "$out/models/ce-hop-$name"
    step "$name: pipeline + second hop" "$(runfile pipeline-hop)" \
      "$ragsift" search --data "$data" --pipeline "$hop_pipeline" --out "$(runfile pipeline-hop)"
    evaluated+=(pipeline-hop)
  fi
  table=$out/tables/$name.txt
  echo "== $name: evaluate"
  runs=()
  for run in "${evaluated[@]}"; do runs+=("$(runfile "$run")"); done
  "$ragsift" evaluate --qrels "$data/qrels/test.tsv" --metrics "$metrics" "${runs[@]}" \
    >"$table.tmp"
  mv "$table.tmp" "$table"
  tables+=("$name	$table")
done

if [[ ${#tables[@]} == 0 ]]; then
  echo "no dataset found under $data_root (set DATA_ROOT)" >&2
  exit 1
fi
for entry in "${tables[@]}"; do
  echo
  echo "## ${entry%%	*} (test qrels; p: paired tests against bm25)"
  cat "${entry#*	}"
done
echo
echo "## wall time of each step (this invocation)"
printf '%s\n' "${timings[@]}"
echo "total: $SECONDS s"
