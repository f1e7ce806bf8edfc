# Delivery (settings.state): kill -9 at random moments, again and again,
# then rerun to completion; every expected row is stored exactly once.
#   1. file -> json -> filter -> sqlite, the store in the state file
#   2. the same with a tee into two SQLite stores (tables of the state file)
#   2b. file -> json split: true (1-7 elements a line) -> sqlite with
#       batch_size 3: one line's elements straddle transactions
#   3. SIGTERM, then resume into a file store: no gap and no repeat
#   4. a file replaced or truncated under its saved position is reported
#      and read from its start
#   5. generate continues its sequence; stdin says it cannot resume
# Kills: SLUICE_CRASH_KILLS (default 200 for part 1, half as many for parts 2
# and 2b), stopped early when the time budget (SLUICE_CRASH_BUDGET seconds,
# default 6 for part 1, half for part 2, a third for 2b) runs out, so
# sanitizer builds do fewer of them.
. "$(dirname "$0")/lib.bash"

KILLS=${SLUICE_CRASH_KILLS:-200}
BUDGET=${SLUICE_CRASH_BUDGET:-6}
N=30000

awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++)
    printf "{\"id\":%d,\"kind\":%d,\"pad\":\"%s\"}\n", i, i % 5, "xxxxxxxxxxxxxxxx" }' > in.jsonl
# The filter keeps kind != 3: four in five.
want=$(awk -v n=$N 'BEGIN { c = 0; for (i = 1; i <= n; i++) if (i % 5 != 3) c++; print c }')

# crash_loop PIPELINE KILLS BUDGET: runs killed by SIGKILL after a random
# 0-40 ms, until a run ends by itself or the kills or the budget run out.
# The pipelines read at a fixed rate so that a run's progress in those
# milliseconds does not depend on how fast the build is: a whole file takes
# about a second, hence dozens of kills on every build.
# Sets: kills (how many landed), done (a run finished on its own).
crash_loop() {
    local yaml=$1 max=$2 budget=$3 start=$SECONDS pid rc
    kills=0
    done=0
    while [ "$kills" -lt "$max" ] && [ $((SECONDS - start)) -lt "$budget" ]; do
        "$SLUICE_BIN" run "$yaml" --quiet >/dev/null 2>>out/crash.log &
        pid=$!
        sleep "0.0$((RANDOM % 40))"
        kill -9 "$pid" 2>/dev/null || true
        rc=0; wait "$pid" 2>/dev/null || rc=$?
        if [ "$rc" -eq 137 ]; then
            kills=$((kills + 1))
        elif [ "$rc" -eq 0 ]; then
            done=1
            break
        else
            fail "$yaml: a run exited $rc"
            tail -5 out/crash.log >&2
            break
        fi
    done
}

# --- 1. kill -9 into one SQLite store --------------------------------------
cat > out/one.yaml <<'YAML'
name: crash-one
settings:
  state: out/one.db
stages:
  - {name: read, type: file, path: in.jsonl, rate_limit: {rate: 30000/s, burst: 200}}
  - {name: parse, type: json}
  - {name: keep, type: filter, where: kind != 3}
  - {name: db, type: sqlite, path: out/one.db, table: rows, batch_size: 200}
YAML
crash_loop out/one.yaml "$KILLS" "$BUDGET"
echo "ok: part 1: $kills kills (finished on its own: $done)"
[ "$kills" -ge 5 ] || fail "part 1: only $kills kills landed"
run_sluice 0 run out/one.yaml --quiet
expect_eq "one store: integrity" "ok" "$(sql out/one.db 'pragma integrity_check')"
expect_eq "one store: rows, distinct ids, no kind 3" "$want|$want|0" \
    "$(sql out/one.db 'select count(*), count(distinct id), sum(kind = 3) from rows')"
expect_eq "one store: ids" "1|$N" "$(sql out/one.db 'select min(id), max(id) from rows')"
expect_eq "one store: saved position is the end" "$N" \
    "$(sql out/one.db "select seq from sluice_positions where sink = 'db'")"
# A rerun has nothing left to read.
run_sluice 0 run out/one.yaml --quiet
expect_eq "one store: a rerun adds nothing" "$want" "$(sql out/one.db 'select count(*) from rows')"

# --- 2. kill -9 into a tee of two SQLite stores ------------------------------
cat > out/tee.yaml <<'YAML'
name: crash-tee
settings:
  state: out/tee.db
stages:
  - {name: read, type: file, path: in.jsonl, rate_limit: {rate: 30000/s, burst: 200}}
  - {name: parse, type: json}
  - {name: keep, type: filter, where: kind != 3, inputs: [parse]}
  - {name: kept, type: sqlite, path: out/tee.db, table: kept, batch_size: 300, inputs: [keep]}
  - {name: all, type: sqlite, path: out/tee.db, table: everything, batch_size: 170, inputs: [parse]}
YAML
crash_loop out/tee.yaml $((KILLS / 2)) $((BUDGET / 2))
echo "ok: part 2: $kills kills (finished on its own: $done)"
run_sluice 0 run out/tee.yaml --quiet
expect_eq "tee: kept rows exactly once" "$want|$want" \
    "$(sql out/tee.db 'select count(*), count(distinct id) from kept')"
expect_eq "tee: all rows exactly once" "$N|$N" \
    "$(sql out/tee.db 'select count(*), count(distinct id) from everything')"

# --- 2b. kill -9 after a json split into small batches ----------------------
# Line i holds (i % 7) + 1 elements {"id":i,"el":j}: batches of 3 rows end
# inside lines, so the store carries a line's first rows until the rest
# arrive and commits whole lines only.
SPLIT_LINES=4000
awk -v n=$SPLIT_LINES 'BEGIN { for (i = 1; i <= n; i++) {
    k = i % 7 + 1; printf "["
    for (j = 1; j <= k; j++) printf "%s{\"id\":%d,\"el\":%d}", (j > 1 ? "," : ""), i, j
    printf "]\n" } }' > split.jsonl
split_want=$(awk -v n=$SPLIT_LINES 'BEGIN { c = 0; for (i = 1; i <= n; i++) c += i % 7 + 1; print c }')
cat > out/split.yaml <<'YAML'
name: crash-split
settings:
  state: out/split.db
stages:
  - {name: read, type: file, path: split.jsonl, rate_limit: {rate: 8000/s, burst: 50}}
  - {name: parse, type: json, split: true}
  - {name: db, type: sqlite, path: out/split.db, table: els, batch_size: 3}
YAML
crash_loop out/split.yaml $((KILLS / 2)) $((BUDGET / 3))
echo "ok: part 2b: $kills kills (finished on its own: $done)"
[ "$kills" -ge 3 ] || fail "part 2b: only $kills kills landed"
run_sluice 0 run out/split.yaml --quiet
grep -q "not complete yet" out/crash.log out/stderr && fail "part 2b: the order warning is back"
expect_eq "split: every element once" "$split_want|$split_want" \
    "$(sql out/split.db "select count(*), count(distinct id || '.' || el) from els")"
expect_eq "split: whole lines" "$SPLIT_LINES|0" \
    "$(sql out/split.db 'select count(*), sum(n != id % 7 + 1) from (select id, count(*) n from els group by id)')"

# --- 3. SIGTERM, then resume into a file store -------------------------------
cat > out/term.yaml <<'YAML'
name: term
settings:
  state: out/term-state.db
stages:
  - name: read
    type: file
    path: in.jsonl
    rate_limit: {rate: 40000/s, burst: 200}
  - {name: parse, type: json}
  - {name: out, type: file, path: out/term.jsonl}
YAML
for round in 1 2 3; do
    before=$(wc -c 2>/dev/null <out/term.jsonl || echo 0)
    "$SLUICE_BIN" run out/term.yaml --quiet >/dev/null 2>out/term.err &
    pid=$!
    # Output means the run is under way (signals are sluice's by then); a
    # TERM during start-up would simply kill it.
    wait_for "round $round to write" 60 bash -c \
        "[ \$(wc -c 2>/dev/null <out/term.jsonl || echo 0) -gt $before ] || ! kill -0 $pid"
    kill -TERM "$pid" 2>/dev/null || true
    rc=0; wait "$pid" || rc=$?
    expect_eq "term round $round: drained exit" "0" "$rc"
done
run_sluice 0 run out/term.yaml --quiet
expect_eq "term: every line once, in order" "$(seq 1 $N | md5sum)" \
    "$(jq -r .id out/term.jsonl | md5sum)"

# --- 4. a file changed under its saved position ------------------------------
cat > out/change.yaml <<'YAML'
name: change
settings:
  state: out/change-state.db
stages:
  - {name: read, type: file, path: change.jsonl}
  - {name: parse, type: json}
  - {name: out, type: file, path: out/change.jsonl}
YAML
seq 1 50 | sed 's/.*/{"id":&}/' > change.jsonl
run_sluice 0 run out/change.yaml --quiet
seq 51 60 | sed 's/.*/{"id":&}/' >> change.jsonl          # appended: resumes
run_sluice 0 run out/change.yaml --quiet
expect_eq "appended lines are read after the saved position" "60|60" \
    "$(jq -r .id out/change.jsonl | sort -un | wc -l)|$(wc -l < out/change.jsonl)"
seq 1001 1005 | sed 's/.*/{"id":&}/' > change.new && mv change.new change.jsonl
run_sluice 0 run out/change.yaml
grep -q "was replaced" out/stderr || fail "a replaced file is not reported: $(cat out/stderr)"
expect_eq "a replaced file is read from its start" "1001 1005" \
    "$(jq -r .id out/change.jsonl | tail -5 | sed -n '1p;$p' | tr '\n' ' ' | sed 's/ $//')"
: > change.jsonl                                           # truncated in place
echo '{"id":2001}' >> change.jsonl
run_sluice 0 run out/change.yaml
grep -q "was truncated" out/stderr || fail "a truncated file is not reported: $(cat out/stderr)"
expect_eq "a truncated file is read from its start" "2001" "$(jq -r .id out/change.jsonl | tail -1)"

# --- 5. generate goes on; stdin cannot resume ---------------------------------
cat > out/gen.yaml <<'YAML'
name: gen
settings:
  state: out/gen-state.db
stages:
  - {name: gen, type: generate, count: "${COUNT}"}
  - {name: out, type: file, path: out/gen.jsonl}
YAML
run_sluice 0 run out/gen.yaml --set COUNT=300 --quiet
run_sluice 0 run out/gen.yaml --set COUNT=500 --quiet
expect_eq "generate continues its sequence" "$(seq 1 500 | md5sum)" \
    "$(jq -r .seq out/gen.jsonl | md5sum)"

cat > out/stdin.yaml <<'YAML'
name: in
settings:
  state: out/stdin-state.db
stages:
  - {name: in, type: stdin}
  - {name: out, type: file, path: out/stdin.jsonl}
YAML
printf '{"a":1}\n{"a":2}\n' | "$SLUICE_BIN" run out/stdin.yaml --quiet 2>out/stderr >/dev/null || fail "stdin run failed"
printf '{"a":1}\n{"a":2}\n' | "$SLUICE_BIN" run out/stdin.yaml --quiet 2>out/stderr >/dev/null || fail "stdin run failed"
grep -q "cannot be resumed" out/stderr || fail "stdin does not say it cannot resume"
expect_eq "stdin: every run delivers what it reads" "4" "$(wc -l < out/stdin.jsonl)"

finish
