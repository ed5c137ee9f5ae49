#!/usr/bin/env bash
# Sets everything up and runs the main job: builds the sfm CLI, writes a small synthetic seismic
# survey as MDIO (data/synth.mdio), and trains the `tiny` ViT-MAE on it on the CPU with 2 MPI ranks
# (dp = 2, ZeRO-2). Results land in runs/tiny/: metrics.jsonl, checkpoint-*/ (model.safetensors,
# optimizer.safetensors, trainer.json), latest, images/step-*.png. Extra arguments go to `sfm train`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target sfm_cli
mkdir -p data
[[ -e data/synth.mdio ]] || ./build/bin/sfm synth --out data/synth.mdio --shape 64,64,128
# Open MPI: allow root, more ranks than cores, and yield instead of spinning while waiting; on Ctrl-C
# give the ranks 30 s to save a checkpoint before SIGKILL (docs/training.md, "Stopping a run").
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_mpi_yield_when_idle=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mpirun -np 2 --oversubscribe --mca odls_base_sigkill_timeout 30 ./build/bin/sfm train examples/configs/tiny.json --set output.overwrite=true "$@"
