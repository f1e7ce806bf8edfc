#!/usr/bin/env bash
# HTTP fetch throughput: the `http` fetch stage with `workers: P` against
# `curl --parallel --parallel-max P` fetching the same COUNT small pages
# from the same loopback server (bench/http_server.c, libmicrohttpd), in
# the same run. Each tool runs RUNS times, alternating, so both see the same
# machine load; the medians are printed with the ratio sluice/curl. Also
# runs bench_http_modes (one multi handle vs a pool of easy handles, the
# two ways the stage could drive libcurl), and wrk when installed.
#
# Usage: bench/http.sh [COUNT] [RUNS] [P]     (defaults 2000, 5, 8)
# Env:   BUILD_DIR (default build-bench), SERVER_THREADS (default 2)
set -euo pipefail

COUNT=${1:-2000}
RUNS=${2:-5}
PAR=${3:-8}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
SERVER_THREADS=${SERVER_THREADS:-2}
WORK=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" --target sluice bench_http_modes -j2 >/dev/null
# shellcheck disable=SC2046
cc -O2 -Wall -o "$WORK/http_server" "$ROOT/bench/http_server.c" \
    $(pkg-config --cflags --libs libmicrohttpd)

"$WORK/http_server" "$WORK/port" "$SERVER_THREADS" &
server=$!
for _ in $(seq 100); do
    [ -s "$WORK/port" ] && break
    sleep 0.05
done
port=$(cat "$WORK/port")
base="http://127.0.0.1:$port/page/"

cat >"$WORK/fetch.yaml" <<YAML
name: bench-http
stages:
  - name: fetch
    type: http
    url: "${base}{1..$COUNT}"
    workers: $PAR
    timeout: 10s
    retry: {attempts: 1}
  - name: sink
    type: null
YAML

ns() { date +%s%N; }

echo "pages: $COUNT, parallel: $PAR, runs: $RUNS, server threads: $SERVER_THREADS"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "curl: $(curl --version | head -1 | cut -d' ' -f1-2)"

for r in $(seq 1 "$RUNS"); do
    t0=$(ns)
    /usr/bin/time -f "%U %S" -o "$WORK/cpu" \
        "$BUILD_DIR/sluice" run "$WORK/fetch.yaml" --quiet --metrics-file "$WORK/m.json"
    t1=$(ns)
    awk '{ print $1 + $2 }' "$WORK/cpu" >>"$WORK/sluice_cpu.txt"
    got=$(jq '.stages[] | select(.name == "fetch") | .records_out' "$WORK/m.json")
    if [ "$got" != "$COUNT" ]; then
        echo "sluice fetched $got pages, expected $COUNT" >&2
        exit 1
    fi
    echo "$(( t1 - t0 ))" >>"$WORK/sluice.txt"

    t0=$(ns)
    /usr/bin/time -f "%U %S" -o "$WORK/cpu" \
        curl -s --no-progress-meter --fail --parallel --parallel-max "$PAR" \
        "${base}[1-$COUNT]" >/dev/null 2>"$WORK/curl.err"
    t1=$(ns)
    awk '{ print $1 + $2 }' "$WORK/cpu" >>"$WORK/curl_cpu.txt"
    echo "$(( t1 - t0 ))" >>"$WORK/curl.txt"

    "$BUILD_DIR/bench_http_modes" "$base" "$COUNT" "$PAR" |
        awk 'NR > 1 { print $1, $2, $3 }' >>"$WORK/modes.txt"
    echo "run $r/$RUNS done" >&2
done

median() {   # median of the numbers in file $1
    sort -g "$1" |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

s_ns=$(median "$WORK/sluice.txt")
c_ns=$(median "$WORK/curl.txt")
s_cpu=$(median "$WORK/sluice_cpu.txt")
c_cpu=$(median "$WORK/curl_cpu.txt")
for m in multi easy_pool; do
    awk -v m="$m" '$1 == m { print $2 }' "$WORK/modes.txt" >"$WORK/$m.rps"
    awk -v m="$m" '$1 == m { print $3 }' "$WORK/modes.txt" >"$WORK/$m.cpu"
done
echo
awk -v n="$COUNT" -v s="$s_ns" -v c="$c_ns" -v sc="$s_cpu" -v cc="$c_cpu" 'BEGIN {
    printf "%-34s %12s %10s %14s\n", "client", "requests/s", "wall ms", "CPU us/request"
    printf "%-34s %12.0f %10.1f %14.1f\n", "sluice http, workers", n / (s / 1e9), s / 1e6, sc * 1e6 / n
    printf "%-34s %12.0f %10.1f %14.1f\n", "curl --parallel --parallel-max", n / (c / 1e9), c / 1e6, cc * 1e6 / n
    printf "ratio sluice/curl: %.2fx requests/s\n", c / s
}'
echo
echo "libcurl driving modes (medians, same URLs):"
printf '  %-26s %10s requests/s %8s CPU us/request\n' "multi handle, one thread:" \
    "$(median "$WORK/multi.rps")" "$(median "$WORK/multi.cpu")"
printf '  %-26s %10s requests/s %8s CPU us/request\n' "pool of easy handles:" \
    "$(median "$WORK/easy_pool.rps")" "$(median "$WORK/easy_pool.cpu")"
if command -v wrk >/dev/null; then
    echo
    echo "wrk -t2 -c$PAR -d5s (reference, one URL):"
    wrk -t2 -c"$PAR" -d5s "${base}1" | sed -n 's/^Requests\/sec:/  requests\/s:/p'
fi
