# `sluice metrics`: the report names the bottleneck of a pipeline with a
# deliberately slow stage; --json passes the snapshot through; a history
# file's last line is used; bad input is a usage error.
. "$(dirname "$0")/lib.bash"

# bottleneck FILE — the stage the report names
bottleneck() {
    "$SLUICE_BIN" metrics "$1" | sed -n 's/^bottleneck: \([^ ]*\) .*/\1/p'
}

# A. A rate_limit stage in the middle of the pipeline.
cat > out/middle.yaml <<'YAML'
name: middle
metrics: {file: out/middle.json, history: out/middle.jsonl, interval: 200ms}
settings: {channel_capacity: 16}
stages:
  - {name: gen, type: generate, count: 240, fields: {id: seq(), status: 'seq() % 10 == 0 ? 500 : 200'}}
  - {name: keep, type: filter, where: status < 500}
  - {name: slow, type: rate_limit, rate: 200/s, burst: 1}
  - {name: tag, type: map, set: {seen: 'true'}}
  - {name: out, type: null}
YAML
run_sluice 0 run out/middle.yaml --quiet
expect_eq "bottleneck in the middle" "slow" "$(bottleneck out/middle.json)"
"$SLUICE_BIN" metrics out/middle.json > out/report.txt
grep -q "^pipeline middle: succeeded after " out/report.txt || fail "report head: $(head -1 out/report.txt)"
grep -q "^slow  *rate_limit done  *216  *216 " out/report.txt || fail "report row of slow: $(grep ^slow out/report.txt)"

# B. The engine's own rate_limit on the stage right after the source.
cat > out/first.yaml <<'YAML'
name: first
metrics: {file: out/first.json}
settings: {channel_capacity: 16}
stages:
  - {name: gen, type: generate, count: 200, fields: {id: seq()}}
  - {name: throttled, type: map, set: {x: id * 2}, rate_limit: {rate: 200/s, burst: 1}}
  - {name: keep, type: filter, where: x > 0}
  - {name: out, type: null}
YAML
run_sluice 0 run out/first.yaml --quiet
expect_eq "bottleneck right after the source" "throttled" "$(bottleneck out/first.json)"

# --json passes the snapshot through; a history file gives its last line.
"$SLUICE_BIN" metrics out/middle.json --json > out/pass.json
expect_eq "--json is the file's snapshot" "$(jq -c . out/middle.json)" "$(jq -c . out/pass.json)"
"$SLUICE_BIN" metrics out/middle.jsonl --json > out/last.json
expect_eq "history: the last line" "$(tail -1 out/middle.jsonl | jq -c .)" "$(jq -c . out/last.json)"
expect_eq "history: its status" "succeeded" "$(jq -r .status out/last.json)"
[ "$(wc -l < out/middle.jsonl)" -ge 2 ] || fail "history has $(wc -l < out/middle.jsonl) line(s)"
expect_eq "history read from stdin" "slow" \
    "$("$SLUICE_BIN" metrics - < out/middle.jsonl | sed -n 's/^bottleneck: \([^ ]*\) .*/\1/p')"
jq . out/middle.json > out/pretty.json
expect_eq "a pretty-printed snapshot" "slow" "$(bottleneck out/pretty.json)"

# Usage.
run_sluice 0 metrics --help
grep -q "^Usage: sluice metrics SNAPSHOT" out/stdout || fail "metrics --help: $(head -1 out/stdout)"
run_sluice 2 metrics
run_sluice 2 metrics out/does-not-exist.json
grep -q "cannot open out/does-not-exist.json" out/stderr || fail "missing file: $(cat out/stderr)"
run_sluice 2 metrics out/middle.yaml
grep -q "is not a metrics snapshot" out/stderr || fail "not a snapshot: $(cat out/stderr)"
run_sluice 2 metrics out/middle.json --frob

finish
