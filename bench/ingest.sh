#!/usr/bin/env bash
# Ingest throughput: N requests of 100 JSON lines each, from C parallel
# connections (curl --parallel; wrk when installed is not required), into
# http_server -> null. Prints records/s and the server-side p50/p99 request
# duration from the request log.
#   bench/ingest.sh [BUILD_DIR] [REQUESTS] [CONNECTIONS]
set -euo pipefail
build=${1:-build}
requests=${2:-2000}
conns=${3:-32}
bin=$(cd "$build" && pwd)/sluice
dir=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench-ingest.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir"
cat > bench.yaml <<'YAML'
name: bench-ingest
stages:
  - name: receive
    type: http_server
    listen: 127.0.0.1:0
  - name: sink
    type: null
YAML
for i in $(seq 0 99); do
    printf '{"id":%d,"user":"u%d","msg":"hello world"}\n' "$i" "$((i % 10))"
done > body.jsonl
"$bin" run bench.yaml 2>server.log &
pid=$!
until grep -q "listening on" server.log; do sleep 0.05; done
port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' server.log | head -1)
for i in $(seq 1 "$requests"); do
    [ "$i" -gt 1 ] && echo next
    echo "url = \"http://127.0.0.1:$port/\""
    echo 'data-binary = "@body.jsonl"'
    echo 'output = "/dev/null"'
    echo 'header = "Content-Type: application/x-ndjson"'
    echo 'header = "Expect:"'
    echo 'write-out = "%{http_code}\n"'
done > curl.cfg
start=$(date +%s.%N)
curl -s --no-progress-meter -Z --parallel-max "$conns" -K curl.cfg > codes.txt
end=$(date +%s.%N)
kill -TERM "$pid"
wait "$pid"
ok=$(grep -c '^200$' codes.txt || true)
awk -v ok="$ok" -v s="$start" -v e="$end" -v n="$requests" \
    'BEGIN { printf "%d/%d requests accepted, %.0f records/s\n", ok, n, ok * 100 / (e - s) }'
grep -o 'duration_ms=[0-9.]*' server.log | cut -d= -f2 | sort -n |
    awk '{ a[NR] = $1 } END { printf "server request duration: p50 %.3f ms, p99 %.3f ms\n", a[int(NR * 0.5)], a[int(NR * 0.99)] }'
