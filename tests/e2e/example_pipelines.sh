# Every example in pipelines/ runs and stores what it should.
. "$(dirname "$0")/lib.bash"

# Expected counts are computed from the data with jq, not hard-coded.
events=pipelines/data/events.jsonl
api_errors=$(jq -c 'select(.status >= 500 and (.path | test("^/api/")))' "$events" | wc -l)
all_errors=$(jq -c 'select(.status >= 500)' "$events" | wc -l)

# quickstart: file -> json -> filter -> map -> sqlite
run_sluice 0 run pipelines/quickstart.yaml --quiet
expect_eq "quickstart rows" "$api_errors" "$(sql out/quickstart.db 'select count(*) from errors')"
expect_eq "quickstart latency_s computed" "0" \
    "$(sql out/quickstart.db 'select count(*) from errors where abs(latency_s * 1000.0 - latency_ms) > 1e-6')"
expect_eq "quickstart bytes deleted" "0" \
    "$(sql out/quickstart.db "select count(*) from pragma_table_info('errors') where name = 'bytes'")"
expect_eq "quickstart severity" "$(jq -c 'select(.status >= 503 and (.path | test("^/api/")))' "$events" | wc -l)" \
    "$(sql out/quickstart.db "select count(*) from errors where severity = 'high'")"
# the final metrics snapshot is written and balanced for the filter
expect_eq "quickstart metrics status" '"succeeded"' "$(jq '.status' out/quickstart-metrics.json)"
expect_eq "filter records_in" "500" \
    "$(jq '.stages[] | select(.name == "errors_only") | .records_in' out/quickstart-metrics.json)"
expect_eq "filter dropped" "$((500 - api_errors))" \
    "$(jq '.stages[] | select(.name == "errors_only") | .dropped' out/quickstart-metrics.json)"
# running again upserts on the key: same row count
run_sluice 0 run pipelines/quickstart.yaml --quiet
expect_eq "quickstart rows after rerun" "$api_errors" "$(sql out/quickstart.db 'select count(*) from errors')"

# csv-import: typed columns, quoted commas
run_sluice 0 run pipelines/csv-import.yaml --quiet
expect_eq "csv rows" "100" "$(sql out/users.db 'select count(*) from users')"
expect_eq "csv score is a number" "real" "$(sql out/users.db 'select typeof(score) from users limit 1')"
expect_eq "csv id is an integer" "integer" "$(sql out/users.db 'select typeof(id) from users limit 1')"
expect_eq "csv quoted comma kept" \
    "$(grep -c 'Lee, Jr\.' pipelines/data/users.csv)" \
    "$(sql out/users.db "select count(*) from users where name like '%Lee, Jr.'")"

# tee: both branches get every record
run_sluice 0 run pipelines/tee.yaml --quiet
expect_eq "tee sqlite rows" "$all_errors" "$(sql out/tee.db 'select count(*) from errors')"
expect_eq "tee jsonl lines" "$all_errors" "$(wc -l < out/tee-errors.jsonl)"
expect_eq "tee branch independence (map kept 3 fields)" "3" \
    "$(head -1 out/tee-errors.jsonl | jq 'keys | length')"
expect_eq "tee sqlite branch still has every field" "7" \
    "$(sql out/tee.db "select count(*) from pragma_table_info('errors')")"

# dead-letter: bad lines set aside with stage, reason and position
rm -f out/rejects.jsonl
run_sluice 0 run pipelines/dead-letter.yaml --quiet
expect_eq "dead-letter good records" "37" "$(wc -l < out/dead-letter-good.jsonl)"
expect_eq "dead-letter rejects" "3" "$(wc -l < out/rejects.jsonl)"
expect_eq "dead-letter stage named" "3" "$(jq -r '.stage' out/rejects.jsonl | grep -c '^parse$')"
expect_eq "dead-letter reason given" "3" "$(jq -r '.error' out/rejects.jsonl | grep -c .)"
expect_eq "dead-letter positions" "8 20 32" "$(jq -r '.position.seq' out/rejects.jsonl | sort -n | xargs)"

# generate: a computed stream into SQLite
run_sluice 0 run pipelines/generate.yaml --quiet --set COUNT=20000
expect_eq "generate rows" "20000" "$(sql out/generate.db 'select count(*) from events')"
expect_eq "generate ids" "200010000" "$(sql out/generate.db 'select sum(id) from events')"

finish
