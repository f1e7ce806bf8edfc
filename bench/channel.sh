#!/usr/bin/env bash
# Channel throughput, sluice vs Go: builds bench_channel (Release) and
# bench/go/chanbench.go, runs each RUNS times (alternating, so both see the
# same machine load), and prints the median items/s per workload and the
# ratio sluice/Go.
#
# Usage: bench/channel.sh [ITEMS] [RUNS]     (defaults 20000000, 5)
# Env:   BUILD_DIR (default build-bench)
set -euo pipefail

ITEMS=${1:-20000000}
RUNS=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" --target bench_channel -j2 >/dev/null
(cd "$ROOT/bench/go" && go build -o "$WORK/chanbench" .)

echo "items per run: $ITEMS, runs: $RUNS, capacity 1024, batch 64"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$RUNS"); do
    "$BUILD_DIR/bench_channel" "$ITEMS" | awk 'NR > 1 { print $1, $4 }' >>"$WORK/c.txt"
    "$WORK/chanbench" "$ITEMS" | awk 'NR > 1 { print $1, $4 }' >>"$WORK/go.txt"
    echo "run $r/$RUNS done" >&2
done

median() {   # median of the values for workload $1 in file $2
    awk -v w="$1" '$1 == w { print $2 }' "$2" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

printf '\n%-12s %14s %14s %9s %14s\n' workload "sluice Mit/s" "Go Mit/s" "ratio" "sluice ns/item"
for w in spsc_single spsc_batch mpmc_single mpmc_batch; do
    c=$(median "$w" "$WORK/c.txt")
    g=$(median "$w" "$WORK/go.txt")
    awk -v w="$w" -v c="$c" -v g="$g" \
        'BEGIN { printf "%-12s %14.2f %14.2f %8.2fx %14.2f\n", w, c, g, c / g, 1000 / c }'
done
gs=$(median spsc_single "$WORK/go.txt")
echo
for w in spsc_batch mpmc_batch; do
    c=$(median "$w" "$WORK/c.txt")
    awk -v w="$w" -v c="$c" -v g="$gs" \
        'BEGIN { printf "%s vs Go spsc_single: %.2fx\n", w, c / g }'
done
