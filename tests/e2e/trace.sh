# Seeing what a pipeline does:
#
#  1. a stage that hangs on one record (tests/fixtures/stuck/hang.c, built
#     here) is reported by the watchdog once, soon after settings.
#     stall_timeout, naming the stage, the record's position and the
#     queues; SIGUSR1 and /debug/stages show the same worker as STUCK while
#     the run goes; the trace records the stall and the signals;
#  2. with on_stall: fail the same hang fails the run (exit 1) with a clear
#     cause;
#  3. the trace of a pipeline before a slow sink is valid trace-event JSON
#     (checked with python3 and jq) and shows the stage before the sink
#     blocked most of the time, and the sink busy;
#  4. a trace path that cannot be written is refused before the run.
. "$(dirname "$0")/lib.bash"

CC=${CC:-cc}
command -v "$CC" >/dev/null || { echo "no C compiler ($CC)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found" >&2; exit 1; }
"$CC" -shared -fPIC -I"$SLUICE_SOURCE_DIR/include" \
    "$SLUICE_SOURCE_DIR/tests/fixtures/stuck/hang.c" -o out/libhang.so ||
    { echo "cannot build the hang plugin" >&2; exit 1; }

# --------------------------------------------------- 1. the watchdog warns
cat > out/stuck.yaml <<'YAML'
name: stuck
settings:
  stall_timeout: 300ms
  shutdown_timeout: 500ms
  channel_capacity: 64
stages:
  - {name: gen, type: generate, count: 1000, fields: {id: seq()}}
  - {name: stuck, type: hang, at: 50}
  - {name: store, type: null}
YAML

start=$(date +%s%N)
"$SLUICE_BIN" run out/stuck.yaml --quiet --plugin out/libhang.so \
    --trace out/stuck-trace.json --metrics-listen 127.0.0.1:0 2>out/stuck.err &
pid=$!
wait_for "the watchdog's report" 20 grep -q "stuck: no heartbeat" out/stuck.err
reported=$(date +%s%N)
elapsed_ms=$(( (reported - start) / 1000000 ))
# 300 ms of silence, checked every 75 ms; start-up and sanitizers add some.
if [ "$elapsed_ms" -lt 300 ] || [ "$elapsed_ms" -gt 20000 ]; then
    fail "reported after ${elapsed_ms}ms, expected soon after 300ms"
else
    echo "ok: reported ${elapsed_ms}ms after the start"
fi
line=$(grep "stuck: no heartbeat" out/stuck.err | head -1)
case "$line" in
*"[stuck] worker 0 stuck: no heartbeat for "*" in process(), holding record seq 50 of gen; input "*"/64, output to store "*"/64"*)
    echo "ok: the report names stage, record and queues" ;;
*) fail "unexpected report: $line" ;;
esac

addr=$(sed -n 's|.*metrics at http://\([^/]*\)/metrics.*|\1|p' out/stuck.err | head -1)
curl -sf "http://$addr/debug/stages" -o out/debug.txt || fail "GET /debug/stages failed"
grep -q "stage stuck (hang, transform) queue" out/debug.txt ||
    fail "/debug/stages lacks the stage: $(cat out/debug.txt)"
grep -q "worker 0: processing, last heartbeat .* ago, holding record seq 50 of gen; busy .*STUCK" out/debug.txt ||
    fail "/debug/stages does not show the stuck worker: $(cat out/debug.txt)"
grep -q "stage store (null, sink) queue [0-9]*/64" out/debug.txt ||
    fail "/debug/stages lacks the sink: $(cat out/debug.txt)"

kill -USR1 "$pid"
wait_for "the SIGUSR1 dump" 20 grep -q "STUCK" out/stuck.err
grep -q "^    worker 0: processing, last heartbeat .* ago, holding record seq 50 of gen; busy .*STUCK" out/stuck.err ||
    fail "the SIGUSR1 dump does not show the stuck worker: $(cat out/stuck.err)"

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
expect_eq "exit code after the shutdown timeout" "3" "$rc"
expect_eq "reports of the one stall" "1" "$(grep -c 'stuck: no heartbeat' out/stuck.err)"
python3 - out/stuck-trace.json <<'PY' || fail "the stuck run's trace"
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["traceEvents"]
names = [e.get("name") for e in ev if e.get("ph") == "i"]
details = [e.get("args", {}).get("detail", "") for e in ev if e.get("ph") == "i"]
assert "stuck" in names, names
assert any("holding record seq 50 of gen" in t for t in details), details
assert "SIGUSR1" in details and "SIGTERM" in details, details
end = [e for e in ev if e.get("name") == "end"][0]
assert end["args"]["status"] == "interrupted", end
print("ok: the trace holds the stall, the signals and the end")
PY

# ------------------------------------------------- 2. on_stall: fail fails
sed 's/  stall_timeout: 300ms/  stall_timeout: 300ms\n  on_stall: fail/' out/stuck.yaml > out/stuck-fail.yaml
run_sluice 1 run out/stuck-fail.yaml --quiet --plugin out/libhang.so
grep -q "^sluice: stage stuck: stalled in process() for .* (worker 0, holding record seq 50 of gen; input .*/64, output to store .*/64)$" out/stderr ||
    fail "on_stall: fail message: $(cat out/stderr)"

# --------------------------------------------- 3. a trace before a slow sink
cat > out/slow.yaml <<'YAML'
name: slow-sink
settings:
  channel_capacity: 64
stages:
  - {name: gen, type: generate, count: 3000, fields: {id: seq()}}
  - {name: enrich, type: map, set: {double: id * 2}}
  - {name: store, type: null, rate_limit: {rate: 2500/s, burst: 10}}
YAML
run_sluice 0 run out/slow.yaml --quiet --trace out/slow-trace.json
jq -e '.traceEvents | length > 10' out/slow-trace.json >/dev/null ||
    fail "jq cannot read the trace"
python3 - out/slow-trace.json <<'PY' || fail "the slow sink's trace"
import json, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d["traceEvents"], list)
tracks, share = {}, {}
for e in d["traceEvents"]:
    assert e["ph"] in ("M", "X", "C", "i"), e
    assert e["pid"] == 1, e
    if e["ph"] == "M":
        if e["name"] == "thread_name":
            tracks[e["tid"]] = e["args"]["name"]
        continue
    assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0, e
    if e["ph"] == "X":
        assert e["name"] in ("busy", "blocked", "idle"), e
        assert e["dur"] >= 0, e
        parts = share.setdefault(e["tid"], {"busy": 0, "blocked": 0, "idle": 0})
        args = e.get("args", {})
        if args.get("merged"):
            for k in parts:
                parts[k] += args[k + "_us"]
        else:
            parts[e["name"]] += e["dur"]
    if e["ph"] == "C":
        assert e["name"].startswith("queue "), e
        assert isinstance(e["args"]["depth"], int), e
assert sorted(tracks.values()) == ["enrich #0", "gen #0", "store #0"], tracks
by_name = {tracks[t]: p for t, p in share.items()}
def frac(name, kind):
    p = by_name[name]
    return p[kind] / sum(p.values())
assert frac("enrich #0", "blocked") > 0.5, by_name["enrich #0"]
assert frac("store #0", "busy") > 0.5, by_name["store #0"]
counters = {e["name"] for e in d["traceEvents"] if e["ph"] == "C"}
assert counters == {"queue enrich", "queue store"}, counters
print("ok: enrich blocked %.0f%%, store busy %.0f%%" %
      (100 * frac("enrich #0", "blocked"), 100 * frac("store #0", "busy")))
PY

# ------------------------------------------- 4. an unwritable trace path
run_sluice 1 run out/slow.yaml --quiet --trace out/no/such/dir/t.json
grep -q -- "--trace: cannot open trace file out/no/such/dir/t.json" out/stderr ||
    fail "bad trace path message: $(cat out/stderr)"
run_sluice 2 run out/slow.yaml --trace
grep -q -- "--trace" out/stderr || fail "--trace without a path: $(cat out/stderr)"

finish
