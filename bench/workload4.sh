#!/usr/bin/env bash
# Workload 4 (issue 7): scaling of a CPU-heavy map over workers. The same
# pipeline — generate -> map (an expression of ~40 string operations per
# record) -> null — with `workers: 1` and `workers: 2` on the map, run
# alternately; prints the median wall time and records/s of each and the
# speed-up (target: at least 1.7x on 2 cores). Output order is kept
# (`ordered: true`), so the reorder buffer is part of what is measured.
#
# Usage: bench/workload4.sh [COUNT] [RUNS]      (defaults 200000, 5)
# Env:   BUILD_DIR (default build-bench)
set -euo pipefail

COUNT=${1:-200000}
RUNS=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-w4.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" --target sluice -j2 >/dev/null

# One term: a few string operations on the record's text.
term='(contains(lower(upper(s + to_string(id))), "lazy dog 7") ? 1 : 0)'
expr=$term
for _ in $(seq 2 10); do
    expr="$expr + $term"
done
for w in 1 2; do
    cat >"$WORK/w$w.yaml" <<YAML
name: workload4
stages:
  - name: gen
    type: generate
    count: $COUNT
    fields: {id: seq(), s: '"the quick brown fox jumps over the lazy dog " + to_string(seq() % 1000)'}
  - name: heavy
    type: map
    workers: $w
    ordered: true
    set: {score: '$expr'}
  - {name: sink, type: null}
YAML
done

echo "workload 4: $COUNT records, $RUNS runs each, alternating"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$RUNS"); do
    for w in 1 2; do
        /usr/bin/time -f "w$w %e %U %S" -a -o "$WORK/results.txt" \
            "$BUILD_DIR/sluice" run "$WORK/w$w.yaml" --quiet
    done
    echo "run $r/$RUNS done (load $(cut -d' ' -f1 /proc/loadavg))" >&2
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"

median() {   # median of column $2 for label $1
    awk -v p="$1" -v c="$2" '$1 == p { print $c }' "$WORK/results.txt" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
printf '\n%-10s %9s %12s %9s\n' workers "wall s" "records/s" "CPU s"
for w in 1 2; do
    wall=$(median "w$w" 2)
    cpu=$(awk -v p="w$w" '$1 == p { print $3 + $4 }' "$WORK/results.txt" | sort -g |
        awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    printf '%-10s %9.2f %12.0f %9.2f\n' "$w" "$wall" "$(echo "$COUNT / $wall" | bc -l)" "$cpu"
done
printf '\nworkers 2 vs 1: %.2fx the records/s\n' "$(echo "$(median w1 2) / $(median w2 2)" | bc -l)"
