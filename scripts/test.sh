#!/usr/bin/env bash
# Sets everything up and runs the whole test suite: dependencies, a Release build with tests,
# ctest (all labels; GPU tests skip loudly without a GPU), then the examples/consumer project
# built against an installed sfm with find_package.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" "$@"

# The library as users consume it: install, then build and run a separate project.
rm -rf build/install build/consumer
cmake --install build --prefix build/install >/dev/null
cmake -S examples/consumer -B build/consumer -DCMAKE_PREFIX_PATH="$PWD/build/install" -DCMAKE_BUILD_TYPE=Release
cmake --build build/consumer -j"$jobs"
(cd build/consumer && ./consumer)
echo "sfm: all tests passed"
