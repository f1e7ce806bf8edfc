#!/usr/bin/env bash
# Channel throughput, sluice vs Go: builds bench_channel (Release) and
# bench/go/chanbench.go, runs each RUNS times (alternating, so both see the
# same machine load), and prints per workload the median items/s (wall
# clock) and the median process CPU time per item, with ratios. On a
# shared machine the CPU figure is the steadier one: wall time also
# depends on how much CPU the other processes leave.
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
    "$BUILD_DIR/bench_channel" "$ITEMS" | awk 'NR > 1 { print $1, $4, $6 }' >>"$WORK/c.txt"
    "$WORK/chanbench" "$ITEMS" | awk 'NR > 1 { print $1, $4, $6 }' >>"$WORK/go.txt"
    echo "run $r/$RUNS done" >&2
done

median() {   # median of column $3 for workload $1 in file $2
    awk -v w="$1" -v c="$3" '$1 == w { print $c }' "$2" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

printf '\n%-12s %9s %9s %7s   %10s %10s %7s\n' workload "sluice" "Go" "ratio" "sluice cpu" "Go cpu" "ratio"
printf '%-12s %9s %9s %7s   %10s %10s %7s\n' "" "Mitems/s" "Mitems/s" "" "ns/item" "ns/item" "Go/sl"
for w in spsc_single spsc_batch mpmc_single mpmc_batch; do
    c=$(median "$w" "$WORK/c.txt" 2)
    g=$(median "$w" "$WORK/go.txt" 2)
    cc=$(median "$w" "$WORK/c.txt" 3)
    gc=$(median "$w" "$WORK/go.txt" 3)
    awk -v w="$w" -v c="$c" -v g="$g" -v cc="$cc" -v gc="$gc" \
        'BEGIN { printf "%-12s %9.2f %9.2f %6.2fx   %10.2f %10.2f %6.2fx\n", w, c, g, c / g, cc, gc, gc / cc }'
done
gs=$(median spsc_single "$WORK/go.txt" 2)
gsc=$(median spsc_single "$WORK/go.txt" 3)
echo
for w in spsc_batch mpmc_batch; do
    c=$(median "$w" "$WORK/c.txt" 2)
    cc=$(median "$w" "$WORK/c.txt" 3)
    awk -v w="$w" -v c="$c" -v g="$gs" -v cc="$cc" -v gc="$gsc" \
        'BEGIN { printf "sluice %s vs Go spsc_single: %.2fx items/s, %.2fx less CPU per item\n", w, c / g, gc / cc }'
done
