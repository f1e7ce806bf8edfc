#!/usr/bin/env bash
# Build and run the JSON library comparison of docs/decisions/0001.
#
#   bench/json_libs.sh [COUNT] [RUNS]     defaults: 1000000 lines, 5 runs
#
# Generates COUNT events with bench/gen_events (seed 1), then runs
# bench/json_libs.c (built once per library) over them with jansson,
# json-c, cJSON and sluice's own sl_json_parse/sl_json_dump. Needs libjansson-dev, libjson-c-dev and
# libcjson-dev. Output goes to stdout; build products to $BUILD
# (default build-bench/). SUITE overrides where JSONTestSuite/test_parsing is;
# LIBS="jansson sluice" runs only some of the libraries.
set -euo pipefail
cd "$(dirname "$0")/.."

count=${1:-1000000}
runs=${2:-5}
out=${BUILD:-build-bench}
mkdir -p "$out"

cflags=(-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wshadow -Wno-unused-parameter)
cc "${cflags[@]}" -o "$out/gen_events" bench/gen_events.c
# One program per library: jansson and json-c declare the same names.
# shellcheck disable=SC2046
build() {
  local name=$1 define=$2; shift 2
  cc "${cflags[@]}" -Iinclude -I. -D"$define" -o "$out/json_libs_$name" bench/json_libs.c "$@" -lm
}
build jansson BENCH_JANSSON $(pkg-config --cflags --libs jansson)
build json-c  BENCH_JSONC   $(pkg-config --cflags --libs json-c)
build cJSON   BENCH_CJSON   $(pkg-config --cflags --libs libcjson)
build sluice  BENCH_SLUICE  engine/value.c engine/json.c engine/error.c engine/mem.c -lpthread

events="$out/events-$count.jsonl"
[ -s "$events" ] || "$out/gen_events" --count "$count" --format jsonl --seed 1 --output "$events"

suite=${SUITE:-../shared/testdata/JSONTestSuite/test_parsing}
suite_args=()
[ -d "$suite" ] && suite_args=(--suite "$suite")

echo "# $(uname -m), $(nproc) cores, $(cc --version | head -1)"
echo "# jansson $(pkg-config --modversion jansson), json-c $(pkg-config --modversion json-c), cJSON $(pkg-config --modversion libcjson)"
read -r -a libs <<<"${LIBS:-jansson json-c cJSON sluice}"
for name in "${libs[@]}"; do
  "$out/json_libs_$name" "$events" --runs 0 "${suite_args[@]}" | grep -v '^== .*throughput'
done

# Throughput: run r of every library before run r+1 of any, so load from
# elsewhere on the machine falls on all of them alike; then medians.
raw="$out/raw-$count.txt"
: >"$raw"
for ((r = 1; r <= runs; r++)); do
  for name in "${libs[@]}"; do
    "$out/json_libs_$name" "$events" --runs 1 --raw --no-checks >>"$raw"
  done
done
echo "== throughput: $count lines, median of $runs interleaved runs (CPU time; wall-clock median last)"
# median FIELD LIB MODE: the median of one column of the raw lines.
median() {
  awk -v f="$1" -v lib="$2" -v mode="$3" '$1 == "raw" && $2 == lib && $3 == mode {print $f}' "$raw" |
    sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)], v[1], v[NR]}'
}
for name in "${libs[@]}"; do
  for mode in parse parse+dump; do
    read -r cpu cmin cmax < <(median 4 "$name" "$mode")
    read -r wall _ _ < <(median 5 "$name" "$mode")
    read -r bytes lines < <(awk -v lib="$name" '$1 == "raw" && $2 == lib {print $6, $7; exit}' "$raw")
    awk -v lib="$name" -v mode="$mode" -v c="$cpu" -v lo="$cmin" -v hi="$cmax" -v w="$wall" \
        -v b="$bytes" -v n="$lines" 'BEGIN {
      printf "%-8s %-10s %7.3f s  %6.1f MB/s  %9.0f lines/s  (min %.3f, max %.3f; wall %.3f s)\n",
             lib, mode, c, b / c / 1e6, n / c, lo, hi, w }'
  done
done
