#!/usr/bin/env bash
# The GPU checks in one run (for a machine with an NVIDIA GPU): builds the CUDA kernel, model and
# NCCL tests and the CLI, runs the `gpu` test label, then benchmarks on the same card: sfm's
# attention kernels against PyTorch's fused attention, sfm's training step (bench_train_step_cuda
# and `sfm bench train --backend cuda`) against the PyTorch reference model (eager and
# torch.compile), and the memory accounting with and without activation recomputation.
# Logs go to $OUT (default gpu-results/). Exits with the GPU tests' status (non-zero on any skip);
# the benchmarks after them only report.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-results}
mkdir -p "$out"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DSFM_WITH_CUDA=ON "-DSFM_TEST_AREAS=kernels;comm;model;parallel;train" \
  -DSFM_BUILD_EXAMPLES=ON -DSFM_BUILD_BENCHMARKS=ON > "$out/configure.txt" 2>&1 || { tail -40 "$out/configure.txt"; exit 1; }
grep -E "^--   " "$out/configure.txt"
cmake --build build-gpu -j"$(nproc)" --target test_cuda_kernels test_nccl_comm test_vit_mae_cuda test_zero_cuda test_trainer_cuda \
  bench_train_step_cuda bench_cp_memory sfm_cli > "$out/build.txt" 2>&1 ||
  { grep -E "error" -A3 "$out/build.txt" | head -60; exit 1; }
# SFM_REQUIRE_GPU=1: a missing or broken device fails a GPU test instead of skipping it; a skip
# (or no test at all) fails this check too, so it never goes green without running on the GPU.
(cd build-gpu && SFM_REQUIRE_GPU=1 ctest -L gpu --no-tests=error --output-on-failure -V) > "$out/gpu_tests.txt" 2>&1
status=$?
echo "ctest -L gpu exit status: $status"
grep -E "Passed|Failed|Skipped|FAILED|tests passed|test cases" "$out/gpu_tests.txt" | tail -20
if grep -q -E "\*\*\*Skipped|Not Run" "$out/gpu_tests.txt"; then
  echo "gpu-check: a GPU test was skipped: failing"
  [ "$status" -ne 0 ] || status=1
fi
timeout 120 ./build-gpu/tests/kernels/cuda/test_cuda_kernels "[.bench]" > "$out/attention_bench_sfm.txt" 2>&1
grep '^{' "$out/attention_bench_sfm.txt"
timeout 120 python3 benchmarks/attention_torch.py > "$out/attention_bench_torch.txt" 2>&1
cat "$out/attention_bench_torch.txt"
for precision in fp32 tf32; do
  timeout 120 ./build-gpu/bin/bench_train_step_cuda --config base --batch 64 --precision $precision \
    > "$out/train_step_sfm_$precision.txt" 2>&1
  cat "$out/train_step_sfm_$precision.txt"
done
for dtype in fp32 bf16; do
  timeout 120 python3 tests/reference/mae_reference.py bench --model base --batch 64 --steps 5 --device cuda \
    --dtype $dtype > "$out/train_step_torch_$dtype.txt" 2>&1
  tail -1 "$out/train_step_torch_$dtype.txt"
done
timeout 120 ./build-gpu/bin/sfm bench train --backend cuda --config base --batch 64 --precision tf32 \
  > "$out/train_step_sfm_cli.txt" 2>&1
cat "$out/train_step_sfm_cli.txt"
timeout 300 python3 tests/reference/mae_reference.py bench --model base --batch 64 --steps 5 --device cuda \
  --dtype bf16 --compile > "$out/train_step_torch_bf16_compile.txt" 2>&1
tail -1 "$out/train_step_torch_bf16_compile.txt"
timeout 60 ./build-gpu/bin/bench_cp_memory > "$out/memory.txt" 2>&1
tail -5 "$out/memory.txt"
exit "$status"
