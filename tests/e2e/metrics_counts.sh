# Metrics counts are exact on known inputs: tee, merge, json split,
# dead letters, retries; and every 1:1 stage (filter, map, stores) ends
# with records_in = records_out + dropped + errors.
. "$(dirname "$0")/lib.bash"

events=pipelines/data/events.jsonl
n_events=$(wc -l < "$events")
n_5xx=$(jq -s '[.[] | select(.status >= 500)] | length' "$events")

# check_one_to_one FILE STAGE... — the 1:1 balance for each named stage
check_one_to_one() {
    local file=$1 s in rest; shift
    for s in "$@"; do
        read -r in rest < <(jq -r --arg s "$s" '.stages[] | select(.name == $s) |
            "\(.records_in) \(.records_out + .dropped + .errors)"' "$file")
        expect_eq "$s: records_in = records_out + dropped + errors" "$in" "$rest"
    done
}

# 1. Tee and filter: `errors` is read by two stores, `parse` by a filter
#    and a null sink.
cat > out/tee.yaml <<'YAML'
name: counts-tee
metrics: {file: out/tee.json}
stages:
  - {name: read, type: file, path: pipelines/data/events.jsonl}
  - {name: parse, type: json}
  - {name: errors, type: filter, where: status >= 500}
  - {name: enrich, type: map, inputs: [errors], set: {latency_s: latency_ms / 1000.0}}
  - {name: db, type: sqlite, inputs: [enrich], path: out/tee.db, table: t, batch_size: 7}
  - {name: lines, type: file, inputs: [errors], path: out/tee.jsonl, mode: truncate}
  - {name: all, type: null, inputs: [parse]}
YAML
run_sluice 0 run out/tee.yaml --quiet
m=out/tee.json
expect_eq "status" "succeeded" "$(jq -r .status $m)"
expect_eq "read out" "$n_events" "$(metric $m read records_out)"
expect_eq "parse in" "$n_events" "$(metric $m parse records_in)"
expect_eq "parse out" "$n_events" "$(metric $m parse records_out)"
expect_eq "filter in" "$n_events" "$(metric $m errors records_in)"
expect_eq "filter out" "$n_5xx" "$(metric $m errors records_out)"
expect_eq "filter dropped" "$((n_events - n_5xx))" "$(metric $m errors dropped)"
expect_eq "tee branch enrich in" "$n_5xx" "$(metric $m enrich records_in)"
expect_eq "tee branch lines in" "$n_5xx" "$(metric $m lines records_in)"
expect_eq "db stored" "$n_5xx" "$(metric $m db records_out)"
expect_eq "lines stored" "$n_5xx" "$(metric $m lines records_out)"
expect_eq "null sink (tee of parse) in" "$n_events" "$(metric $m all records_in)"
expect_eq "rows in the table" "$n_5xx" "$(sql out/tee.db 'select count(*) from t')"
expect_eq "lines in the file" "$n_5xx" "$(wc -l < out/tee.jsonl)"
expect_eq "inputs of db" '["enrich"]' "$(jq -c '.stages[] | select(.name == "db") | .inputs' $m)"
check_one_to_one $m parse errors enrich db lines all

# 2. Merge and dead letters: two files into one parse stage; the three
#    bad lines go to the dead-letter file.
cat > out/merge.yaml <<'YAML'
name: counts-merge
metrics: {file: out/merge.json}
dead_letter: {path: out/rejects.jsonl}
stages:
  - {name: a, type: file, path: pipelines/data/events.jsonl}
  - {name: b, type: file, inputs: [], path: pipelines/data/events-with-errors.jsonl}
  - {name: parse, type: json, inputs: [a, b], on_error: dead_letter}
  - {name: store, type: file, path: out/merged.jsonl, mode: truncate}
YAML
n_b=$(wc -l < pipelines/data/events-with-errors.jsonl)
n_bad=0
while IFS= read -r line; do
    jq -e . >/dev/null 2>&1 <<<"$line" || n_bad=$((n_bad + 1))
done < pipelines/data/events-with-errors.jsonl
run_sluice 0 run out/merge.yaml --quiet
m=out/merge.json
expect_eq "merge: parse in" "$((n_events + n_b))" "$(metric $m parse records_in)"
expect_eq "merge: parse errors" "$n_bad" "$(metric $m parse errors)"
expect_eq "merge: parse out" "$((n_events + n_b - n_bad))" "$(metric $m parse records_out)"
expect_eq "merge: dead letters written" "$n_bad" "$(wc -l < out/rejects.jsonl)"
expect_eq "merge: stored" "$((n_events + n_b - n_bad))" "$(metric $m store records_out)"
expect_eq "merge: inputs of parse" '["a","b"]' "$(jq -c '.stages[] | select(.name == "parse") | .inputs' $m)"
check_one_to_one $m parse store

# 3. JSON split: one record per array element, an empty array is dropped.
printf '%s\n' '[1,2,3]' '[]' '[{"a":1}]' '{"x":1}' '[4,5]' > out/arrays.jsonl
cat > out/split.yaml <<'YAML'
name: counts-split
metrics: {file: out/split.json}
stages:
  - {name: read, type: file, path: out/arrays.jsonl}
  - {name: split, type: json, split: true}
  - {name: store, type: null}
YAML
run_sluice 0 run out/split.yaml --quiet
m=out/split.json
expect_eq "split: in" "5" "$(metric $m split records_in)"
expect_eq "split: out" "7" "$(metric $m split records_out)"
expect_eq "split: dropped (empty array)" "1" "$(metric $m split dropped)"
expect_eq "split: stored" "7" "$(metric $m store records_out)"
check_one_to_one $m store

# 4. Retries: a map that fails on id 3 under on_error: retry retries twice
#    (three attempts), then fails the run.
printf '%s\n' '{"id":1}' '{"id":2}' '{"id":3}' '{"id":4}' > out/ids.jsonl
cat > out/retry.yaml <<'YAML'
name: counts-retry
metrics: {file: out/retry.json}
stages:
  - {name: read, type: file, path: out/ids.jsonl}
  - {name: parse, type: json}
  - name: divide
    type: map
    set: {x: 10 / (id - 3)}
    on_error: retry
    retry: {attempts: 3, backoff: 1ms}
  - {name: store, type: null}
YAML
run_sluice 1 run out/retry.yaml --quiet
m=out/retry.json
expect_eq "retry: status" "failed" "$(jq -r .status $m)"
expect_eq "retry: retries" "2" "$(metric $m divide retries)"
expect_eq "retry: errors" "1" "$(metric $m divide errors)"
expect_eq "retry: records before the bad one passed" "2" "$(metric $m divide records_out)"
expect_eq "retry: latency counts every attempt" "5" "$(metric $m divide latency_us.count)"

# 5. Circuit breakers: the engine's own on a failing map opens after two
#    failures and refuses the rest; the http stage's own is reported too.
printf '%s\n' '{"id":3}' '{"id":3}' '{"id":1}' '{"id":2}' > out/breaker.jsonl
cat > out/breaker.yaml <<'YAML'
name: counts-breaker
metrics: {file: out/breaker.json}
stages:
  - {name: read, type: file, path: out/breaker.jsonl}
  - {name: parse, type: json}
  - name: divide
    type: map
    set: {x: 10 / (id - 3)}
    on_error: skip
    circuit_breaker: {failures: 2, cooldown: 1h}
  - {name: store, type: null}
YAML
run_sluice 0 run out/breaker.yaml --quiet
m=out/breaker.json
expect_eq "breaker: state" "open" "$(metric $m divide breaker.state)"
expect_eq "breaker: opened once" "1" "$(metric $m divide breaker.opens)"
expect_eq "breaker: refused the last two" "2" "$(metric $m divide breaker.rejections)"
expect_eq "breaker: every record an error" "4" "$(metric $m divide errors)"
check_one_to_one $m divide
expect_eq "no breaker, no breaker field" "null" "$(metric $m store breaker)"
"$SLUICE_BIN" metrics $m > out/breaker.txt
grep -q "^circuit breaker of divide: open (opened 1 time, 2 calls refused)" out/breaker.txt ||
    fail "report lacks the breaker: $(cat out/breaker.txt)"
cat > out/http-breaker.yaml <<'YAML'
name: counts-http-breaker
metrics: {file: out/http-breaker.json}
stages:
  - name: fetch
    type: http
    urls: ["file://out/missing-{1..3}.json"]
    retry: {attempts: 1}
    circuit_breaker: {failures: 5, cooldown: 1h}
    on_error: skip
  - {name: store, type: null}
YAML
run_sluice 0 run out/http-breaker.yaml --quiet
expect_eq "http breaker reported" "closed" "$(metric out/http-breaker.json fetch breaker.state)"
expect_eq "http errors" "3" "$(metric out/http-breaker.json fetch errors)"

finish
