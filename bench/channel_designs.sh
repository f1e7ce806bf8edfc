#!/usr/bin/env bash
# Compare channel implementations from different commits on the same
# benchmark (bench/bench_channel.c from the working tree) and Go's channel:
# each NAME=COMMIT builds engine/channel.c as of COMMIT; "NAME=." uses the
# working tree; NAME=FILE.c uses that file. Runs alternate between designs; prints medians of items/s
# (wall) and process CPU ns per item.
#
# Usage: bench/channel_designs.sh ITEMS RUNS NAME=COMMIT...
#   e.g. bench/channel_designs.sh 5000000 5 mutex=a58dfc9 vyukov=2b80954 current=.
set -euo pipefail

ITEMS=$1
RUNS=$2
shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CFLAGS="-O2 -DNDEBUG -D_GNU_SOURCE -std=c11 -I$ROOT/include -I$ROOT"

names=()
for spec in "$@"; do
    name=${spec%%=*}
    rev=${spec#*=}
    if [ "$rev" = . ]; then
        cp "$ROOT/engine/channel.c" "$WORK/$name.c"
    elif [ -f "$rev" ]; then
        cp "$rev" "$WORK/$name.c"
    else
        git -C "$ROOT" show "$rev:engine/channel.c" >"$WORK/$name.c"
    fi
    # shellcheck disable=SC2086
    cc $CFLAGS "$ROOT/bench/bench_channel.c" "$WORK/$name.c" "$ROOT/engine/context.c" \
        "$ROOT/engine/clock.c" "$ROOT/engine/error.c" -lpthread -o "$WORK/bench_$name"
    names+=("$name")
done
(cd "$ROOT/bench/go" && go build -o "$WORK/bench_go" .)
names+=(go)

echo "items per run: $ITEMS, runs: $RUNS; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$RUNS"); do
    for n in "${names[@]}"; do
        "$WORK/bench_$n" "$ITEMS" | awk 'NR > 1 { print $1, $4, $6 }' >>"$WORK/$n.txt"
    done
    echo "run $r/$RUNS done, load $(cut -d' ' -f1 /proc/loadavg)" >&2
done

median() {   # median of column $3 for workload $1 in file $2
    awk -v w="$1" -v c="$3" '$1 == w { print $c }' "$2" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
printf '\n%-14s' design
for w in spsc_single spsc_batch mpmc_single mpmc_batch; do printf ' %20s' "$w Mit/s|cpu"; done
echo
for n in "${names[@]}"; do
    printf '%-14s' "$n"
    for w in spsc_single spsc_batch mpmc_single mpmc_batch; do
        printf ' %12.2f|%7.2f' "$(median "$w" "$WORK/$n.txt" 2)" "$(median "$w" "$WORK/$n.txt" 3)"
    done
    echo
done
