# http_server -> sqlite: clients post with curl, SIGTERM drains, every
# record answered 200 is stored, the process exits 0. Then a slow sink
# turns into 503 + Retry-After instead of memory growth.
. "$(dirname "$0")/lib.bash"

# The port the server logged ("listening on http://127.0.0.1:PORT/...").
server_port() {
    sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$1" | head -1
}

# 1. Concurrent clients, then a graceful stop.
LISTEN=127.0.0.1:0 "$SLUICE_BIN" run pipelines/ingest.yaml 2>out/stderr &
pid=$!
wait_for "the server to listen" 30 grep -q "listening on" out/stderr
port=$(server_port out/stderr)
url="http://127.0.0.1:$port/events"

for c in 1 2 3 4; do
    (
        for r in $(seq 1 10); do
            body=""
            for k in 1 2 3 4 5; do
                body+="{\"client\":$c,\"req\":$r,\"k\":$k}"$'\n'
            done
            curl -s -H 'Content-Type: application/x-ndjson' --data-binary "$body" "$url"
            echo
        done >"out/client$c.txt"
    ) &
done
wait_jobs=$(jobs -p | grep -v "^$pid\$" || true)
for j in $wait_jobs; do wait "$j"; done

accepted=$(cat out/client*.txt | jq -s 'map(.accepted) | add')
expect_eq "records accepted" "200" "$accepted"

code=$(curl -s -o out/bad.json -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary $'{"ok":1}\n{"broken":\n' "$url")
expect_eq "bad JSON status" "400" "$code"
expect_eq "bad JSON line" "2" "$(jq .line out/bad.json)"
expect_eq "wrong method" "405" "$(curl -s -o /dev/null -w '%{http_code}' "$url")"
expect_eq "wrong content type" "415" \
    "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/csv' -d 'a,b' "$url")"

kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
expect_eq "graceful exit code" "0" "$rc"
expect_eq "every accepted record stored" "$accepted" "$(sql out/ingest.db 'select count(*) from events')"
expect_eq "distinct records stored" "$accepted" \
    "$(sql out/ingest.db 'select count(distinct client || "-" || req || "-" || k) from events')"
expect_eq "requests logged" "43" "$(grep -c 'request id=' out/stderr)"
grep -q "stopping: listener closed" out/stderr || fail "shutdown progress not logged"

# 2. A sink slower than the clients: 503 with Retry-After, /health degraded.
cat > out/slow.yaml <<'YAML'
name: slow-ingest
settings:
  shutdown_timeout: 1s
stages:
  - name: receive
    type: http_server
    listen: 127.0.0.1:0
    queue: 1
    accept_timeout: 100ms
  - name: slow
    type: rate_limit
    rate: 1/s
    capacity: 1
  - name: sink
    type: null
YAML
"$SLUICE_BIN" run out/slow.yaml --metrics-listen 127.0.0.1:0 2>out/stderr2 &
pid=$!
wait_for "the slow server to listen" 30 grep -q "listening on" out/stderr2
wait_for "the metrics endpoint" 30 grep -q "metrics at http://" out/stderr2
port=$(server_port out/stderr2)
maddr=$(sed -n 's|.*metrics at http://\([^/]*\)/metrics.*|\1|p' out/stderr2 | head -1)
statuses=""
for r in $(seq 1 20); do
    statuses+="$(curl -s -o /dev/null -D out/headers -w '%{http_code}' \
        -H 'Content-Type: application/json' --data-binary '[{"a":1},{"a":2},{"a":3}]' \
        "http://127.0.0.1:$port/") "
    if grep -qi '^Retry-After:' out/headers; then retry_seen=yes; fi
done
case "$statuses" in
    *503*) echo "ok: slow sink answered 503" ;;
    *) fail "no 503 from a blocked pipeline: $statuses" ;;
esac
expect_eq "Retry-After on 503" "yes" "${retry_seen:-no}"
# The slow stage takes a record a second, so the queue empties now and
# then: keep offering a request (200 or 503, both fine) until /health
# finds the queue full.
wait_for "health degraded" 20 bash -c \
    "curl -s -o /dev/null --max-time 5 -H 'Content-Type: application/json' \
         --data-binary '[{\"a\":0}]' http://127.0.0.1:$port/;
     [ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/health)\" = 503 ]"

# Clients hammer the blocked pipeline: they get 503s, the process does not
# grow (at most queue bodies wait; each connection reads one body).
python3 - "$port" <<'PY' > out/body.jsonl
import sys
for k in range(100):
    print('{"k":%d,"pad":"%s"}' % (k, "x" * 200))
PY
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
hammer() {   # $1: seconds
    local end=$((SECONDS + $1))
    for c in $(seq 1 16); do
        ( while [ $SECONDS -lt $end ]; do
              curl -s -o /dev/null -H 'Content-Type: application/x-ndjson' \
                  --data-binary @out/body.jsonl "http://127.0.0.1:$port/" || true
          done ) &
    done
    wait $(jobs -p | grep -v "^$pid\$")
}
hammer 1
rss_warm=$(rss_kb)
hammer 3
rss_after=$(rss_kb)
if [ -n "${SLUICE_SANITIZE:-}" ]; then
    # freed memory waits in the sanitizer's quarantine: RSS says nothing
    echo "skipped: RSS check under sanitizers (SLUICE_SANITIZE=$SLUICE_SANITIZE)"
else
    echo "ok: RSS while hammered: ${rss_warm} kB after 1s, ${rss_after} kB after 4s"
    [ $((rss_after - rss_warm)) -lt 8192 ] ||
        fail "RSS grew from ${rss_warm} kB to ${rss_after} kB under a blocked sink"
fi

# The stage's own metrics: refusals and requests by code, in the snapshot
# and in valid Prometheus text.
curl -sf "http://$maddr/metrics" -o out/ingest-metrics.txt || fail "GET /metrics failed"
promtool check metrics < out/ingest-metrics.txt > out/promtool.txt 2>&1 ||
    fail "promtool check metrics: $(cat out/promtool.txt)"
busy=$(sed -n 's/^sluice_http_server_refused_total{.*reason="busy"} //p' out/ingest-metrics.txt)
[ "${busy:-0}" -gt 0 ] || fail "no busy refusals counted: $(grep refused out/ingest-metrics.txt)"
# every 503: the busy refusals and the one degraded /health answer
expect_eq "503s counted by code" "$((busy + 1))" \
    "$(sed -n 's/^sluice_http_server_requests_total{.*code="503"} //p' out/ingest-metrics.txt)"
for name in sluice_http_server_records_accepted_total sluice_http_server_bytes_received_total \
    sluice_http_server_in_flight_requests sluice_http_server_client_limiters; do
    grep -q "^$name{pipeline=\"slow-ingest\",stage=\"receive\"} " out/ingest-metrics.txt ||
        fail "$name missing from /metrics"
done
curl -sf "http://$maddr/snapshot" -o out/ingest-snapshot.json || fail "GET /snapshot failed"
expect_eq "snapshot extra.refused.busy" "$busy" \
    "$(jq '.stages[] | select(.name == "receive") | .extra.refused.busy' out/ingest-snapshot.json)"

kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
# The slow stage cannot drain within the 1s shutdown timeout: forced stop.
expect_eq "slow pipeline stops" "3" "$rc"

finish
