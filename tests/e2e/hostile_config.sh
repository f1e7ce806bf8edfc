# Hostile pipeline files through the real binary: every file of
# tests/fixtures/config/bad/ and generated ones too big to commit (20,000-deep
# nesting in flow and block style, a megabyte key, stage name and value, a
# file over the size limit, an endless device, a directory, random bytes,
# too many nodes, an alias bomb, unknown expression functions) give exit 2
# and a message naming the file (and line where there is one), in well under
# a second and with bounded memory.
. "$(dirname "$0")/lib.bash"

# Time and memory bounds: CPU time (user + system) under a second in a
# normal build, so that a loaded machine does not fail the test, and wall
# time under ten (nothing waits). Sanitizers slow the loader down several
# times and change its memory use, so there only the blow-ups count (an
# exponential alias expansion takes minutes and gigabytes, a quadratic pass
# over 100,000 nodes tens of seconds).
max_cpu=1.0
max_wall=10
max_kb=65536
if [ -n "${SLUICE_SANITIZE:-}" ]; then
    max_cpu=10.0
    max_wall=60
    max_kb=
fi

# refused FILE WANT [LINE]: `sluice validate FILE` exits 2 within max_cpu
# seconds of CPU, max_wall seconds and max_kb KiB, with a message naming FILE (FILE:LINE: when LINE
# is given) that contains WANT.
refused() {
    local f=$1 want=$2 line=${3:-}
    local before=$failures rc=0
    /usr/bin/time -f '%U %S %e %M' -o out/usage "$SLUICE_BIN" validate "$f" \
        >out/stdout 2>out/stderr || rc=$?
    [ "$rc" = 2 ] || fail "$f: exit $rc, expected 2: $(head -c 300 out/stderr)"
    local prefix="$f:"
    [ -z "$line" ] || prefix="$f:$line:"
    grep -F -- "$prefix" out/stderr | grep -qF -- "$want" ||
        fail "$f: expected '$prefix ...$want' in: $(head -c 300 out/stderr)"
    local user sys wall kb secs
    read -r user sys wall kb < <(tail -1 out/usage)
    secs=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    awk -v s="$secs" -v m="$max_cpu" 'BEGIN { exit !(s < m) }' ||
        fail "$f: took ${secs}s of CPU (limit ${max_cpu}s)"
    awk -v s="$wall" -v m="$max_wall" 'BEGIN { exit !(s < m) }' ||
        fail "$f: took ${wall}s (limit ${max_wall}s)"
    [ -z "$max_kb" ] || [ "$kb" -lt "$max_kb" ] ||
        fail "$f: peak RSS ${kb} KiB (limit ${max_kb} KiB)"
    [ "$failures" -ne "$before" ] || echo "ok: $(basename "$f"): exit 2, ${secs}s CPU, ${kb} KiB"
}

# repeat TEXT COUNT
repeat() {
    head -c "$2" /dev/zero | tr '\0' "$1"
}

# --- the committed corpus, each with its expected message ------------------
for f in "$SLUICE_SOURCE_DIR"/tests/fixtures/config/bad/*.yaml; do
    refused "$f" "$(sed -n 's/^# expect: //p' "$f" | head -1)"
done

# --- generated ----------------------------------------------------------------
{ printf 'name: '; repeat '[' 20000; repeat ']' 20000; echo; } > out/deep_flow.yaml
refused out/deep_flow.yaml "nesting deeper than 64 levels" 1

# 20,000 levels of block sequences: "- - - ... x".
{ printf 'name: deep\nstages:\n'; repeat '-' 20000 | sed 's/-/- /g'; echo x; } > out/deep_block.yaml
refused out/deep_block.yaml "nesting deeper than 64 levels" 3

{ repeat k $((1 << 20)); printf ': 1\nname: x\n'; } > out/long_key.yaml
refused out/long_key.yaml "a mapping key may be at most 1024 characters long" 1

{ printf 'name: x\nstages:\n  - name: '; repeat n $((1 << 20)); printf '\n    type: stdin\n'; } > out/long_stage_name.yaml
refused out/long_stage_name.yaml "invalid stage name 'nnnnnnnn" 3

{ printf 'name: '; repeat p $((2 << 20)); echo; } > out/long_value.yaml
refused out/long_value.yaml "value longer than 1048576 bytes" 1

repeat '#' $((17 << 20)) > out/too_big.yaml
refused out/too_big.yaml "file is larger than 16 MiB"
refused /dev/zero "file is larger than 16 MiB"
mkdir -p out/a_directory.yaml
refused out/a_directory.yaml "is a directory, not a pipeline file"

head -c 65536 /dev/urandom > out/random.yaml
refused out/random.yaml "out/random.yaml:"

awk 'BEGIN { printf "name: x\nlist: [1"; for (i = 0; i < 200000; i++) printf ",1"; print "]" }' > out/many_nodes.yaml
refused out/many_nodes.yaml "too many YAML nodes (more than 100000)"

# A billion laughs with more levels than the committed one.
{
    echo 'name: lol'
    echo 'l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]'
    for i in $(seq 1 30); do
        p=$((i - 1))
        echo "l$i: &l$i [*l$p, *l$p, *l$p, *l$p, *l$p, *l$p, *l$p, *l$p, *l$p, *l$p]"
    done
    echo 'stages: *l30'
} > out/laughs.yaml
refused out/laughs.yaml "YAML aliases ('*l0') are not supported" 3

# Numbers: far beyond 64 bits, and a negative duration.
printf 'name: n\nstages:\n  - {name: g, type: generate, count: %s}\n  - {name: o, type: null}\n' \
    "$(repeat 9 400)" > out/huge_number.yaml
refused out/huge_number.yaml "is out of range for a 64-bit integer" 3
printf 'name: n\nsettings: {shutdown_timeout: -5s}\nstages:\n  - {name: g, type: generate, count: 1}\n  - {name: o, type: null}\n' \
    > out/negative_duration.yaml
refused out/negative_duration.yaml "'shutdown_timeout'" 2

# A missing file still names it (exit 2, no line).
refused out/no-such-pipeline.yaml "out/no-such-pipeline.yaml"

finish
