# Hostile records: SQL in field, value and table names, invalid UTF-8, NUL
# bytes, a 4 MiB line, 100,000-deep nesting, huge numbers, blank lines, a
# last line without a newline, garbage. With on_error: dead_letter or skip
# the run finishes, the good records are stored whole, the bad ones are
# counted (and dead-lettered with the reason), and the rest of the database
# is untouched. The json and file limits are configurable and enforced.
. "$(dirname "$0")/lib.bash"

"$SLUICE_SOURCE_DIR/tests/fixtures/hostile/make_records.sh" out/hostile.jsonl

# A database that already holds another table the input tries to drop.
new_db() {
    rm -f "$1" "$1-wal" "$1-shm"
    sql "$1" "create table keep(a integer primary key, b text);
              insert into keep values (1, 'one'), (2, 'two'), (3, 'three');"
}
keep_intact() {
    expect_eq "$1: other table untouched" "3|1:one,2:two,3:three" \
        "$(sql "$2" "select count(*), group_concat(a || ':' || b) from (select * from keep order by a)")"
    expect_eq "$1: integrity" "ok" "$(sql "$2" 'pragma integrity_check')"
}

# --- dead_letter ---------------------------------------------------------
new_db out/dl.db
cat > out/dl.yaml <<'YAML'
name: hostile-dl
dead_letter: {path: out/rejects.jsonl}
stages:
  - {name: read, type: file, path: out/hostile.jsonl}
  - {name: parse, type: json, on_error: dead_letter}
  - {name: store, type: sqlite, path: out/dl.db, table: t, batch_size: 3}
YAML
run_sluice 0 run out/dl.yaml --quiet --metrics-file out/dl-metrics.json
expect_eq "dl: stored ids" "1,2,3,4,5,6,7" "$(sql out/dl.db 'select group_concat(id) from (select id from t order by id)')"
expect_eq "dl: parse errors" "8" "$(metric out/dl-metrics.json parse errors)"
expect_eq "dl: parse records_out" "7" "$(metric out/dl-metrics.json parse records_out)"
expect_eq "dl: store records_out" "7" "$(metric out/dl-metrics.json store records_out)"
expect_eq "dl: blank lines are not records" "15" "$(metric out/dl-metrics.json read records_out)"
keep_intact dl out/dl.db
# Injection attempts are stored as data, under a quoted column name.
expect_eq "field name stored as a column" "inj-name" \
    "$(sql out/dl.db 'select "x""); DROP TABLE t; --" from t where id = 1')"
expect_eq "value stored verbatim" "x'); DROP TABLE keep; --" "$(sql out/dl.db 'select name from t where id = 2')"
expect_eq "escaped NUL kept whole" "610062" "$(sql out/dl.db 'select hex(s) from t where id = 3')"
expect_eq "4 MiB string kept whole" "4194304" "$(sql out/dl.db 'select length(big) from t where id = 4')"
expect_eq "int64 max" "9223372036854775807" "$(sql out/dl.db 'select n from t where id = 5')"
expect_eq "UTF-8 kept" "é ü 😀" "$(sql out/dl.db 'select u from t where id = 6')"
expect_eq "last line without newline" "1" "$(sql out/dl.db 'select last from t where id = 7')"

# Every rejected line is dead-lettered once, as valid JSON, with its reason.
expect_eq "dead letters" "8" "$(wc -l < out/rejects.jsonl)"
jq -e . out/rejects.jsonl >/dev/null || fail "dead-letter file is not valid JSON lines"
expect_eq "dead-letter lines" "4,6,10,11,12,13,15,17" \
    "$(jq -r '.position.seq' out/rejects.jsonl | sort -n | paste -sd,)"
expect_eq "every dead letter names the stage" "parse" "$(jq -r .stage out/rejects.jsonl | sort -u)"
expect_eq "every dead letter names the file" "out/hostile.jsonl" "$(jq -r .position.locator out/rejects.jsonl | sort -u)"
reason() { jq -r --argjson l "$1" 'select(.position.seq == $l) | .error' out/rejects.jsonl; }
for want in "4:overflow" "6:decode byte 0xff" "10:NUL byte" "11:too big integer" \
            "12:invalid token" "13:deeper than the limit of 512" "15:NUL byte" "17:unexpected"; do
    line=${want%%:*} text=${want#*:}
    r=$(reason "$line")
    case "$r" in
        *"out/hostile.jsonl line $line:"*"$text"*) echo "ok: line $line: ${r:0:70}" ;;
        *) fail "line $line: expected '$text' with file:line in the reason, got '$r'" ;;
    esac
done
expect_eq "dead-lettered record is the line" '{"id":101,"n":1e400}' \
    "$(jq -r 'select(.position.seq == 4) | .record' out/rejects.jsonl)"

# --- skip, and a table name that tries SQL injection ---------------------
new_db out/skip.db
cat > out/skip.yaml <<'YAML'
name: hostile-skip
stages:
  - {name: read, type: file, path: out/hostile.jsonl}
  - {name: parse, type: json, on_error: skip}
  - {name: store, type: sqlite, path: out/skip.db, table: 'x"); DROP TABLE keep; --', batch_size: 2}
YAML
run_sluice 0 run out/skip.yaml --quiet --metrics-file out/skip-metrics.json
expect_eq "skip: stored ids" "1,2,3,4,5,6,7" \
    "$(sql out/skip.db 'select group_concat(id) from (select id from "x""); DROP TABLE keep; --" order by id)')"
expect_eq "skip: parse errors" "8" "$(metric out/skip-metrics.json parse errors)"
expect_eq "skip: tables" "keep|x\"); DROP TABLE keep; --" \
    "$(sql out/skip.db "select group_concat(name, '|') from (select name from sqlite_master where type = 'table' order by name)")"
keep_intact skip out/skip.db

# --- the limits are configurable --------------------------------------------
new_db out/lim.db
cat > out/lim.yaml <<'YAML'
name: hostile-limits
dead_letter: {path: out/lim-rejects.jsonl}
stages:
  - {name: read, type: file, path: out/hostile.jsonl}
  - {name: parse, type: json, on_error: dead_letter, max_bytes: 1MiB, max_depth: 2}
  - {name: store, type: sqlite, path: out/lim.db, table: t}
YAML
run_sluice 0 run out/lim.yaml --quiet --metrics-file out/lim-metrics.json
expect_eq "limits: stored ids" "1,2,3,5,6,7" "$(sql out/lim.db 'select group_concat(id) from (select id from t order by id)')"
expect_eq "limits: parse errors" "9" "$(metric out/lim-metrics.json parse errors)"
grep -q 'line 9: document of 4194321 bytes exceeds the limit of 1048576 bytes' out/lim-rejects.jsonl ||
    fail "max_bytes reason missing: $(jq -r .error out/lim-rejects.jsonl)"
grep -q 'line 13: nesting deeper than the limit of 2 levels' out/lim-rejects.jsonl ||
    fail "max_depth reason missing: $(jq -r .error out/lim-rejects.jsonl)"
keep_intact limits out/lim.db
# Nesting within max_depth is accepted: {"a":[1]} is depth 2.
printf '{"a":[1]}\n{"a":[[1]]}\n' > out/depth.jsonl
sed 's#out/hostile.jsonl#out/depth.jsonl#; s#out/lim.db#out/depth.db#' out/lim.yaml > out/depth.yaml
run_sluice 0 run out/depth.yaml --quiet --metrics-file out/depth-metrics.json
expect_eq "depth 2 accepted, depth 3 rejected" "1/1" \
    "$(metric out/depth-metrics.json parse records_out)/$(metric out/depth-metrics.json parse errors)"

# The highest max_depth still refuses 100,000 levels, at the parser's own
# maximum, without exhausting a stack.
printf '{"a":[[1]]}\n' > out/deepest.jsonl
"$SLUICE_SOURCE_DIR/tests/fixtures/hostile/make_records.sh" /dev/stdout | sed -n 13p >> out/deepest.jsonl
sed 's#out/hostile.jsonl#out/deepest.jsonl#; s#out/lim.db#out/deepest.db#; s#max_depth: 2#max_depth: 100000#; s#lim-rejects#deepest-rejects#' \
    out/lim.yaml > out/deepest.yaml
run_sluice 0 run out/deepest.yaml --quiet --metrics-file out/deepest-metrics.json
expect_eq "max_depth 100000: stored/refused" "1/1" \
    "$(metric out/deepest-metrics.json parse records_out)/$(metric out/deepest-metrics.json parse errors)"
grep -q 'line 2: nesting deeper than the parser maximum of 2047 levels' out/deepest-rejects.jsonl ||
    fail "parser maximum reason missing: $(jq -r .error out/deepest-rejects.jsonl | cut -c1-200)"

# A line longer than the file stage's max_line fails the run naming file:line,
# and what was stored before it is intact.
new_db out/line.db
cat > out/line.yaml <<'YAML'
name: hostile-max-line
stages:
  - {name: read, type: file, path: out/hostile.jsonl, max_line: 1MiB}
  - {name: parse, type: json, on_error: skip}
  - {name: store, type: sqlite, path: out/line.db, table: t, batch_size: 1}
YAML
run_sluice 1 run out/line.yaml --quiet
grep -q 'stage read: out/hostile.jsonl:9: line longer than max_line (1048576 bytes)' out/stderr ||
    fail "max_line failure not reported with file:line: $(cat out/stderr)"
keep_intact max_line out/line.db
stored=$(sql out/line.db 'select group_concat(id) from (select id from t order by id)' 2>/dev/null || true)
case "$stored" in ""|1|1,2|1,2,3) echo "ok: stored before the long line: '$stored'" ;;
    *) fail "rows from after the long line were stored: $stored" ;; esac

# The limits are in the stage docs.
grep -q '`max_depth`' "$SLUICE_SOURCE_DIR/docs/stages/json.md" || fail "json max_depth undocumented"
grep -q '`max_bytes`' "$SLUICE_SOURCE_DIR/docs/stages/json.md" || fail "json max_bytes undocumented"
grep -q '`max_line`' "$SLUICE_SOURCE_DIR/docs/stages/file.md" || fail "file max_line undocumented"

finish
