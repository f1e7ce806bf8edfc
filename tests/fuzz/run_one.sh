#!/usr/bin/env bash
# Run one built libFuzzer target briefly, as ctest does (fuzz/<target>, in a
# build configured with -DSLUICE_FUZZ=ON) and run_all.sh does for every
# target:
#
#   tests/fuzz/run_one.sh build-fuzz/fuzz_json [SECONDS]    # default 5
#
# First every saved crasher in tests/fuzz/regressions/<name>/ is replayed
# once (each must pass now), then the target fuzzes for SECONDS from its
# seed corpus tests/fuzz/corpus/<name>/ (plus the pipeline files in
# pipelines/ and tests/fixtures/config/ for fuzz_config) and its dictionary
# tests/fuzz/<name>.dict. New inputs go to a scratch directory, not into the
# repository. A finding fails the script and leaves its input next to the
# binary as <target>-crash-* (or -leak-, -timeout-, -oom-); see
# docs/reliability.md for what to do with it.
set -euo pipefail
bin=$(realpath "${1:?usage: run_one.sh FUZZ_BINARY [SECONDS]}")
secs=${2:-5}
src=$(cd "$(dirname "$0")/../.." && pwd)
t=$(basename "$bin")
name=${t#fuzz_}
cd "$src"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz-$name.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
args=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1
      -artifact_prefix="$(dirname "$bin")/$t-")
[ -f "tests/fuzz/$name.dict" ] && args+=(-dict="tests/fuzz/$name.dict")

regressions=()
if [ -d "tests/fuzz/regressions/$name" ]; then
    for f in "tests/fuzz/regressions/$name"/*; do
        [ -f "$f" ] && regressions+=("$f")
    done
fi
if ((${#regressions[@]})); then
    if ! "$bin" "${args[@]}" "${regressions[@]}" >"$scratch/replay.log" 2>&1; then
        echo "FAIL: $t: a saved regression input fails again" >&2
        grep -E '^Running: |ERROR|runtime error|SUMMARY|fuzz_' "$scratch/replay.log" | tail -20 >&2
        exit 1
    fi
    echo "ok: $t: ${#regressions[@]} saved regression input(s) pass"
fi

dirs=("$scratch/corpus" "tests/fuzz/corpus/$name")
if [ "$name" = config ]; then
    dirs+=(pipelines tests/fixtures/config/good tests/fixtures/config/bad)
fi
mkdir -p "$scratch/corpus"
if "$bin" "${args[@]}" -max_total_time="$secs" "${dirs[@]}" >"$scratch/fuzz.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/fuzz.log")
    echo "ok: $t: ${runs:-?} runs in ${secs}s, no finding"
else
    echo "FAIL: $t (the input is saved as $(dirname "$bin")/$t-*)" >&2
    tail -40 "$scratch/fuzz.log" >&2
    exit 1
fi
