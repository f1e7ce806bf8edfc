# Shared helpers for the end-to-end scripts (sourced, not run).
# Each script runs the real sluice binary ($SLUICE_BIN) in a fresh temporary
# directory where pipelines/ points at the source tree's examples, so the
# examples' relative paths (pipelines/data/..., out/...) work unchanged.
set -euo pipefail

: "${SLUICE_SOURCE_DIR:?set by ctest}"
: "${SLUICE_BIN:?set by ctest}"

E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-e2e.XXXXXX")
trap 'rm -rf "$E2E_DIR"' EXIT
cd "$E2E_DIR"
ln -s "$SLUICE_SOURCE_DIR/pipelines" pipelines
mkdir -p out

failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
    if [ "$2" != "$3" ]; then
        fail "$1: expected '$2', got '$3'"
    else
        echo "ok: $1 = ${3:0:60}"
    fi
}

# run_sluice EXPECTED_EXIT ARGS... — runs sluice, keeps stderr in out/stderr
run_sluice() {
    local want=$1; shift
    local rc=0
    "$SLUICE_BIN" "$@" >out/stdout 2>out/stderr || rc=$?
    if [ "$rc" -ne "$want" ]; then
        fail "sluice $* exited $rc, expected $want"
        sed 's/^/  stderr: /' out/stderr >&2
    fi
}

sql() {
    sqlite3 "$1" "$2"
}

finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$failures check(s) failed" >&2
        exit 1
    fi
    echo "all checks passed"
}

# wait_for DESCRIPTION SECONDS COMMAND... — poll until COMMAND succeeds.
# For waiting on another process's observable progress (a file appearing, a
# count growing), never as a stand-in for synchronisation inside sluice.
wait_for() {
    local what=$1 limit=$2; shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "timed out after ${limit}s waiting for $what"
            return 1
        fi
        sleep 0.05
    done
}

# metric FILE STAGE FIELD
metric() {
    jq -r --arg s "$2" ".stages[] | select(.name == \$s) | .$3" "$1"
}
