# Shared helpers for the end-to-end scripts (sourced, not run).
# Each script runs the real sluice binary ($SLUICE_BIN) in a fresh temporary
# directory where pipelines/ points at the source tree's examples, so the
# examples' relative paths (pipelines/data/..., out/...) work unchanged.
set -euo pipefail

: "${SLUICE_SOURCE_DIR:?set by ctest}"
: "${SLUICE_BIN:?set by ctest}"

E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-e2e.XXXXXX")
cd "$E2E_DIR"
ln -s "$SLUICE_SOURCE_DIR/pipelines" pipelines
mkdir -p out

# Every process below pid $1, children first.
e2e_descendants() {
    local c
    for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        e2e_descendants "$c"
        echo "$c"
    done
}

# A script that hangs says where, instead of running into ctest's timeout
# with nothing to show: after E2E_HANG_SECONDS (default 300) this watchdog
# prints the processes below the script, every thread of each sluice among
# them (gdb, when installed) and the end of each file in out/, then kills
# them. Disowned, so a script's `jobs -p` and `wait` never see it.
e2e_watchdog() {
    set +e
    local script=$1 limit=${E2E_HANG_SECONDS:-300} waited=0 pids p
    # One-second naps that hold none of the script's output (ctest waits
    # for that to close); the watchdog leaves as soon as the script has.
    while [ "$waited" -lt "$limit" ]; do
        sleep 1 </dev/null >/dev/null 2>&1
        kill -0 "$script" 2>/dev/null || exit 0
        waited=$((waited + 1))
    done
    local me=$BASHPID
    pids=$(e2e_descendants "$script" | grep -vx "$me" || true)
    {
        echo "HANG: $(basename "$0") still running after ${E2E_HANG_SECONDS:-300}s; processes:"
        for p in $pids; do
            ps -o pid=,etimes=,args= -p "$p" 2>/dev/null | sed 's/^/  /'
        done
        for p in $pids; do
            if [ "$(ps -o comm= -p "$p" 2>/dev/null)" = sluice ] && command -v gdb >/dev/null; then
                echo "threads of sluice $p:"
                timeout 60 gdb -p "$p" -batch -ex 'thread apply all bt' 2>/dev/null |
                    grep -E '^(Thread|#)' | sed 's/^/  /'
            fi
        done
        for f in "$E2E_DIR"/out/*; do
            [ -f "$f" ] && grep -Iq . "$f" || continue   # text files only
            echo "tail of out/$(basename "$f"):"
            tail -n 15 "$f" | sed 's/^/  /'
        done
    } >&2
    for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
    kill -9 "$script" 2>/dev/null || true
}
e2e_watchdog $$ &
E2E_WATCHDOG=$!
disown "$E2E_WATCHDOG"
# On the way out, however the script ends (a failed check under set -e
# included), nothing it started lives on: a server left running would
# keep ctest's output pipe open and stall the whole run until the timeout.
# Scripts add their own steps with e2e_on_exit instead of a trap of their
# own (which would replace this one).
E2E_ON_EXIT=()
e2e_on_exit() {
    E2E_ON_EXIT+=("$1")
}
e2e_cleanup() {
    local step p
    for step in "${E2E_ON_EXIT[@]}"; do
        eval "$step" || true
    done
    kill "$E2E_WATCHDOG" 2>/dev/null || true
    for p in $(e2e_descendants $$); do
        kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$E2E_DIR" 2>/dev/null || true
}
trap e2e_cleanup EXIT

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
