# `sluice report`: a pipeline with a slow stage writes its history every
# 50 ms; the report drawn from it names that stage the bottleneck, holds
# every chart, fetches nothing, and renders in headless Chromium without
# console errors. Bad histories and arguments are usage errors naming the
# file and line.
. "$(dirname "$0")/lib.bash"

# A. The run: gen -> divide (errors on every 50th record, skipped) ->
#    slow (rate limited: the bottleneck) -> out. Its input queue holds
#    0.1 s of its work, so a busy machine that runs the stages before it
#    late still keeps it fed.
cat > out/r.yaml <<'YAML'
name: 'report <e2e> & "co"'
settings: {channel_capacity: 32}
metrics: {file: out/r.json, history: out/r.jsonl, interval: 50ms}
stages:
  - {name: gen, type: generate, count: 240, fields: {id: seq()}}
  - {name: divide, type: map, set: {x: 10 / (id % 50)}, on_error: skip}
  - {name: slow, type: rate_limit, rate: 300/s, burst: 1}
  - {name: out, type: null}
YAML
run_sluice 0 run out/r.yaml --quiet
lines=$(wc -l < out/r.jsonl)
[ "$lines" -ge 5 ] || fail "history has only $lines line(s)"

run_sluice 0 report out/r.jsonl -o out/r.html
[ -s out/r.html ] || fail "no report written"
page=out/r.html

# B. The page: charts, one series per stage, the bottleneck, escaping.
for id in stage-graph stage-table throughput queue-fill time-use latency errors; do
    grep -q "id=\"$id\"" $page || fail "no #$id in the report"
done
expect_eq "retries chart absent (none in this run)" "1" "$(grep -c 'id="no-retries"' $page)"
throughput=$(sed -n 's/.*\(<svg[^>]*id="throughput".*\)/\1/p' $page | sed 's,</svg>.*,,')
expect_eq "throughput: one series per stage" "4" "$(grep -o 'class="series[^"]*" data-stage="[^"]*"' <<<"$throughput" | wc -l)"
expect_eq "the bottleneck node" "1" "$(grep -o 'class="node hot" data-stage="slow"' $page | wc -l)"
grep -q 'id="bottleneck">bottleneck: slow (rate_limit)' $page ||
    fail "callout: $(grep -o 'id="bottleneck">[^<]*' $page); $("$SLUICE_BIN" metrics out/r.json)"
grep -q 'data-stage="divide"' <<<"$(sed -n 's/.*\(<svg[^>]*id="errors".*\)/\1/p' $page | sed 's,</svg>.*,,')" ||
    fail "errors chart lacks divide"
grep -q '<title>sluice report: report &lt;e2e&gt; &amp; &quot;co&quot;</title>' $page ||
    fail "pipeline name not escaped: $(grep -o '<title>[^<]*' $page | head -1)"
! grep -q '<e2e>' $page || fail "raw markup from the pipeline name"
# self-contained: no script, no link, nothing fetched
! grep -qiE '<script|<link|<img|<iframe|src=|href=|@import|url\(http' $page ||
    fail "the page references something outside it"
expect_eq "no address but the SVG namespace" "" \
    "$(grep -oE '(https?|ftp)://[^" ]*' $page | grep -v '^http://www.w3.org/2000/svg$' | sort -u)"

# C. Headless Chromium: the page renders, no console errors, charts in the
#    DOM, and a screenshot.
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    fail "chromium is not installed (scripts/deps installs it)"
else
    export DBUS_SESSION_BUS_ADDRESS=disabled:
    flags=(--headless --no-sandbox --disable-gpu --no-first-run
           --disable-extensions --disable-dev-shm-usage
           --user-data-dir="$E2E_DIR/chromium")
    url="file://$E2E_DIR/$page"
    rc=0
    timeout 60 "$browser" "${flags[@]}" --enable-logging=stderr --v=0 \
        --dump-dom "$url" > out/dom.html 2> out/chromium.log || rc=$?
    expect_eq "chromium --dump-dom exit" "0" "$rc"
    console=$(grep -E ':CONSOLE|Uncaught' out/chromium.log || true)
    expect_eq "console messages" "" "$console"
    expect_eq "charts in the rendered DOM" "6" \
        "$(grep -oE '<svg class="chart[^"]*" id="(stage-graph|throughput|queue-fill|time-use|latency|errors)"' out/dom.html | wc -l)"
    expect_eq "series paths in the rendered DOM" "4" \
        "$(sed -n 's/.*\(<svg[^>]*id="throughput".*\)/\1/p' out/dom.html | sed 's,</svg>.*,,' | grep -o '<path class="series' | wc -l)"
    rc=0
    timeout 60 "$browser" "${flags[@]}" --hide-scrollbars --window-size=1000,2400 \
        --screenshot="$E2E_DIR/out/r.png" "$url" > /dev/null 2>> out/chromium.log || rc=$?
    expect_eq "chromium --screenshot exit" "0" "$rc"
    size=$(stat -c %s out/r.png 2>/dev/null || echo 0)
    [ "$size" -gt 20000 ] || fail "screenshot is $size bytes: a blank page?"
    [ "$failures" -eq 0 ] || sed 's/^/  chromium: /' out/chromium.log | grep -v dbus >&2 || true
fi

# D. One line, standard input, runs, --run.
head -1 out/r.jsonl > out/one.jsonl
run_sluice 0 report out/one.jsonl -o out/one.html
grep -q "1 snapshot &middot;" out/one.html || fail "one-line report: $(grep -o 'id="run">[^/]*' out/one.html)"
run_sluice 0 report - -o - < out/r.jsonl
grep -q 'id="throughput"' out/stdout || fail "stdin to stdout: no chart"
cat out/r.jsonl out/r.jsonl > out/twice.jsonl
run_sluice 0 report out/twice.jsonl -o out/twice.html
grep -q "holds 2 runs; showing run 2 (lines $((lines + 1))-$((2 * lines)))" out/stderr ||
    fail "two runs: $(cat out/stderr)"
run_sluice 0 report out/twice.jsonl --run 1 -o out/first.html
grep -q "lines 1&ndash;$lines of out/twice.jsonl (run 1 of the 2 it holds)" out/first.html ||
    fail "--run 1: $(grep -o 'id="run">.*</p>' out/first.html | head -c 300)"
run_sluice 2 report out/twice.jsonl --run 3 -o out/x.html
expect_eq "--run past the end" "sluice: report: out/twice.jsonl: holds 2 runs, not 3" "$(cat out/stderr)"

# E. Errors: file and line named, exit 2, nothing written.
{ head -2 out/r.jsonl; echo '{"pipeline":"x","stages":[{"type":"map"}]}'; } > out/bad.jsonl
run_sluice 2 report out/bad.jsonl -o out/bad.html
expect_eq "bad line named" "sluice: report: out/bad.jsonl:3: not a metrics snapshot: stage 1: no name" "$(cat out/stderr)"
[ ! -e out/bad.html ] || fail "a report was written for a bad history"
printf 'not json\n' > out/junk.jsonl
run_sluice 2 report out/junk.jsonl -o out/junk.html
grep -q "^sluice: report: out/junk.jsonl:1: not a metrics snapshot: not JSON" out/stderr || fail "junk: $(cat out/stderr)"
: > out/empty.jsonl
run_sluice 2 report out/empty.jsonl -o out/empty.html
expect_eq "empty history" "sluice: report: out/empty.jsonl: no snapshots (an empty history)" "$(cat out/stderr)"
run_sluice 2 report out/missing.jsonl -o out/m.html
grep -q "cannot open out/missing.jsonl" out/stderr || fail "missing: $(cat out/stderr)"
run_sluice 2 report out/r.jsonl -o out/no-such-dir/r.html
grep -q "cannot write out/no-such-dir/r.html" out/stderr || fail "unwritable: $(cat out/stderr)"
run_sluice 2 report out/r.jsonl
grep -q "where to?" out/stderr || fail "no -o: $(cat out/stderr)"
run_sluice 2 report -o out/r.html
run_sluice 2 report out/r.jsonl -o out/r2.html --run 0
run_sluice 2 report out/r.jsonl -o out/r2.html --frob
run_sluice 0 report --help
grep -q "^Usage: sluice report HISTORY -o REPORT.html" out/stdout || fail "--help: $(head -1 out/stdout)"
run_sluice 0 help report
grep -q "^Usage: sluice report" out/stdout || fail "help report: $(head -1 out/stdout)"

finish
