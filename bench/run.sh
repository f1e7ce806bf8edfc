#!/usr/bin/env bash
# The benchmark workloads of docs/benchmarks.md, each against its
# baselines in the same invocation. Every program of a workload runs RUNS
# times, alternating (so all of them see the same machine load); the
# script prints the median wall time, records/s, process CPU time and peak
# RSS (/usr/bin/time), the ratios against the baselines, and the target.
# Every run checks its output (rows in the table, lines in the file).
#
#   1  JSON lines -> json -> filter status >= 500 -> map -> JSON lines file
#      baselines: jq; the Go pipeline of bench/go/pipeline (when present),
#      schema-less (the target's baseline) and -typed. When
#      bench/workload1.sh is there, workload 1 is that script's.
#   2  JSON lines -> json -> sqlite table
#      baseline: bench/sqlite_load.c (one prepared INSERT, one transaction)
#   3  CSV -> csv -> sqlite table
#      baselines: bench/sqlite_load.c; sqlite3 .import
#   4  a CPU-heavy map with workers: 1 and workers: 2 (generate -> map -> null)
#   5  peak RSS of generate -> filter -> map -> file for COUNT and 10 x COUNT
#      records
#
# The input is bench/gen_events.c's: COUNT events (about 129 bytes per JSON
# line), the same as CSV. Benchmarks are never part of the tests.
#
# Usage: bench/run.sh [-n RUNS] [-c COUNT] [WORKLOAD...]   (defaults 5, 1000000, all)
# Env:   BUILD_DIR (default build-bench), BENCH_DIR (data and databases;
#        default a fresh directory under TMPDIR, removed at the end),
#        W5_RUNS (runs of workload 5, default 1: peak RSS barely varies)
set -euo pipefail

RUNS=5
COUNT=1000000
while getopts "n:c:h" opt; do
    case $opt in
    n) RUNS=$OPTARG ;;
    c) COUNT=$OPTARG ;;
    *) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//; /^set -e/d'; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
WORKLOADS=${*:-1 2 3 4 5}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
if [ -n "${BENCH_DIR:-}" ]; then
    WORK=$BENCH_DIR
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
fi
RES=$WORK/results.txt   # workload program run wall_s cpu_s rss_kb records
: >"$RES"

# ------------------------------------------------------------------ build
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" --target sluice -j2 >/dev/null
SLUICE=$BUILD_DIR/sluice
cc -O2 -o "$WORK/gen_events" "$ROOT/bench/gen_events.c"
cc -O2 -o "$WORK/sqlite_load" "$ROOT/bench/sqlite_load.c" -lsqlite3
GO_PIPE=
if [ -d "$ROOT/bench/go/pipeline" ] && command -v go >/dev/null; then
    (cd "$ROOT/bench/go" && go build -o "$WORK/gopipe" ./pipeline) && GO_PIPE=$WORK/gopipe
fi

# ------------------------------------------------------------------ machine
echo "# sluice benchmarks: workloads $WORKLOADS; $COUNT records, $RUNS runs each (medians)"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), nproc $(nproc), kernel $(uname -r)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the start"
echo "tools:   $(cc --version | head -1); sqlite $(sqlite3 --version | cut -d' ' -f1);" \
    "jq $(jq --version 2>/dev/null || echo none); $(go version 2>/dev/null || echo 'no go')"
echo "sluice:  $SLUICE ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo

"$WORK/gen_events" --count "$COUNT" --format jsonl --output "$WORK/events.jsonl"
"$WORK/gen_events" --count "$COUNT" --format csv --output "$WORK/events.csv"

# ------------------------------------------------------------------ helpers
say() { echo "  \$ $*"; }
show() { sed 's/^/      | /; s|'"$WORK"'/||' "$WORK/$1.yaml"; }   # a pipeline file, indented

# measure WORKLOAD PROGRAM RUN RECORDS CMD...: run CMD under /usr/bin/time,
# append "workload program run wall cpu rss records" to RES.
measure() {
    local w=$1 p=$2 r=$3 n=$4
    shift 4
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/time.txt" "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" || {
        echo "FAILED: $*" >&2
        cat "$WORK/err.txt" >&2
        exit 1
    }
    read -r wall user sys rss <"$WORK/time.txt"
    echo "$w $p $r $wall $(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }') $rss $n" >>"$RES"
}

expect() {   # expect WHAT GOT WANT
    if [ "$2" != "$3" ]; then
        echo "FAILED: $1: got $2, expected $3" >&2
        exit 1
    fi
}

rows() { sqlite3 "$1" "SELECT count(*) FROM events"; }
rmdb() { rm -f "$1" "$1-wal" "$1-shm"; }

median() {   # median WORKLOAD PROGRAM COLUMN (4 wall, 5 cpu, 6 rss)
    awk -v w="$1" -v p="$2" -v c="$3" '$1 == w && $2 == p { print $c }' "$RES" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# row WORKLOAD PROGRAM RECORDS: one line of a workload's table
row() {
    local wall cpu rss
    wall=$(median "$1" "$2" 4)
    cpu=$(median "$1" "$2" 5)
    rss=$(median "$1" "$2" 6)
    awk -v p="$2" -v n="$3" -v w="$wall" -v c="$cpu" -v r="$rss" \
        'BEGIN { printf "    %-22s %10.0f %8.2f %8.2f %9.0f %8.1f\n", p, n / w, w, c, c / n * 1e9, r / 1024 }'
}

header() {
    printf '    %-22s %10s %8s %8s %9s %8s\n' program "rec/s" "wall s" "CPU s" "CPU ns/r" "RSS MB"
}

# ratio WORKLOAD A B TARGET: records/s of A over B (wall medians)
ratio() {
    local a b
    a=$(median "$1" "$2" 4)
    b=$(median "$1" "$3" 4)
    awk -v a="$a" -v b="$b" -v x="$2" -v y="$3" -v t="$4" 'BEGIN {
        r = b / a
        printf "    %s / %s: %.2fx records/s", x, y, r
        if (t != "") printf " (target >= %sx: %s)", t, (r >= t + 0 ? "met" : "NOT met")
        printf "\n" }'
}

# ------------------------------------------------------------------ workloads
w1() {
    if [ -x "$ROOT/bench/workload1.sh" ]; then
        # Workload 1's own script (sluice with metrics on and off, Go, jq).
        echo "## 1: JSON lines -> json -> filter -> map -> JSON lines (bench/workload1.sh)"
        say "BUILD_DIR=$BUILD_DIR bench/workload1.sh $COUNT $RUNS"
        BUILD_DIR=$BUILD_DIR "$ROOT/bench/workload1.sh" "$COUNT" "$RUNS" | sed 's/^/    /'
        echo
        return
    fi
    cat >"$WORK/w1.yaml" <<YAML
name: w1
stages:
  - name: read
    type: file
    path: $WORK/events.jsonl
  - name: parse
    type: json
  - name: errors
    type: filter
    where: status >= 500
  - name: enrich
    type: map
    set: {latency_s: latency_ms / 1000.0, severity: '"high"'}
  - name: out
    type: file
    path: $WORK/w1.out.jsonl
    mode: truncate
YAML
    local jqf='select(.status >= 500) | .latency_s = .latency_ms / 1000 | .severity = "high"'
    echo "## 1: JSON lines -> json -> filter -> map -> JSON lines"
    say "sluice run w1.yaml --quiet"; show "w1"
    say "jq -c '$jqf' events.jsonl > out"
    if [ -n "$GO_PIPE" ]; then say "bench/go/pipeline events.jsonl out; bench/go/pipeline -typed events.jsonl out"; fi
    local want
    want=$(grep -c '"status":5' "$WORK/events.jsonl")
    for r in $(seq 1 "$RUNS"); do
        measure 1 sluice "$r" "$COUNT" "$SLUICE" run "$WORK/w1.yaml" --quiet
        expect "sluice output lines" "$(wc -l <"$WORK/w1.out.jsonl")" "$want"
        measure 1 jq "$r" "$COUNT" sh -c "jq -c '$jqf' '$WORK/events.jsonl' > '$WORK/w1.jq.jsonl'"
        expect "jq output lines" "$(wc -l <"$WORK/w1.jq.jsonl")" "$want"
        if [ -n "$GO_PIPE" ]; then
            measure 1 go "$r" "$COUNT" "$GO_PIPE" "$WORK/events.jsonl" "$WORK/w1.go.jsonl"
            expect "go output lines" "$(wc -l <"$WORK/w1.go.jsonl")" "$want"
            measure 1 go_typed "$r" "$COUNT" "$GO_PIPE" -typed "$WORK/events.jsonl" "$WORK/w1.go.jsonl"
            expect "go -typed output lines" "$(wc -l <"$WORK/w1.go.jsonl")" "$want"
        fi
        echo "  run $r/$RUNS" >&2
    done
    header
    row 1 sluice "$COUNT"
    row 1 jq "$COUNT"
    if [ -n "$GO_PIPE" ]; then
        row 1 go "$COUNT"
        row 1 go_typed "$COUNT"
    fi
    ratio 1 sluice jq 5
    if [ -n "$GO_PIPE" ]; then
        ratio 1 sluice go 5
        ratio 1 sluice go_typed ""
    else
        echo "    (no Go baseline: bench/go/pipeline is not there)"
    fi
    echo
}

w2() {
    cat >"$WORK/w2.yaml" <<YAML
name: w2
stages:
  - name: read
    type: file
    path: $WORK/events.jsonl
  - name: parse
    type: json
  - name: db
    type: sqlite
    path: $WORK/w2.db
    table: events
YAML
    echo "## 2: JSON lines -> json -> sqlite"
    say "sluice run w2.yaml --quiet"; show "w2"
    say "sqlite_load jsonl events.jsonl base.db"
    for r in $(seq 1 "$RUNS"); do
        rmdb "$WORK/w2.db"
        measure 2 sluice "$r" "$COUNT" "$SLUICE" run "$WORK/w2.yaml" --quiet
        expect "sluice rows" "$(rows "$WORK/w2.db")" "$COUNT"
        rmdb "$WORK/base.db"
        measure 2 sqlite_load "$r" "$COUNT" "$WORK/sqlite_load" jsonl "$WORK/events.jsonl" "$WORK/base.db"
        expect "sqlite_load rows" "$(rows "$WORK/base.db")" "$COUNT"
        echo "  run $r/$RUNS" >&2
    done
    rmdb "$WORK/w2.db"
    rmdb "$WORK/base.db"
    header
    row 2 sluice "$COUNT"
    row 2 sqlite_load "$COUNT"
    ratio 2 sluice sqlite_load 0.8
    echo
}

w3() {
    cat >"$WORK/w3.yaml" <<YAML
name: w3
stages:
  - name: read
    type: file
    path: $WORK/events.csv
  - name: parse
    type: csv
  - name: db
    type: sqlite
    path: $WORK/w3.db
    table: events
YAML
    local create='CREATE TABLE events ("id" INTEGER, "ts" TEXT, "user" TEXT, "status" INTEGER, "path" TEXT, "bytes" INTEGER, "latency_ms" REAL)'
    echo "## 3: CSV -> csv -> sqlite"
    say "sluice run w3.yaml --quiet"; show "w3"
    say "sqlite_load csv events.csv base.db"
    say "sqlite3 import.db 'PRAGMA journal_mode=WAL' 'PRAGMA synchronous=NORMAL' '$create' '.import --csv --skip 1 events.csv events'"
    for r in $(seq 1 "$RUNS"); do
        rmdb "$WORK/w3.db"
        measure 3 sluice "$r" "$COUNT" "$SLUICE" run "$WORK/w3.yaml" --quiet
        expect "sluice rows" "$(rows "$WORK/w3.db")" "$COUNT"
        rmdb "$WORK/base.db"
        measure 3 sqlite_load "$r" "$COUNT" "$WORK/sqlite_load" csv "$WORK/events.csv" "$WORK/base.db"
        expect "sqlite_load rows" "$(rows "$WORK/base.db")" "$COUNT"
        rmdb "$WORK/import.db"
        measure 3 sqlite3_import "$r" "$COUNT" sqlite3 "$WORK/import.db" 'PRAGMA journal_mode=WAL' \
            'PRAGMA synchronous=NORMAL' "$create" ".import --csv --skip 1 $WORK/events.csv events"
        expect "sqlite3 .import rows" "$(rows "$WORK/import.db")" "$COUNT"
        echo "  run $r/$RUNS" >&2
    done
    rmdb "$WORK/w3.db"
    rmdb "$WORK/base.db"
    rmdb "$WORK/import.db"
    header
    row 3 sluice "$COUNT"
    row 3 sqlite_load "$COUNT"
    row 3 sqlite3_import "$COUNT"
    ratio 3 sluice sqlite_load 0.8
    ratio 3 sluice sqlite3_import ""
    echo
}

w4() {
    local n=$((COUNT / 4))
    for k in 1 2; do
        cat >"$WORK/w4-$k.yaml" <<YAML
name: w4
stages:
  - name: gen
    type: generate
    count: $n
    fields: {id: seq(), user: '"user-" + to_string(seq() % 1000)', path: '"/api/v1/items/" + to_string(seq() * 7919 % 100000)'}
  - name: work
    type: map
    workers: $k
    set:
      a: 'upper(path) + lower(user) + to_string(id * 31 % 977)'
      b: 'contains(a, "ITEMS/1") ? len(a) * 3 : len(a) + to_int(to_string(id % 1000))'
      c: 'lower(a) + upper(user) + to_string(b)'
      d: 'starts_with(c, "/api") && len(c) > 20 ? upper(c) : lower(c)'
      e: 'len(d) + len(upper(lower(upper(lower(d))))) + len(lower(upper(c + d)))'
      f: 'upper(c + d + a) + lower(d + c + a) + upper(a + a + a + a)'
      g: 'len(upper(lower(f))) + len(lower(upper(f + f))) + (contains(f, "ITEMS") ? 1 : 0)'
      h: 'lower(upper(lower(upper(f + f + f))))'
      i: 'len(h) + len(upper(h)) + len(lower(h)) + to_int(to_string(g % 1000))'
    delete: [a, c, d, f, h]
  - name: sink
    type: null
YAML
    done
    echo "## 4: CPU-heavy map, workers: 1 vs 2 ($n records)"
    say "sluice run w4-1.yaml --quiet"; show "w4-1"
    say "sluice run w4-2.yaml --quiet    # the same with workers: 2"
    for r in $(seq 1 "$RUNS"); do
        measure 4 workers_1 "$r" "$n" "$SLUICE" run "$WORK/w4-1.yaml" --quiet
        measure 4 workers_2 "$r" "$n" "$SLUICE" run "$WORK/w4-2.yaml" --quiet
        echo "  run $r/$RUNS" >&2
    done
    header
    row 4 workers_1 "$n"
    row 4 workers_2 "$n"
    ratio 4 workers_2 workers_1 1.7
    echo
}

w5() {
    local big=$((COUNT * 10))
    for n in "$COUNT" "$big"; do
        cat >"$WORK/w5-$n.yaml" <<YAML
name: w5
stages:
  - name: gen
    type: generate
    count: $n
    fields:
      id: seq()
      user: '"u" + to_string(seq() * 7919 % 1000)'
      status: 'seq() % 5 == 0 ? 503 : 200'
      path: '"/api/v1/items/" + to_string(seq() * 104729 % 10000)'
      bytes: seq() * 31 % 20000
      latency_ms: (seq() * 7919) % 1000 / 10.0
  - name: errors
    type: filter
    where: status >= 500
  - name: enrich
    type: map
    set: {latency_s: latency_ms / 1000.0, severity: '"high"'}
  - name: out
    type: file
    path: $WORK/w5.out.jsonl
    mode: truncate
YAML
    done
    echo "## 5: peak RSS, generate -> filter -> map -> file, $COUNT and $big records"
    say "sluice run w5-N.yaml --quiet   # N = $COUNT and $big"; show "w5-$COUNT"
    local runs5=${W5_RUNS:-1}
    for r in $(seq 1 "$runs5"); do
        measure 5 "sluice_$COUNT" "$r" "$COUNT" "$SLUICE" run "$WORK/w5-$COUNT.yaml" --quiet
        expect "output lines" "$(wc -l <"$WORK/w5.out.jsonl")" "$((COUNT / 5))"
        measure 5 "sluice_$big" "$r" "$big" "$SLUICE" run "$WORK/w5-$big.yaml" --quiet
        expect "output lines" "$(wc -l <"$WORK/w5.out.jsonl")" "$((big / 5))"
        echo "  run $r/$runs5" >&2
    done
    rm -f "$WORK/w5.out.jsonl"
    header
    row 5 "sluice_$COUNT" "$COUNT"
    row 5 "sluice_$big" "$big"
    local a b
    a=$(median 5 "sluice_$COUNT" 6)
    b=$(median 5 "sluice_$big" 6)
    awk -v a="$a" -v b="$b" 'BEGIN {
        printf "    peak RSS %.1f MB -> %.1f MB: %.2fx (target <= 1.2x: %s; < 100 MB: %s)\n",
            a / 1024, b / 1024, b / a, (b / a <= 1.2 ? "met" : "NOT met"), (b < 100 * 1024 ? "met" : "NOT met") }'
    echo
}

for w in $WORKLOADS; do
    case $w in
    1 | 2 | 3 | 4 | 5) "w$w" ;;
    *) echo "unknown workload $w" >&2; exit 2 ;;
    esac
done
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the end"
[ -n "${BENCH_DIR:-}" ] && echo "raw figures: $RES"
