#!/usr/bin/env bash
# Build the libFuzzer targets in tests/fuzz/ with clang (not part of ctest):
#
#   tests/fuzz/build.sh [OUTDIR]          # default OUTDIR: build-fuzz
#   build-fuzz/fuzz_expr -max_total_time=60 -dict=tests/fuzz/expr.dict \
#       tests/fuzz/corpus/expr
#
# The library is built into OUTDIR/lib with the fuzzer's instrumentation
# (-fsanitize=fuzzer-no-link,address,undefined) so coverage reaches it.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build-fuzz}
jobs=${JOBS:-2}

CC=clang cmake -S . -B "$out/lib" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" \
    >/dev/null
cmake --build "$out/lib" -j"$jobs" --target sluice_lib >/dev/null

libs=$(pkg-config --libs jansson yaml-0.1 sqlite3 libcurl)
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    clang -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -Iinclude -I. "$src" "$out/lib/libsluice.a" $libs -lpthread -lm -ldl \
        -o "$out/$name"
    echo "built $out/$name" >&2
done
