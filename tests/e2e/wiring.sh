# Wiring: merge of two sources, workers with ordered output, json split,
# csv and regex parsing, stdout — counts checked against the input files.
. "$(dirname "$0")/lib.bash"

events=pipelines/data/events.jsonl
cat > out/merge.yaml <<'YAML'
name: merge
stages:
  - {name: a, type: file, path: pipelines/data/events.jsonl}
  - {name: b, type: file, path: pipelines/data/events-with-errors.jsonl, inputs: []}
  - {name: parse, type: json, inputs: [a, b], on_error: skip, workers: 2}
  - {name: tag, type: map, set: {n: seq()}, workers: 2, ordered: true}
  - {name: out, type: file, path: out/merged.jsonl, mode: truncate}
YAML
run_sluice 0 run out/merge.yaml --quiet --metrics-file out/merge.json
expect_eq "merge delivers both inputs" "537" "$(wc -l < out/merged.jsonl)"
expect_eq "merge: each id of the big file once or twice" "500" \
    "$(jq -r .id out/merged.jsonl | sort -un | wc -l)"
expect_eq "merge: skip counted" "3" "$(metric out/merge.json parse errors)"
expect_eq "workers reported" "2" "$(metric out/merge.json parse workers)"

# ordered: true keeps the order of the input (one source here)
cat > out/ordered.yaml <<'YAML'
name: ordered
stages:
  - {name: a, type: file, path: pipelines/data/events.jsonl}
  - {name: parse, type: json, workers: 2, ordered: true}
  - {name: slow, type: map, set: {x: 'len(path) > 3 ? lower(path) : upper(path)'}, workers: 2, ordered: true}
  - {name: out, type: file, path: out/ordered.jsonl, mode: truncate}
YAML
run_sluice 0 run out/ordered.yaml --quiet
expect_eq "ordered output keeps input order" "$(jq -r .id "$events" | xargs)" \
    "$(jq -r .id out/ordered.jsonl | xargs)"

# json split: one record per array element
printf '[{"a":1},{"a":2},{"a":3}]\n[{"a":4}]\n' > out/arrays.json
cat > out/split.yaml <<'YAML'
name: split
stages:
  - {name: in, type: file, path: out/arrays.json}
  - {name: parse, type: json, split: true}
  - {name: out, type: stdout}
YAML
run_sluice 0 run out/split.yaml --quiet
expect_eq "split emits every element" "1 2 3 4" "$(jq -r .a out/stdout | xargs)"

# regex with named groups, from stdin
cat > out/regex.yaml <<'YAML'
name: regex
stages:
  - {name: in, type: stdin}
  - {name: parse, type: regex, pattern: '^(?<method>[A-Z]+) (?<path>[^ ]+) (?<status>[0-9]+)$'}
  - {name: errors, type: filter, where: to_int(status) >= 500}
  - {name: out, type: stdout}
YAML
printf 'GET /a 200\nPOST /b 503\nGET /c 500\n' | "$SLUICE_BIN" run out/regex.yaml --quiet > out/regex.out
expect_eq "regex named groups" "/b /c" "$(jq -r .path out/regex.out | xargs)"
expect_eq "regex method field" "POST GET" "$(jq -r .method out/regex.out | xargs)"

# sluice graph draws every edge
run_sluice 0 graph out/merge.yaml
expect_eq "graph has the merge edges" "2" "$(grep -cE '"(a|b)" -> "parse"' out/stdout)"

finish
