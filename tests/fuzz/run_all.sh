#!/usr/bin/env bash
# Build the libFuzzer targets (clang, -DSLUICE_FUZZ=ON, ASan+UBSan) in their
# own build directory and run each for a few seconds: first every saved
# crasher in tests/fuzz/regressions/<target>/ once (they must pass), then
# fuzzing from the seed corpus tests/fuzz/corpus/<target>/ (plus the
# pipeline files in pipelines/ and tests/fixtures/config/ for fuzz_config).
#
#   tests/fuzz/run_all.sh [SECONDS]        # default 5 per target
#   FUZZ_BUILD=build-fuzz FUZZ_JOBS=2 tests/fuzz/run_all.sh 3600
#
# New inputs found go to a scratch directory, not into the repository; a
# crash leaves its input as FUZZ_BUILD/crash-* (or leak-*, timeout-*) and
# fails the script. See docs/reliability.md for longer runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5}
out=${FUZZ_BUILD:-build-fuzz}
jobs=${FUZZ_JOBS:-2}

CC=clang cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON \
    -DSLUICE_SANITIZE=address,undefined -DSLUICE_WERROR=ON >/dev/null
targets=()
for src in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done
cmake --build "$out" -j"$jobs" --target "${targets[@]}" >/dev/null

scratch=$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
status=0
for t in "${targets[@]}"; do
    name=${t#fuzz_}
    args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0
          -artifact_prefix="$out/$t-")
    [ -f "tests/fuzz/$name.dict" ] && args+=(-dict="tests/fuzz/$name.dict")
    if [ -d "tests/fuzz/regressions/$name" ] &&
       [ -n "$(ls -A "tests/fuzz/regressions/$name")" ]; then
        if ! "$out/$t" "${args[@]}" "tests/fuzz/regressions/$name"/* >"$scratch/$t.log" 2>&1; then
            echo "FAIL: $t: a saved regression input fails again" >&2
            tail -30 "$scratch/$t.log" >&2
            status=1
            continue
        fi
    fi
    dirs=("$scratch/$t" "tests/fuzz/corpus/$name")
    if [ "$name" = config ]; then
        dirs+=(pipelines tests/fixtures/config/good tests/fixtures/config/bad)
    fi
    mkdir -p "$scratch/$t"
    if "$out/$t" "${args[@]}" "${dirs[@]}" >"$scratch/$t.log" 2>&1; then
        echo "ok: $t: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$scratch/$t.log" |
            grep -o '[0-9]*$' || grep -Eo '#[0-9]+' "$scratch/$t.log" | tail -1) runs in ${secs}s"
    else
        echo "FAIL: $t (input saved under $out/$t-*)" >&2
        tail -40 "$scratch/$t.log" >&2
        status=1
    fi
done
exit "$status"
