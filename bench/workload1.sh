#!/usr/bin/env bash
# Workload 1 (issue 7): JSON lines -> parse -> filter status >= 500 -> map
# (latency_s = latency_ms / 1000.0, severity = "high") -> JSON-lines file,
# in sluice and in its baselines, run alternately in one invocation:
#
#   sluice       the pipeline below, metrics on (the default)
#   sluice-off   the same with SLUICE_METRICS=off (workload 6: overhead)
#   go           bench/go/pipeline (goroutine per stage, buffered channels,
#                encoding/json into map[string]any)
#   go-typed     the same decoding into a struct (-typed)
#   jq           jq -c 'select(.status >= 500) | ...'
#
# Prints per program the median wall time, records/s (input lines / wall)
# and process CPU seconds, and the ratios of sluice to each baseline. Every
# run's output line count is checked against jq's.
#
# Usage: bench/workload1.sh [COUNT] [RUNS] [PROGRAMS]
#        (defaults 1000000, 5, "sluice sluice-off go go-typed jq")
# Env:   BUILD_DIR (default build-bench), PARSE_WORKERS (default 1)
set -euo pipefail

COUNT=${1:-1000000}
RUNS=${2:-5}
PROGRAMS=${3:-sluice sluice-off go go-typed jq}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
PARSE_WORKERS=${PARSE_WORKERS:-1}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-w1.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" --target sluice -j2 >/dev/null
cc -O2 -o "$WORK/gen_events" "$ROOT/bench/gen_events.c"
(cd "$ROOT/bench/go" && go build -o "$WORK/gopipe" ./pipeline)
"$WORK/gen_events" --count "$COUNT" --seed 1 --output "$WORK/events.jsonl"

cat >"$WORK/w1.yaml" <<YAML
name: workload1
stages:
  - {name: read, type: file, path: $WORK/events.jsonl}
  - {name: parse, type: json, workers: $PARSE_WORKERS, ordered: true}
  - {name: errors, type: filter, where: status >= 500}
  - name: enrich
    type: map
    set: {latency_s: latency_ms / 1000.0, severity: '"high"'}
  - {name: out, type: file, path: $WORK/out.jsonl, mode: truncate}
YAML
JQ_FILTER='select(.status >= 500) | .latency_s = .latency_ms / 1000 | .severity = "high"'

run_one() {   # run_one PROGRAM: appends "PROGRAM wall cpu lines" to results
    local p=$1 t="$WORK/time.txt"
    rm -f "$WORK/out.jsonl"
    case "$p" in
    sluice) /usr/bin/time -f '%e %U %S' -o "$t" "$BUILD_DIR/sluice" run "$WORK/w1.yaml" --quiet ;;
    sluice-off) SLUICE_METRICS=off /usr/bin/time -f '%e %U %S' -o "$t" \
                    "$BUILD_DIR/sluice" run "$WORK/w1.yaml" --quiet ;;
    go) /usr/bin/time -f '%e %U %S' -o "$t" "$WORK/gopipe" "$WORK/events.jsonl" "$WORK/out.jsonl" 2>/dev/null ;;
    go-typed) /usr/bin/time -f '%e %U %S' -o "$t" "$WORK/gopipe" -typed \
                  "$WORK/events.jsonl" "$WORK/out.jsonl" 2>/dev/null ;;
    jq) /usr/bin/time -f '%e %U %S' -o "$t" jq -c "$JQ_FILTER" "$WORK/events.jsonl" >"$WORK/out.jsonl" ;;
    *) echo "unknown program $p" >&2; exit 2 ;;
    esac
    local lines
    lines=$(wc -l <"$WORK/out.jsonl")
    awk -v p="$p" -v l="$lines" '{ printf "%s %s %.2f %s\n", p, $1, $2 + $3, l }' "$t" >>"$WORK/results.txt"
}

echo "workload 1: $COUNT events ($(du -m "$WORK/events.jsonl" | cut -f1) MB), $RUNS runs each, alternating; parse workers: $PARSE_WORKERS"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $(go version | cut -d' ' -f3), $(jq --version), $(cc --version | head -1)"
for r in $(seq 1 "$RUNS"); do
    for p in $PROGRAMS; do
        run_one "$p"
    done
    echo "run $r/$RUNS done (load $(cut -d' ' -f1 /proc/loadavg))" >&2
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"

median() {   # median of column $2 for program $1
    awk -v p="$1" -v c="$2" '$1 == p { print $c }' "$WORK/results.txt" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Every program must write the same number of lines.
if [ "$(awk '{ print $4 }' "$WORK/results.txt" | sort -u | wc -l)" -ne 1 ]; then
    echo "output line counts differ:" >&2
    cat "$WORK/results.txt" >&2
    exit 1
fi

printf '\n%-11s %9s %12s %9s\n' program "wall s" "records/s" "CPU s"
for p in $PROGRAMS; do
    w=$(median "$p" 2)
    c=$(median "$p" 3)
    printf '%-11s %9.2f %12.0f %9.2f\n' "$p" "$w" "$(echo "$COUNT / $w" | bc -l)" "$c"
done
case " $PROGRAMS " in *" sluice "*)
    sw=$(median sluice 2)
    sc=$(median sluice 3)
    echo
    for p in $PROGRAMS; do
        [ "$p" = sluice ] && continue
        printf 'sluice vs %-10s records/s %5.2fx   CPU %5.2fx less\n' "$p" \
            "$(echo "$(median "$p" 2) / $sw" | bc -l)" "$(echo "$(median "$p" 3) / $sc" | bc -l)"
    done
    echo "(each ratio: medians of the same invocation; sluice-off > 1x means metrics cost that much)"
esac
