#!/usr/bin/env bash
# The unit tests that need no MPI, GPU or network peers' processes under AddressSanitizer and
# UndefinedBehaviorSanitizer: a clang build of their areas (core, kernels on the CPU, MAE masks,
# optimizer, inference geometry, data, Zarr/MDIO and the stores) with -fsanitize=address,undefined and no
# recovery, then ctest on it. Any report fails. The fuzz target runs under the same sanitizers
# (tests/fuzz/run.sh, label fuzz). Run by ctest as the test `sanitize` (label sanitize).
#
# Usage: scripts/sanitize.sh [BUILD_DIR (build-sanitize)]
# Exits 77 (ctest's skip code) when clang++ is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-sanitize}
if ! command -v clang++ >/dev/null 2>&1; then
  echo "******** SKIPPED: clang++ not found (apt-get install clang libclang-rt-14-dev libomp-dev) ********" >&2
  exit 77
fi
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
mkdir -p "$build"
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" -DSFM_WITH_CUDA=OFF -DSFM_WITH_ONEDNN=OFF -DSFM_BUILD_EXAMPLES=OFF \
  -DSFM_BUILD_BENCHMARKS=OFF -DSFM_SANITIZE_TEST=OFF "-DSFM_TEST_AREAS=core;kernels;mae;optim;infer;data;io" > "$build/configure.log"
cmake --build "$build" -j"$(nproc)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" -LE "mpi|gpu|fuzz"
