#!/usr/bin/env bash
# Compare builds of sluice on the same pipelines: each revision is built
# (Release) in a temporary worktree, then every pipeline runs with every
# build in turn, RUNS times, alternating, so that all builds see the same
# machine. Prints the median wall and CPU (user + system) seconds of each
# build on each pipeline, and its ratio to the first revision's.
#
# Usage: bench/compare.sh [-n RUNS] [-b 'SHELL COMMAND'] REV... -- PIPELINE.yaml...
#   -n RUNS   runs per build and pipeline (default 5)
#   -b CMD    run before every run (e.g. 'rm -f /tmp/out.db*' for a store
#             that must start empty)
#   REV       anything git rev-parse takes; WORKTREE means the working tree
#             as it is, uncommitted changes included
# Example (decision 0016):
#   bench/compare.sh -n 5 -b 'rm -f /tmp/w3/w3.db*' 1ef0bf1 HEAD -- /tmp/w3/w3.yaml
set -euo pipefail

RUNS=5
BEFORE=""
while getopts "n:b:h" opt; do
    case $opt in
    n) RUNS=$OPTARG ;;
    b) BEFORE=$OPTARG ;;
    h) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
revs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    revs+=("$1")
    shift
done
[ "${1:-}" = "--" ] && shift
pipelines=("$@")
if [ ${#revs[@]} -eq 0 ] || [ ${#pipelines[@]} -eq 0 ]; then
    echo "usage: bench/compare.sh [-n RUNS] [-b CMD] REV... -- PIPELINE.yaml..." >&2
    exit 2
fi
for p in "${pipelines[@]}"; do
    [ -r "$p" ] || { echo "compare.sh: cannot read $p" >&2; exit 2; }
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-compare.XXXXXX")
cleanup() {
    for d in "$WORK"/rev-*; do
        [ -d "$d/src" ] && git -C "$ROOT" worktree remove --force "$d/src" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# Build each revision.
bins=()
for i in "${!revs[@]}"; do
    rev=${revs[$i]}
    dir="$WORK/rev-$i"
    mkdir -p "$dir"
    if [ "$rev" = WORKTREE ]; then
        src=$ROOT
    else
        sha=$(git -C "$ROOT" rev-parse --verify --quiet "$rev^{commit}") ||
            { echo "compare.sh: no such revision: $rev" >&2; exit 2; }
        git -C "$ROOT" worktree add --detach --quiet "$dir/src" "$sha"
        src=$dir/src
    fi
    echo "building $rev ..." >&2
    cmake -S "$src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$dir/build" --target sluice -j2 >/dev/null
    bins+=("$dir/build/sluice")
done

results="$WORK/results.txt"
: >"$results"
echo "machine: $(nproc) CPUs; load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$RUNS"); do
    for p in "${!pipelines[@]}"; do
        for i in "${!bins[@]}"; do
            [ -n "$BEFORE" ] && bash -c "$BEFORE"
            /usr/bin/time -f "$i $p %e %U %S" -a -o "$results" \
                "${bins[$i]}" run "${pipelines[$p]}" --quiet >/dev/null
        done
    done
    echo "run $r/$RUNS (load $(cut -d' ' -f1 /proc/loadavg))" >&2
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg); medians of $RUNS runs"

median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
for p in "${!pipelines[@]}"; do
    echo
    echo "${pipelines[$p]}"
    printf '  %-24s %8s %8s %10s\n' revision "wall s" "CPU s" "wall/first"
    first=""
    for i in "${!bins[@]}"; do
        wall=$(awk -v i="$i" -v p="$p" '$1 == i && $2 == p { print $3 }' "$results" | median)
        cpu=$(awk -v i="$i" -v p="$p" '$1 == i && $2 == p { print $4 + $5 }' "$results" | median)
        [ -z "$first" ] && first=$wall
        printf '  %-24s %8.2f %8.2f %9.2fx\n' "${revs[$i]}" "$wall" "$cpu" \
            "$(awk -v a="$wall" -v b="$first" 'BEGIN { print (b > 0 ? a / b : 0) }')"
    done
done
