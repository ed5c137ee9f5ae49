#!/usr/bin/env bash
# CPU training-step throughput: sfm's CPU backend and the PyTorch reference, same config, batch and
# thread count, run back to back on this machine. Prints both JSON lines and a summary line with
# the ratio sfm / PyTorch in samples/s.
#   benchmarks/cpu_vs_pytorch.sh [CONFIG=small] [BATCH=8] [THREADS=nproc] [STEPS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-small} batch=${2:-8} threads=${3:-$(nproc)} steps=${4:-5}
sfm_json=$(OMP_NUM_THREADS=$threads ./build/bin/bench_train_step --config "$config" --batch "$batch" \
  --steps "$steps" --threads "$threads")
torch_json=$(/usr/bin/python3 tests/reference/mae_reference.py bench --model "$config" --batch "$batch" \
  --steps "$steps" --threads "$threads")
echo "$sfm_json"
echo "$torch_json"
/usr/bin/python3 -c '
import json, sys
s, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"config": s["model"], "batch": s["batch"], "threads": s["threads"],
                  "sfm_samples_per_s": s["samples_per_s"], "pytorch_samples_per_s": t["samples_per_s"],
                  "ratio_sfm_over_pytorch": s["samples_per_s"] / t["samples_per_s"]}))' "$sfm_json" "$torch_json"
