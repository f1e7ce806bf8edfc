# The metrics endpoint answers while a pipeline runs: /metrics in the
# Prometheus text format (checked with promtool), /health, /snapshot; and
# interval snapshots appear in metrics.file and metrics.history with
# status "running" before the final one.
. "$(dirname "$0")/lib.bash"

command -v promtool >/dev/null ||
    { echo "FAIL: promtool not found (Debian package prometheus; scripts/deps installs it)" >&2; exit 1; }

cat > out/endpoint.yaml <<'YAML'
name: endpoint
metrics:
  file: out/endpoint.json
  history: out/endpoint.jsonl
  interval: 100ms
stages:
  - {name: gen, type: generate, count: 0, fields: {id: seq()}}
  - {name: slow, type: rate_limit, rate: 200/s, capacity: 32}
  - {name: store, type: null}
YAML

"$SLUICE_BIN" run out/endpoint.yaml --quiet --metrics-listen 127.0.0.1:0 2>out/run.err &
pid=$!
wait_for "the endpoint address in the log" 30 grep -q "metrics at http://" out/run.err
addr=$(sed -n 's|.*metrics at http://\([^/]*\)/metrics.*|\1|p' out/run.err | head -1)
case "$addr" in
127.0.0.1:[0-9]*) echo "ok: listening on $addr" ;;
*) fail "unexpected address '$addr' in: $(cat out/run.err)" ;;
esac

# Interval snapshots while running.
wait_for "two interval snapshots" 30 \
    bash -c '[ "$(jq -s "[.[] | select(.status == \"running\")] | length" out/endpoint.jsonl 2>/dev/null || echo 0)" -ge 2 ]'
expect_eq "metrics.file while running" "running" "$(jq -r .status out/endpoint.json)"
expect_eq "history lines are ordered in time" "true" \
    "$(head -n -1 out/endpoint.jsonl | jq -s '[.[].elapsed_s] as $e | $e == ($e | sort)')"
wait_for "records through the slow stage" 30 \
    bash -c '[ "$(jq -r ".stages[] | select(.name == \"slow\") | .records_out" out/endpoint.json)" -gt 5 ]'

# /metrics: valid exposition format, the contract's names, sane values.
curl -sf "http://$addr/metrics" -o out/metrics.txt -D out/metrics.headers ||
    fail "GET /metrics failed"
grep -qi '^content-type: text/plain; version=0.0.4' out/metrics.headers ||
    fail "/metrics content type: $(grep -i content-type out/metrics.headers)"
promtool check metrics < out/metrics.txt > out/promtool.txt 2>&1 ||
    fail "promtool check metrics: $(cat out/promtool.txt)"
for name in sluice_stage_records_in_total sluice_stage_records_out_total \
    sluice_stage_errors_total sluice_stage_dropped_total sluice_stage_retries_total \
    sluice_stage_bytes_in_total sluice_stage_bytes_out_total sluice_stage_queue_depth \
    sluice_stage_queue_capacity sluice_stage_blocked_send_seconds_total \
    sluice_stage_idle_recv_seconds_total sluice_stage_workers \
    sluice_stage_latency_seconds_bucket sluice_stage_latency_seconds_sum \
    sluice_stage_latency_seconds_count sluice_pipeline_elapsed_seconds; do
    grep -q "^$name{" out/metrics.txt || fail "/metrics lacks $name"
done
sample() {   # sample NAME STAGE — the value of NAME{pipeline="endpoint",stage=STAGE}
    sed -n "s/^$1{pipeline=\"endpoint\",stage=\"$2\"} //p" out/metrics.txt
}
expect_eq "queue capacity of slow" "32" "$(sample sluice_stage_queue_capacity slow)"
expect_eq "workers of slow" "1" "$(sample sluice_stage_workers slow)"
expect_eq "status gauge" "1" \
    "$(sed -n 's/^sluice_pipeline_status{pipeline="endpoint",status="running"} //p' out/metrics.txt)"
in_metrics=$(sample sluice_stage_records_in_total slow)
[ "${in_metrics:-0}" -gt 5 ] || fail "records_in of slow is '$in_metrics'"
count=$(sample sluice_stage_latency_seconds_count slow)
inf=$(sed -n 's/^sluice_stage_latency_seconds_bucket{pipeline="endpoint",stage="slow",le="+Inf"} //p' out/metrics.txt)
expect_eq "+Inf bucket = count" "$count" "$inf"
[ "$count" -le "$in_metrics" ] || fail "latency count $count above records_in $in_metrics"
awk -v c="$count" '/^sluice_stage_latency_seconds_bucket\{pipeline="endpoint",stage="slow"/ {
        if ($2 < last || $2 > c) bad = 1; last = $2 }
    END { exit bad }' out/metrics.txt || fail "latency buckets are not cumulative"

# /snapshot: the JSON snapshot, counts at least those seen before.
curl -sf "http://$addr/snapshot" -o out/snapshot.json || fail "GET /snapshot failed"
expect_eq "/snapshot status" "running" "$(jq -r .status out/snapshot.json)"
expect_eq "/snapshot stages" "gen slow store" "$(jq -r '[.stages[].name] | join(" ")' out/snapshot.json)"
in_snapshot=$(metric out/snapshot.json slow records_in)
[ "$in_snapshot" -ge "$in_metrics" ] || fail "/snapshot went back: $in_snapshot < $in_metrics"

# /health: 200 while running, each stage's state.
code=$(curl -s -o out/health.json -w '%{http_code}' "http://$addr/health")
expect_eq "/health code while running" "200" "$code"
expect_eq "/health status" "running" "$(jq -r .status out/health.json)"
expect_eq "/health stage states" "running running running" \
    "$(jq -r '[.stages[].state] | join(" ")' out/health.json)"

# Other paths and methods.
expect_eq "unknown path" "404" "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/nope")"
expect_eq "POST" "405" "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "http://$addr/metrics")"

# A second run on the same port fails plainly; a malformed address is a
# usage error.
run_sluice 1 run out/endpoint.yaml --quiet --metrics-listen "$addr"
grep -q "metrics endpoint: cannot listen on $addr" out/stderr ||
    fail "busy port message: $(cat out/stderr)"
run_sluice 2 run out/endpoint.yaml --quiet --metrics-listen nonsense

# Stop: the final snapshot says interrupted, in the file and the history.
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
expect_eq "exit code after TERM" "0" "$rc"
expect_eq "final status" "interrupted" "$(jq -r .status out/endpoint.json)"
expect_eq "last history line" "interrupted" "$(tail -1 out/endpoint.jsonl | jq -r .status)"
curl -s -o /dev/null "http://$addr/metrics" && fail "the endpoint still answers after the run"

finish
