#!/usr/bin/env bash
# Sets everything up and runs the main job: builds the sfm CLI and trains the `tiny` ViT-MAE on the
# CPU on a synthetic seismic volume. Results land in runs/tiny/ (metrics.jsonl, model.safetensors).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target sfm_cli
./build/bin/sfm train examples/configs/tiny.json "$@"
