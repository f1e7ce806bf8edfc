# SIGTERM drains: every record already generated is stored, exit 0.
# A second signal, or the shutdown timeout, forces a stop: exit 3, and the
# database is intact.
. "$(dirname "$0")/lib.bash"

cat > out/endless.yaml <<'YAML'
name: endless
settings:
  shutdown_timeout: ${TIMEOUT:-30s}
metrics:
  file: out/endless-metrics.json
  interval: 100ms
stages:
  - name: gen
    type: generate
    count: 0
    fields: {id: seq(), user: '"u" + to_string(seq() % 100)'}
  - name: slow
    type: rate_limit
    rate: ${RATE:-1000000/s}
  - name: store
    type: sqlite
    path: out/endless.db
    table: events
    batch_size: 500
YAML

# 1. Graceful: TERM once, everything generated is stored.
"$SLUICE_BIN" run out/endless.yaml --quiet 2>out/stderr &
pid=$!
wait_for "records to reach the store" 60 \
    bash -c '[ "$(sqlite3 out/endless.db "select count(*) from events" 2>/dev/null || echo 0)" -gt 2000 ]'
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
expect_eq "graceful exit code" "0" "$rc"
generated=$(metric out/endless-metrics.json gen records_out)
expect_eq "every generated record stored" "$generated" "$(sql out/endless.db 'select count(*) from events')"
expect_eq "ids are contiguous" "$generated" "$(sql out/endless.db 'select max(id) from events')"
expect_eq "final status" "interrupted" "$(jq -r .status out/endless-metrics.json)"

# 2. Forced by the shutdown timeout: a slow stage cannot drain in time.
rm -f out/endless.db* out/endless-metrics.json
TIMEOUT=300ms RATE=20/s "$SLUICE_BIN" run out/endless.yaml --quiet 2>out/stderr &
pid=$!
wait_for "the slow stage to start" 60 \
    bash -c '[ "$(jq -r ".stages[] | select(.name == \"slow\") | .records_out" out/endless-metrics.json 2>/dev/null || echo 0)" -gt 0 ]'
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
expect_eq "timeout forced exit code" "3" "$rc"
expect_eq "database intact after forced stop" "ok" "$(sql out/endless.db 'pragma integrity_check')"

# 3. Forced by a second signal.
rm -f out/endless.db* out/endless-metrics.json
TIMEOUT=60s RATE=20/s "$SLUICE_BIN" run out/endless.yaml --quiet 2>out/stderr &
pid=$!
wait_for "the slow stage to start" 60 \
    bash -c '[ "$(jq -r ".stages[] | select(.name == \"slow\") | .records_out" out/endless-metrics.json 2>/dev/null || echo 0)" -gt 0 ]'
kill -TERM "$pid"
wait_for "the drain to begin" 30 grep -qi "drain" out/stderr
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
expect_eq "second signal exit code" "3" "$rc"
expect_eq "database intact after second signal" "ok" "$(sql out/endless.db 'pragma integrity_check')"

finish
