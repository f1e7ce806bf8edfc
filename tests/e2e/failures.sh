# Failures: a failing stage stops the run with exit 1 naming the stage, and a
# store keeps only whole batches; config errors exit 2 naming file:line.
. "$(dirname "$0")/lib.bash"

# A bad line in the middle of the input, with the default on_error: fail.
head -24 pipelines/data/events.jsonl > out/in.jsonl
echo '{"id": 25, "status": 500,' >> out/in.jsonl
sed -n '26,400p' pipelines/data/events.jsonl >> out/in.jsonl
cat > out/fail.yaml <<'YAML'
name: fail
stages:
  - {name: read, type: file, path: out/in.jsonl}
  - {name: parse, type: json}
  - {name: store, type: sqlite, path: out/fail.db, table: t, batch_size: 10}
YAML
run_sluice 1 run out/fail.yaml --quiet
grep -q "stage parse: " out/stderr || fail "failure message does not name the stage: $(cat out/stderr)"
grep -q "out/in.jsonl" out/stderr || fail "failure message does not name the input: $(cat out/stderr)"
rows=$(sql out/fail.db 'select count(*) from t' 2>/dev/null || echo 0)
[ "$rows" -lt 25 ] || fail "rows after the bad line were stored ($rows)"
expect_eq "stored rows are a prefix of the input" "$rows" \
    "$(sql out/fail.db 'select count(*) from t where id between 1 and 24' 2>/dev/null || echo 0)"

# The same with on_error: skip finishes and stores the rest.
sed -i 's/type: json}/type: json, on_error: skip}/' out/fail.yaml
run_sluice 0 run out/fail.yaml --quiet --metrics-file out/skip-metrics.json
expect_eq "skip stores every good line" "399" "$(sql out/fail.db 'select count(*) from t')"
expect_eq "skip counts the error" "1" "$(metric out/skip-metrics.json parse errors)"

# A missing input file is a run failure naming the file.
cat > out/missing.yaml <<'YAML'
name: missing
stages:
  - {name: read, type: file, path: out/does-not-exist.jsonl}
  - {name: out, type: null}
YAML
run_sluice 1 run out/missing.yaml --quiet
grep -q "does-not-exist.jsonl" out/stderr || fail "missing file not named: $(cat out/stderr)"

# Config errors: exit 2, every message names file:line.
for f in "$SLUICE_SOURCE_DIR"/tests/fixtures/config/bad/*.yaml; do
    [ -e "$f" ] || continue
    run_sluice 2 validate "$f"
    want=$(sed -n 's/^# expect: //p' "$f" | head -1)
    grep -qF "$(basename "$f"):" out/stderr || fail "$f: message lacks the file name: $(head -3 out/stderr)"
    [ -z "$want" ] || grep -qF -- "$want" out/stderr || fail "$f: expected '$want' in: $(head -3 out/stderr)"
done
run_sluice 2 run "$SLUICE_SOURCE_DIR/tests/fixtures/config/bad/does-not-exist.yaml"
run_sluice 2 frobnicate
run_sluice 0 validate pipelines/quickstart.yaml
run_sluice 0 --help
run_sluice 0 run --help
grep -q "Usage" out/stdout || fail "run --help prints no usage"

finish
