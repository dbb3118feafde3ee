#!/usr/bin/env bash
# Device check for the GPU path (issue 12): random ~1B-wide checkpoints built locally, every stage of a
# gpu-shaped study on CUDA in bf16, CUDA Π == CPU Π bitwise, per-stage timings. No network. <= 8 min on one H200.
#   bash benchmarks/gpu_check.sh                    # CUDA
#   bash benchmarks/gpu_check.sh --device cpu --width 64 --layers 2   # dry run on a CPU
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
exec timeout 480 "$PY" benchmarks/gpu_check.py "$@"
