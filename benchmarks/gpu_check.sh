#!/usr/bin/env bash
# Device check for the GPU path: the feature rows at Llama-3.2-1B's shape (benchmarks/bench_gpu.py), then
# every stage of a gpu-shaped study on random local checkpoints in bf16, CUDA Π == CPU Π bitwise. No network.
# <= 8 min on one H200.
#   bash benchmarks/gpu_check.sh                    # CUDA
#   bash benchmarks/gpu_check.sh --device cpu --width 64 --layers 2   # dry run on a CPU
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the package without an install (a bare GPU box)
exec timeout 480 "$PY" benchmarks/gpu_check.py "$@"
