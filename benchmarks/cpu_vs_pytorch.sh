#!/usr/bin/env bash
# CPU training-step throughput: sfm's CPU backend against the PyTorch a user would install today
# (PyPI's torch: MKL GEMMs, oneDNN, SDPA), eager and torch.compile, on the shared peer model
# (../shared/baselines/mae3d_ref.py; SFM_PEER=path for another copy), same config, batch and thread
# count, in alternating rounds. Prints one JSON line per run and a summary line per config
# with the medians, the ratios sfm / eager and sfm / compiled, and the peak resident memory of each.
#
#   benchmarks/cpu_vs_pytorch.sh [--rounds 3] [--threads N] [--steps 5] [CONFIG:BATCH ...]
#   (default small:8 tiny:8 base:2)
#
# PyTorch from PyPI (≈5 GB with its CUDA wheels) is installed on first use into .venv-torch, a venv
# of its own (not the project's .venv, and never Debian's torch 1.13, which stays for the numerics
# reference); SFM_TORCH_PYTHON=/path/to/python uses another. Needs build/bin/bench_train_step
# (cmake --build build --target bench_train_step). Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
torch_python=${SFM_TORCH_PYTHON:-.venv-torch/bin/python}
if [ -z "${SFM_TORCH_PYTHON:-}" ] && ! .venv-torch/bin/python -c 'import torch' 2>/dev/null; then
  echo "installing PyTorch from PyPI into .venv-torch (once, ≈5 GB)" >&2
  python3 -m venv .venv-torch
  .venv-torch/bin/pip install --quiet torch numpy
fi
[ -x build/bin/bench_train_step ] || { echo "build/bin/bench_train_step not found: cmake --build build --target bench_train_step" >&2; exit 2; }
exec /usr/bin/python3 benchmarks/cpu_vs_pytorch.py --torch-python "$torch_python" "$@"
