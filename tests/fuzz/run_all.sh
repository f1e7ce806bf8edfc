#!/usr/bin/env bash
# Build the libFuzzer targets (clang, -DSLUICE_FUZZ=ON, ASan+UBSan) in their
# own build directory and run each briefly through ctest (fuzz/<target>,
# tests/fuzz/run_one.sh): first every saved crasher in
# tests/fuzz/regressions/<target>/ once (they must pass), then fuzzing from
# the seed corpus for SECONDS.
#
#   tests/fuzz/run_all.sh [SECONDS]        # default 5 per target
#   FUZZ_BUILD=build-fuzz FUZZ_JOBS=2 tests/fuzz/run_all.sh 60
#
# scripts/test runs the same with 3 seconds per target. A crash leaves its
# input as FUZZ_BUILD/<target>-crash-* (or -leak-, -timeout-) and fails the
# script. See docs/reliability.md for runs of hours.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5}
out=${FUZZ_BUILD:-build-fuzz}
jobs=${FUZZ_JOBS:-2}

CC=clang cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON \
    -DSLUICE_SANITIZE=address,undefined -DSLUICE_WERROR=ON \
    -DSLUICE_FUZZ_SECONDS="$secs" >/dev/null
targets=()
for src in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done
cmake --build "$out" -j"$jobs" --target "${targets[@]}" >/dev/null
cd "$out"
ctest -L fuzz -j"$jobs" --output-on-failure
