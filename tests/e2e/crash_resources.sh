# Crashes and resources: kill -9 while SQLite is writing leaves a sound
# database holding a prefix of the input in whole transactions; a full disk,
# a read-only directory and a missing input fail the run with exit 1 and a
# message naming the stage, the file and the cause, leaving whole lines and
# a sound database (also when the dead-letter file fills the disk).
. "$(dirname "$0")/lib.bash"

mounts=()
unmount_all() {
    local m
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done
}
e2e_on_exit unmount_all

rows() { sql "$1" 'select count(*) from t' 2>/dev/null || echo 0; }
has_rows() { [ "$(rows "$1")" -ge "$2" ]; }

# --- kill -9 while writing -------------------------------------------------
# A generator of sequential ids feeds a store without end; the process is
# killed once some batches have committed. SQLite commits a transaction at
# every batch_size rows and when its input runs dry (flush), so the
# guarantee is: the database opens, passes integrity_check, and holds ids
# exactly 1..k with nothing missing or doubled (no half transaction).
for round in 1 2 3; do
    db=out/kill$round.db
    batch=$((round * 37))
    cat > out/kill.yaml <<YAML
name: kill
stages:
  - name: gen
    type: generate
    fields: {id: seq(), pad: '"padding padding padding padding padding"'}
  - {name: store, type: sqlite, path: $db, table: t, batch_size: $batch}
YAML
    "$SLUICE_BIN" run out/kill.yaml --quiet >out/kill.out 2>&1 &
    pid=$!
    target=$((batch * (5 + round * 10)))
    wait_for "round $round: $target rows" 60 has_rows "$db" "$target" || true
    kill -9 "$pid"
    rc=0; { wait "$pid"; } 2>/dev/null || rc=$?
    expect_eq "round $round: killed by SIGKILL" "137" "$rc"
    expect_eq "round $round: integrity" "ok" "$(sql "$db" 'pragma integrity_check')"
    read -r n lo hi distinct < <(sql "$db" "select count(*), min(id), max(id), count(distinct id) from t" | tr '|' ' ')
    if [ "$n" -ge "$target" ] && [ "$lo" = 1 ] && [ "$hi" = "$n" ] && [ "$distinct" = "$n" ]; then
        echo "ok: round $round: ids are exactly 1..$n (batch_size $batch)"
    else
        fail "round $round: stored ids are not a prefix: count $n min $lo max $hi distinct $distinct"
    fi
    # The killed database takes more writes: a second run appends after it.
    sed -i 's/^  - name: gen$/  - name: gen\n    count: 10/' out/kill.yaml
    run_sluice 0 run out/kill.yaml --quiet
    expect_eq "round $round: writable after the kill" "$((n + 10))" "$(rows "$db")"
done

# --- full disk ---------------------------------------------------------------
# gen_to SINK_LINE: a pipeline of endless records into the given store.
gen_to() {
    cat <<YAML
name: fill
stages:
  - name: gen
    type: generate
    fields: {id: seq(), pad: '"$(head -c 200 /dev/zero | tr '\0' x)"'}
  - $1
YAML
}
mkdir -p out/small
if mount -t tmpfs -o size=1m sluice-e2e out/small 2>/dev/null; then
    mounts+=("$PWD/out/small")

    gen_to "{name: store, type: file, path: out/small/full.jsonl}" > out/full-jsonl.yaml
    run_sluice 1 run out/full-jsonl.yaml --quiet
    grep -q "stage store: out/small/full.jsonl: no space left on device" out/stderr ||
        fail "jsonl full disk message: $(cat out/stderr)"
    [ "$(stat -c %s out/small/full.jsonl)" -gt 500000 ] || fail "the jsonl store stopped early"
    [ -z "$(tail -c 1 out/small/full.jsonl)" ] || fail "the jsonl file ends in half a line"
    if jq -e . out/small/full.jsonl >/dev/null; then
        echo "ok: every jsonl line is whole JSON ($(wc -l < out/small/full.jsonl) lines)"
    else
        fail "full disk left a broken jsonl line"
    fi
    expect_eq "jsonl ids are a prefix" "1 $(wc -l < out/small/full.jsonl)" \
        "$(jq -s '"\(.[0].id) \(.[-1].id)"' -r out/small/full.jsonl)"
    rm -f out/small/*

    gen_to "{name: store, type: sqlite, path: out/small/full.db, table: t, batch_size: 50}" > out/full-sqlite.yaml
    run_sluice 1 run out/full-sqlite.yaml --quiet
    grep -q "stage store: out/small/full.db: table t: .*disk full" out/stderr ||
        fail "sqlite full disk message: $(cat out/stderr)"
    expect_eq "sqlite after a full disk: integrity" "ok" "$(sql out/small/full.db 'pragma integrity_check')"
    n=$(rows out/small/full.db)
    [ "$n" -gt 0 ] || fail "nothing stored before the disk filled"
    expect_eq "sqlite after a full disk: ids are 1..$n" "1|$n|$n" \
        "$(sql out/small/full.db 'select min(id), max(id), count(distinct id) from t')"
    rm -f out/small/*

    # The dead-letter file fills the disk: the run fails naming the stage
    # and the file, and the file ends with its last whole line.
    awk 'BEGIN { for (i = 1; i <= 20000; i++)
                   if (i % 2) printf "not json %d %0200d\n", i, 0; else printf "{\"id\":%d}\n", i }' \
        > out/half-bad.jsonl
    cat > out/full-dl.yaml <<'YAML'
name: full-dl
dead_letter: {path: out/small/rejects.jsonl}
stages:
  - {name: read, type: file, path: out/half-bad.jsonl}
  - {name: parse, type: json, on_error: dead_letter}
  - {name: store, type: sqlite, path: out/full-dl.db, table: t, batch_size: 100}
YAML
    run_sluice 1 run out/full-dl.yaml --quiet
    grep -q "stage parse: dead letter file out/small/rejects.jsonl: no space left on device" out/stderr ||
        fail "dead-letter full disk message: $(cat out/stderr)"
    [ "$(stat -c %s out/small/rejects.jsonl)" -gt 500000 ] || fail "the dead-letter file stopped early"
    [ -z "$(tail -c 1 out/small/rejects.jsonl)" ] || fail "the dead-letter file ends in half a line"
    if jq -e . out/small/rejects.jsonl >/dev/null; then
        echo "ok: every dead letter is whole JSON ($(wc -l < out/small/rejects.jsonl) lines)"
    else
        fail "full disk left a broken dead-letter line"
    fi
    expect_eq "sqlite beside a full dead-letter disk: integrity" "ok" "$(sql out/full-dl.db 'pragma integrity_check')"
    rm -f out/small/*

    # --- read-only directory -------------------------------------------------
    if mount -o remount,ro out/small 2>/dev/null; then
        gen_to "{name: store, type: file, path: out/small/ro.jsonl}" > out/ro-jsonl.yaml
        run_sluice 1 run out/ro-jsonl.yaml --quiet
        grep -q "stage store: out/small/ro.jsonl: read-only file system" out/stderr ||
            fail "read-only jsonl message: $(cat out/stderr)"
        gen_to "{name: store, type: sqlite, path: out/small/ro.db, table: t}" > out/ro-sqlite.yaml
        run_sluice 1 run out/ro-sqlite.yaml --quiet
        grep -q "stage store: out/small/ro.db: .*read-only file system" out/stderr ||
            fail "read-only sqlite message: $(cat out/stderr)"
        expect_eq "read-only directory left empty" "" "$(ls out/small)"
    else
        echo "SKIP: cannot remount a tmpfs read-only here; read-only directory not tested"
    fi
else
    echo "SKIP: mount -t tmpfs not permitted here (needs root); full disk and read-only directory not tested"
fi

# --- missing input -------------------------------------------------------------
cat > out/missing.yaml <<'YAML'
name: missing
stages:
  - {name: read, type: file, path: out/no-such-dir/missing.jsonl}
  - {name: parse, type: json}
  - {name: store, type: sqlite, path: out/missing.db, table: t}
YAML
run_sluice 1 run out/missing.yaml --quiet
grep -q "stage read: out/no-such-dir/missing.jsonl: no such file or directory" out/stderr ||
    fail "missing input message: $(cat out/stderr)"

# Descriptors, threads and memory released on every exit path:
# tests/e2e/test_resources.c and tests/e2e/valgrind.sh.

finish
