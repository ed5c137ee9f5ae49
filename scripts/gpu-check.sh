#!/usr/bin/env bash
# The GPU checks in one run (for a machine with an NVIDIA GPU): builds the CUDA kernel and NCCL
# tests, runs the `gpu` test label, then the attention benchmark of sfm's kernels and of PyTorch's
# fused attention on the same card. Logs go to $OUT (default gpu-results/).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-results}
mkdir -p "$out"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DSFM_WITH_CUDA=ON "-DSFM_TEST_AREAS=kernels;comm" \
  -DSFM_BUILD_EXAMPLES=OFF -DSFM_BUILD_BENCHMARKS=OFF > "$out/configure.txt" 2>&1 || { tail -40 "$out/configure.txt"; exit 1; }
grep -E "^--   " "$out/configure.txt"
cmake --build build-gpu -j"$(nproc)" --target test_cuda_kernels test_nccl_comm > "$out/build.txt" 2>&1 ||
  { grep -E "error" -A3 "$out/build.txt" | head -60; exit 1; }
(cd build-gpu && ctest -L gpu --output-on-failure -V) > "$out/gpu_tests.txt" 2>&1
echo "ctest -L gpu exit status: $?"
grep -E "Passed|Failed|Skipped|FAILED|tests passed|test cases" "$out/gpu_tests.txt" | tail -20
timeout 120 ./build-gpu/tests/kernels/cuda/test_cuda_kernels "[.bench]" > "$out/attention_bench_sfm.txt" 2>&1
grep '^{' "$out/attention_bench_sfm.txt"
timeout 120 python3 benchmarks/attention_torch.py > "$out/attention_bench_torch.txt" 2>&1
cat "$out/attention_bench_torch.txt"
