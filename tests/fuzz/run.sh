#!/usr/bin/env bash
# Builds the Zarr fuzz target (tests/fuzz/fuzz_zarr.cpp) with clang's libFuzzer, AddressSanitizer and
# UBSan, writes its seed corpus and runs it for a bounded time. Any crash, leak, sanitizer report or
# non-sfm::Error exception fails the run and leaves the input as BUILD_DIR/crash-*. SFM_FUZZ_SEED and
# SFM_FUZZ_RUNS choose another seed or a longer run. tests/fuzz/regressions holds inputs that once
# crashed; they run first, every time.
#
# Usage: tests/fuzz/run.sh [SECONDS (60)] [BUILD_DIR (build-fuzz)]
# Exits 77 (ctest's skip code) when no clang++ with libFuzzer is installed (Debian: clang, and
# libclang-rt-14-dev where the runtime is packaged apart; scripts/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
build=${2:-build-fuzz}
mkdir -p "$build"

cxx=""
for candidate in ${SFM_FUZZ_CXX:-} clang++ clang++-16 clang++-15 clang++-14; do
  command -v "$candidate" >/dev/null 2>&1 || continue
  printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' >"$build/probe.cpp"
  if "$candidate" -fsanitize=fuzzer "$build/probe.cpp" -o "$build/probe" >/dev/null 2>&1; then
    cxx=$candidate
    break
  fi
done
if [ -z "$cxx" ]; then
  echo "******** SKIPPED: no clang++ with libFuzzer found (install clang and libclang-rt-14-dev) ********" >&2
  exit 77
fi

flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
libs=()
for lib in blosc zstd z lz4; do libs+=("-l$lib"); done
echo "building $build/fuzz_zarr with $("$cxx" --version | head -1)"
"$cxx" "${flags[@]}" -Iinclude tests/fuzz/fuzz_zarr.cpp -o "$build/fuzz_zarr" "${libs[@]}" -pthread

rm -rf "$build/seeds"
SFM_FUZZ_WRITE_SEEDS="$build/seeds" "$build/fuzz_zarr"
mkdir -p "$build/corpus"
echo "fuzzing for $seconds s from $(ls "$build/seeds" | wc -l) seeds and $(ls "$build/corpus" | wc -l) corpus inputs"
# A fixed seed and run count keep the ctest run reproducible; the time limit only bounds it.
"$build/fuzz_zarr" -seed="${SFM_FUZZ_SEED:-1}" -runs="${SFM_FUZZ_RUNS:-400000}" -max_total_time="$seconds" \
  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$build/" "$build/corpus" "$build/seeds" tests/fuzz/regressions
