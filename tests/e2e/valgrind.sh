# Valgrind on the real binary, on every exit path: a run that succeeds
# (file, json, filter, map, tee into SQLite, JSON lines and CSV, dead
# letters, metrics file and history), HTTP fetches of file:// URLs in
# parallel, a failing stage, a missing input, a config error, a graceful
# stop and a forced stop by signal (an HTTP server source and the metrics
# endpoint running), and `sluice metrics` on a history file. Each must
# have no memory error, no leak (definite, indirect or possible) and no
# descriptor of its own left open at exit.
#
# Normal build only: valgrind cannot run sanitizer builds, which have
# ASan/LSan for the same end (every other e2e script runs under them).
. "$(dirname "$0")/lib.bash"

if [ -n "${SLUICE_SANITIZE:-}" ]; then
    echo "skipped: valgrind cannot run a sanitizer build (SLUICE_SANITIZE=$SLUICE_SANITIZE)"
    exit 0
fi
if ! command -v valgrind >/dev/null; then
    echo "SKIP: valgrind not installed (scripts/deps installs it)"
    exit 0
fi

vg_args=(--quiet --track-fds=yes --leak-check=full
         --show-leak-kinds=definite,indirect,possible
         --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99)

# vg_result NAME EXPECTED_EXIT RC: check the exit code and the log.
vg_result() {
    local name=$1 want=$2 rc=$3
    expect_eq "valgrind $name: exit" "$want" "$rc"
    if [ "$rc" = 99 ]; then
        sed 's/^/  /' "out/vg-$name.log" | head -60 >&2
    fi
    local leaked
    leaked=$(awk '/Open file descriptor/ {fd=$0; getline; if ($0 !~ /inherited from parent/) print fd}' \
        "out/vg-$name.log")
    expect_eq "valgrind $name: descriptors left open" "" "$leaked"
}

# vg NAME EXPECTED_EXIT ARGS...: sluice ARGS under valgrind.
vg() {
    local name=$1 want=$2; shift 2
    local rc=0
    valgrind "${vg_args[@]}" --log-file="out/vg-$name.log" "$SLUICE_BIN" "$@" \
        >"out/vg-$name.out" 2>"out/vg-$name.err" || rc=$?
    vg_result "$name" "$want" "$rc"
}

cat > out/ok.yaml <<'YAML'
name: vg-ok
dead_letter: {path: out/rejects.jsonl}
metrics: {file: out/metrics.json, history: out/history.jsonl, interval: 100ms}
stages:
  - {name: read, type: file, path: pipelines/data/events-with-errors.jsonl}
  - {name: parse, type: json, on_error: dead_letter}
  - {name: errors, type: filter, where: 'status >= 500 && path =~ "^/api/"'}
  - {name: shape, type: map, set: {latency_s: latency_ms / 1000.0, tag: '"e" + to_string(status)'}, delete: [bytes]}
  - {name: db, type: sqlite, path: out/ok.db, table: errors, batch_size: 7}
  - {name: jsonl, type: file, path: out/ok.jsonl, inputs: [shape]}
  - {name: csv, type: file, format: csv, path: out/ok.csv, inputs: [parse]}
YAML
vg ok 0 run out/ok.yaml --quiet
expect_eq "ok: rows stored" "$(wc -l < out/ok.jsonl)" "$(sql out/ok.db 'select count(*) from errors')"

vg http 0 run pipelines/http-files.yaml --quiet

head -20 pipelines/data/events.jsonl > out/bad.jsonl
echo '{"id": 21,' >> out/bad.jsonl
cat > out/fail.yaml <<'YAML'
name: vg-fail
stages:
  - {name: read, type: file, path: out/bad.jsonl}
  - {name: parse, type: json}
  - {name: db, type: sqlite, path: out/fail.db, table: t, batch_size: 3}
YAML
vg fail 1 run out/fail.yaml --quiet
grep -q "stage parse: " out/vg-fail.err || fail "failure not reported: $(cat out/vg-fail.err)"

sed 's#out/bad.jsonl#out/missing.jsonl#' out/fail.yaml > out/missing.yaml
vg missing 1 run out/missing.yaml --quiet

vg config 2 run "$SLUICE_SOURCE_DIR/tests/fixtures/config/bad/unknown_key.yaml"
vg metrics 0 metrics out/history.jsonl

# Stops by signal: endless sources, an HTTP server with its own threads
# and socket, the metrics endpoint; the signal goes once records arrive.
has_lines() { [ -s "$1" ]; }
# vg_signal NAME EXPECTED_EXIT PIPELINE SIGNAL...
vg_signal() {
    local name=$1 want=$2 yaml=$3; shift 3
    rm -f out/stop.jsonl
    valgrind "${vg_args[@]}" --log-file="out/vg-$name.log" "$SLUICE_BIN" run "$yaml" --quiet \
        >"out/vg-$name.out" 2>"out/vg-$name.err" &
    local pid=$! rc=0 sig
    wait_for "$name: records stored" 120 has_lines out/stop.jsonl || true
    for sig in "$@"; do
        kill -s "$sig" "$pid"
        # the next signal once this one is seen (the run logs it)
        wait_for "$name: $sig seen" 60 grep -q "$sig" "out/vg-$name.err" || true
    done
    wait "$pid" || rc=$?
    vg_result "$name" "$want" "$rc"
}
cat > out/graceful.yaml <<'YAML'
name: vg-graceful
metrics: {listen: "127.0.0.1:0"}
stages:
  - {name: gen, type: generate, rate: 200/s}
  - {name: web, type: http_server, listen: "127.0.0.1:0"}
  - {name: out, type: file, path: out/stop.jsonl, inputs: [gen, web]}
YAML
vg_signal graceful 0 out/graceful.yaml INT
cat > out/forced.yaml <<'YAML'
name: vg-forced
stages:
  - {name: gen, type: generate}
  - {name: slow, type: rate_limit, rate: 5/s, burst: 1}
  - {name: out, type: file, path: out/stop.jsonl}
YAML
vg_signal forced 3 out/forced.yaml INT TERM

finish
