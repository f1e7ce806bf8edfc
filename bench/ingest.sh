#!/usr/bin/env bash
# Ingest throughput: wrk posts batches of 100 JSON lines from C connections
# for S seconds into http_server -> SINK (null, or sqlite). Prints records/s
# (requests/s x 100, 200s only) and wrk's latency percentiles.
#   bench/ingest.sh [BUILD_DIR] [SECONDS] [CONNECTIONS] [SINK]
# wrk (Debian package) is required; scripts/deps installs it.
set -euo pipefail
build=${1:-build}
secs=${2:-10}
conns=${3:-32}
sink=${4:-null}
command -v wrk >/dev/null || { echo "wrk not found (scripts/deps installs it)" >&2; exit 1; }
bin=$(cd "$build" && pwd)/sluice
dir=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench-ingest.XXXXXX")
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
pid=
cd "$dir"
case "$sink" in
null) sink_yaml="type: null" ;;
sqlite) sink_yaml="{type: sqlite, path: $dir/ingest.db, table: events, batch_size: 1000}" ;;
*) echo "sink: null or sqlite" >&2; exit 2 ;;
esac
cat > bench.yaml <<YAML
name: bench-ingest
stages:
  - name: receive
    type: http_server
    listen: 127.0.0.1:0
    max_connections: 256
  - name: sink
    $([ "$sink" = null ] && echo "type: null" || echo "type: sqlite
    path: $dir/ingest.db
    table: events
    batch_size: 1000")
YAML
for i in $(seq 0 99); do
    printf '{"id":%d,"user":"u%d","msg":"hello world"}\n' "$i" "$((i % 10))"
done > body.jsonl
# wrk's script: every request posts the same body of 100 JSON lines.
cat > post.lua <<'LUA'
local f = io.open("body.jsonl", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/x-ndjson"
local ok = 0
function response(status, headers, body)
    if status == 200 then ok = ok + 1 end
end
function done(summary, latency, requests)
    io.write(string.format("requests %d errors %d\n", summary.requests,
        summary.errors.status + summary.errors.connect + summary.errors.read +
        summary.errors.write + summary.errors.timeout))
end
LUA
"$bin" run bench.yaml --quiet 2>server.log &
pid=$!
until grep -q "listening on" server.log 2>/dev/null; do sleep 0.05; done
port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' server.log | head -1)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(cpu_ticks)
wrk -t 2 -c "$conns" -d "${secs}s" --latency -s post.lua "http://127.0.0.1:$port/" > wrk.txt
t1=$(cpu_ticks)
kill -TERM "$pid"
wait "$pid" || true
pid=
read -r _ reqs _ errs < <(grep '^requests ' wrk.txt)
rps=$(sed -n 's/^Requests\/sec: *//p' wrk.txt)
p99=$(awk '$1 == "99%" {print $2}' wrk.txt)
p50=$(awk '$1 == "50%" {print $2}' wrk.txt)
# CPU the server used per record (user + system), which a loaded machine
# disturbs far less than the wall-clock rate.
awk -v rps="$rps" -v reqs="$reqs" -v errs="$errs" -v p50="$p50" -v p99="$p99" \
    -v sink="$sink" -v c="$conns" -v ticks=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {
    ok = reqs - errs
    printf "%s, %d connections: %.0f records/s (%d of %d requests 200), latency p50 %s p99 %s, server CPU %.2f us/record\n",
        sink, c, rps * 100 * (reqs > 0 ? ok / reqs : 0), ok, reqs, p50, p99,
        (ok > 0 ? ticks / hz * 1e6 / (ok * 100) : 0) }'
