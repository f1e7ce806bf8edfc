# The http stage in real runs of the sluice binary: the offline file://
# example, the local-server example against python's http.server, the store
# posting batches to a small loopback receiver, and SIGINT ending a fetch
# that hangs on a slow server. Loopback only.
. "$(dirname "$0")/lib.bash"

pages=(pipelines/data/pages/page-1.json pipelines/data/pages/page-2.json pipelines/data/pages/page-3.json)
events=$(jq -c '.[]' "${pages[@]}" | wc -l)
errors=$(jq -c '.[] | select(.status >= 500)' "${pages[@]}" | wc -l)

# --- http-files: file:// URLs, relative to the working directory
run_sluice 0 run pipelines/http-files.yaml --quiet --metrics-file out/files-metrics.json
expect_eq "http-files errors kept" "$errors" "$(wc -l < out/http-files-errors.jsonl)"
expect_eq "http-files in page order" "$(jq -c '.[] | select(.status >= 500) | .id' "${pages[@]}" | xargs)" \
    "$(jq -c '.id' out/http-files-errors.jsonl | xargs)"
expect_eq "fetch records_out" "3" "$(metric out/files-metrics.json fetch records_out)"
expect_eq "fetch workers (transfers in flight)" "2" "$(metric out/files-metrics.json fetch workers)"
expect_eq "fetch bytes_in" "$(cat "${pages[@]}" | wc -c)" "$(metric out/files-metrics.json fetch bytes_in)"

# --- a loopback server: GET serves pipelines/data, GET /hang never answers,
# POST appends the body to out/posted.jsonl. It writes its port when ready.
cat >out/server.py <<'PY'
import http.server, os, sys, threading, time
lock = threading.Lock()
class H(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory="pipelines/data", **k)
    def log_message(self, fmt, *args):
        with lock, open("out/server.log", "a") as f:
            f.write(self.path + "\n")
    def do_GET(self):
        if self.path.startswith("/hang"):
            self.log_message("hang")
            time.sleep(60)
            return
        super().do_GET()
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        if self.path.startswith("/fail"):
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with lock, open("out/posted.jsonl", "ab") as f:
            f.write(body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
with open("out/port.tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename("out/port.tmp", "out/port")
srv.serve_forever()
PY
python3 out/server.py &
server=$!
e2e_on_exit 'kill "$server" 2>/dev/null'
wait_for "the test server" 30 test -s out/port
port=$(cat out/port)

# --- http-local: the same pages over HTTP, into SQLite
PORT=$port run_sluice 0 run pipelines/http-local.yaml --quiet
expect_eq "http-local rows" "$events" "$(sql out/http-local.db 'select count(*) from events')"

# --- store: 250 generated records posted in batches of 100
cat >out/store.yaml <<YAML
name: http-store
stages:
  - name: gen
    type: generate
    count: 250
    fields: {id: seq(), user: '"u" + to_string(seq() % 7)'}
  - name: post
    type: http
    url: http://127.0.0.1:$port/ingest
    batch_size: 100
YAML
run_sluice 0 run out/store.yaml --quiet --metrics-file out/store-metrics.json
expect_eq "posted records" "250" "$(wc -l < out/posted.jsonl)"
expect_eq "each record once" "250" "$(jq -r '.id' out/posted.jsonl | sort -u | wc -l)"
expect_eq "store records_out" "250" "$(metric out/store-metrics.json post records_out)"

# --- a server that always fails, on_error: dead_letter: 23 records in
# batches of 5 all reach the dead-letter file, with the reason, once each
cat >out/store-dl.yaml <<YAML
name: http-store-dl
dead_letter: {path: out/store-rejects.jsonl}
stages:
  - name: gen
    type: generate
    count: 23
    fields: {id: seq()}
  - name: post
    type: http
    url: http://127.0.0.1:$port/fail
    batch_size: 5
    retry: {attempts: 2, backoff: 1ms}
    on_error: dead_letter
YAML
run_sluice 0 run out/store-dl.yaml --quiet --metrics-file out/store-dl-metrics.json
expect_eq "dead-lettered records" "23" "$(wc -l < out/store-rejects.jsonl)"
expect_eq "each dead-lettered once" "$(seq 1 23 | xargs)" \
    "$(jq -r '.record.id' out/store-rejects.jsonl | sort -n | xargs)"
expect_eq "every line names the stage and the reason" "23" \
    "$(jq -r 'select(.stage == "post" and (.error | test("HTTP 500.*attempt 2 of 2.*batch of")))' \
        out/store-rejects.jsonl | jq -s length)"
expect_eq "store errors" "23" "$(metric out/store-dl-metrics.json post errors)"
expect_eq "store records_out" "0" "$(metric out/store-dl-metrics.json post records_out)"

# --- SIGINT while a request hangs: the fetch is abandoned at once, exit 0
cat >out/hang.yaml <<YAML
name: http-hang
stages:
  - name: fetch
    type: http
    url: http://127.0.0.1:$port/hang
    timeout: 60s
  - name: out
    type: null
YAML
"$SLUICE_BIN" run out/hang.yaml --quiet >out/hang.out 2>out/hang.err &
pid=$!
wait_for "the hanging request" 30 grep -q '^/hang' out/server.log
start=$SECONDS
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
expect_eq "SIGINT during a hanging fetch exits" "0" "$rc"
# Not the request's 60 s timeout (sanitizer builds need a few seconds
# to tear down on a busy machine).
if [ $((SECONDS - start)) -gt 20 ]; then
    fail "sluice took $((SECONDS - start))s to stop"
fi

finish
