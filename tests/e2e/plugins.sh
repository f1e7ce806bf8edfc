# Stage plugins from the outside, as a user meets them:
#
#  1. `cmake --install` of this build into a temporary prefix (the SDK);
#  2. docs/plugins.md run step by step in an empty directory: every marked
#     block is written, compiled or run, and every output block compared;
#  3. the example plugins copied out of the tree and built both with the
#     one-line `cc` command and with their own CMakeLists (find_package),
#     then a pipeline using them, checked by its outputs and metrics;
#  4. every way a plugin can be refused, built on the fly from
#     tests/fixtures/plugins/ or made up here: exit 2, a message naming the
#     file, and never a crash.
#
# Runs in every build. Plugins are compiled without sanitizers (loading
# uninstrumented code into an ASan/TSan sluice works), and — in sanitizer
# builds — the CMake-built examples once more with the build's own compiler
# and -fsanitize flags, so their code is checked too.
. "$(dirname "$0")/lib.bash"

build_dir=$(dirname "$SLUICE_BIN")
fixtures="$SLUICE_SOURCE_DIR/tests/fixtures/plugins"
examples="$SLUICE_SOURCE_DIR/examples/plugins"
CC=${CC:-cc}
command -v "$CC" >/dev/null || { echo "no C compiler ($CC)" >&2; exit 1; }

# ------------------------------------------------------------------ 1. SDK
export HOME="$E2E_DIR/home"
mkdir -p "$HOME"
prefix="$HOME/.local"
if ! cmake --install "$build_dir" --prefix "$prefix" >out/install.log 2>&1; then
    cat out/install.log >&2
    fail "cmake --install failed"
    finish
fi
for f in bin/sluice include/sluice/plugin.h include/sluice/stage.h \
         share/pkgconfig/sluice.pc share/cmake/sluice/sluiceConfig.cmake \
         share/cmake/sluice/sluiceConfigVersion.cmake; do
    [ -e "$prefix/$f" ] || fail "not installed: $f"
done
[ -z "$(find "$prefix" -name 'libsluice*')" ] ||
    fail "a libsluice was installed: plugins must not link the engine"
# The installed executable from here on.
SLUICE_BIN="$prefix/bin/sluice"

# ---------------------------------------------------- 2. docs/plugins.md
# Markers (HTML comments, invisible on the rendered page) say what each
# fenced block is: `file: NAME` (write it), `compile: NAME` (write it and
# build it as a plugin, strictly), `run` (run it; later steps see its cd
# and exports), `output` (the last run's output, exactly) or `output-lines`
# (each line appears in it), `install` (done above, with HOME set to a
# temporary directory so that ~/.local is the temporary prefix).
doc="$SLUICE_SOURCE_DIR/docs/plugins.md"
walk="$E2E_DIR/out/walkthrough.sh"
{
    echo 'set -euo pipefail'
    echo 'exec 3>&2'
    echo 'STEP=0; OUT=$(mktemp)'
    echo 'trap '\''rc=$?; if [ $rc -ne 0 ]; then echo "docs/plugins.md step $STEP failed (exit $rc); its output:" >&3; cat "$OUT" >&3; fi; rm -f "$OUT" "$OUT.want"'\'' EXIT'
    marker="" arg="" in_block=0 n_steps=0
    while IFS= read -r line; do
        if [ "$in_block" -eq 1 ]; then
            if [ "$line" = '```' ]; then
                in_block=0
                case $marker in
                    file) echo 'SLUICE_DOC_EOF' ;;
                    compile) echo 'SLUICE_DOC_EOF'
                             echo "$CC -std=c11 -pedantic -Wall -Wextra -Werror -shared -fPIC \$(pkg-config --cflags sluice) '$arg' -o '$arg.so'" ;;
                    run) echo 'exec >&5 2>&6' ;;
                    output) echo 'SLUICE_DOC_EOF'
                            echo 'diff -u "$OUT.want" "$OUT" >&3 || { echo "step $STEP: output differs from docs/plugins.md" >&3; exit 1; }' ;;
                    output-lines) echo 'SLUICE_DOC_EOF'
                                  echo 'while IFS= read -r l; do [ -z "$l" ] || grep -qxF -- "$l" "$OUT" || { echo "step $STEP: no line \"$l\" in its output" >&3; exit 1; }; done < "$OUT.want"' ;;
                esac
                marker=""
            elif [ "$marker" != install ]; then
                printf '%s\n' "$line"
            fi
            continue
        fi
        if [[ $line =~ ^'<!-- '(file|compile|run|output|output-lines|install)(: ([^ ]+))?' -->'$ ]]; then
            marker=${BASH_REMATCH[1]}
            arg=${BASH_REMATCH[3]}
            continue
        fi
        if [[ $line == '```'* ]] && [ -n "$marker" ]; then
            in_block=1
            n_steps=$((n_steps + 1))
            case $marker in
                file|compile) echo "cat > '$arg' <<'SLUICE_DOC_EOF'" ;;
                run) echo "STEP=$n_steps"
                     echo 'exec 5>&1 6>&2 >"$OUT" 2>&1' ;;
                output|output-lines) echo "cat > \"\$OUT.want\" <<'SLUICE_DOC_EOF'" ;;
            esac
            continue
        fi
        [ -z "$line" ] || marker=""   # a marker belongs to the next block
    done < "$doc"
    echo 'echo "docs/plugins.md: $STEP steps ran" >&3'
} > "$walk"
mkdir -p "$E2E_DIR/walk"
if (cd "$E2E_DIR/walk" && PATH="$PATH" bash "$walk"); then
    echo "ok: docs/plugins.md runs as written"
else
    fail "docs/plugins.md does not run as written (script: $walk)"
fi
[ -f "$E2E_DIR/walk/my-plugin/build/libshout.so" ] ||
    fail "the walkthrough did not build its plugin with CMake"
[ -f "$E2E_DIR/walk/my-plugin/ticker.c.so" ] ||
    fail "the walkthrough's source example was not compiled"

# From here on, the SDK is used as the walkthrough set it up.
export PATH="$prefix/bin:$PATH"
export PKG_CONFIG_PATH="$prefix/share/pkgconfig"

# ---------------------------------------------------- 3. the examples
mkdir -p ex
cp -r "$examples/upper" "$examples/counter" ex/
(
    cd ex/upper
    $CC -shared -fPIC $(pkg-config --cflags sluice) upper.c -o libupper.so
    cd ../counter
    $CC -shared -fPIC $(pkg-config --cflags sluice) counter.c -o libcounter.so
) || fail "the examples do not build with the one-line cc command"

# With their own CMakeLists, out of tree. In a sanitizer build, also with
# the build's compiler and sanitizers.
cmake_flags=()
if [ -n "${SLUICE_SANITIZE:-}" ]; then
    build_cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
    cmake_flags=(-DCMAKE_C_COMPILER="${build_cc:-$CC}"
                 -DCMAKE_C_FLAGS="-fsanitize=$SLUICE_SANITIZE -fno-omit-frame-pointer")
fi
for p in upper counter; do
    if cmake -S "ex/$p" -B "ex/$p/build" -DCMAKE_PREFIX_PATH="$prefix" \
            "${cmake_flags[@]}" >out/cmake-$p.log 2>&1 &&
       cmake --build "ex/$p/build" >>out/cmake-$p.log 2>&1 &&
       [ -f "ex/$p/build/lib$p.so" ]; then
        echo "ok: example $p builds with find_package(sluice)"
    else
        sed 's/^/  /' out/cmake-$p.log >&2
        fail "example $p does not build with its CMakeLists"
    fi
done

# A pipeline using both: generate -> upper -> tee -> {file, counter}.
cat > out/examples.yaml <<'YAML'
name: examples
plugins: [ex/upper/build/libupper.so, ex/counter/build/libcounter.so]
dead_letter: {path: out/rejects.jsonl}
stages:
  - name: gen
    type: generate
    count: 12
    fields: {id: seq(), user: '"user-" + to_string(seq() % 3)', method: 'seq() == 5 ? null : "get"'}
  - name: shout
    type: upper
    fields: [user, method]
    strict: true
    on_error: dead_letter
  - name: store
    type: file
    inputs: [shout]
    path: out/shouted.jsonl
    mode: truncate
  - name: per_user
    type: counter
    inputs: [shout]
    key: user
    path: out/per-user.json
YAML
run_sluice 0 run out/examples.yaml --quiet --metrics-file out/metrics.json
expect_eq "counts per user (record 5 dead-lettered)" \
    '{"USER-1":4,"USER-2":3,"USER-0":4}' "$(cat out/per-user.json 2>/dev/null)"
expect_eq "stored records" "11" "$(wc -l < out/shouted.jsonl)"
expect_eq "every user upper-cased" "0" "$(grep -c '"user-' out/shouted.jsonl || true)"
expect_eq "the rejected record, unchanged" '{"id":5,"user":"user-2","method":null}' \
    "$(jq -c '.record' out/rejects.jsonl 2>/dev/null)"
expect_eq "upper type in metrics" "upper" "$(metric out/metrics.json shout type)"
expect_eq "upper errors" "1" "$(metric out/metrics.json shout errors)"
expect_eq "counter records_in" "11" "$(metric out/metrics.json per_user records_in)"
expect_eq "counter stored" "11" "$(metric out/metrics.json per_user records_out)"

# The same plugins by bare name along SLUICE_PLUGIN_PATH; `sluice stages`
# lists them with the file they came from.
sed 's|plugins: .*|plugins: [upper, counter]|' out/examples.yaml > out/by-name.yaml
SLUICE_PLUGIN_PATH="$E2E_DIR/nowhere:$E2E_DIR/ex/upper:$E2E_DIR/ex/counter" \
    run_sluice 0 run out/by-name.yaml --quiet
SLUICE_PLUGIN_PATH="$E2E_DIR/ex/upper" run_sluice 0 stages --plugin upper
grep -qF "[plugin $E2E_DIR/ex/upper/libupper.so]" out/stdout ||
    fail "sluice stages does not list upper with its file: $(grep upper out/stdout)"

# With on_error: fail (the default), the plugin's error cancels the run.
sed -e 's/    on_error: dead_letter//' -e 's/count: 12/count: 0/' \
    out/examples.yaml > out/fail.yaml
run_sluice 1 run out/fail.yaml --quiet
grep -qF "stage shout: field 'method' is null, not a string" out/stderr ||
    fail "the plugin's failure does not name the stage: $(cat out/stderr)"

# ---------------------------------------------------- 4. refused plugins
# refuse WHAT EXPECTED_TEXT PLUGIN_FILE [--plugin FIRST]: loading PLUGIN_FILE
# with --plugin, and from a pipeline file's plugins:, exits 2 with a message
# naming the file and holding EXPECTED_TEXT.
refuse() {
    local what=$1 want=$2 file=$3; shift 3
    local before=$failures
    run_sluice 2 stages "$@" --plugin "$file"
    grep -F -- "plugin $file: " out/stderr | grep -qF -- "$want" ||
        fail "$what: expected 'plugin $file: ...$want' in: $(cat out/stderr)"
    printf 'name: refuse\nplugins:\n  - %s\nstages:\n  - {name: g, type: generate, count: 1}\n' \
        "$file" > out/refuse.yaml
    run_sluice 2 validate out/refuse.yaml "$@"
    grep -F -- "out/refuse.yaml:3:5: plugin $file: " out/stderr | grep -qF -- "$want" ||
        fail "$what: expected 'out/refuse.yaml:3:5: plugin $file: ...$want' in: $(cat out/stderr)"
    [ "$failures" -ne "$before" ] || echo "ok: refused $what"
}

mkdir -p bad
for src in "$fixtures"/*.c; do
    name=$(basename "$src" .c)
    want=$(sed -n '1s|^/\* expect: \(.*\) \*/$|\1|p' "$src")
    [ -n "$want" ] || { fail "$src: no expect: line"; continue; }
    if ! $CC -shared -fPIC $(pkg-config --cflags sluice) "$src" \
            -o "bad/lib$name.so" 2>out/cc.err; then
        fail "$src does not build: $(cat out/cc.err)"
        continue
    fi
    case $name in
        clash_upper) refuse "$name" "$want" "./bad/lib$name.so" \
                         --plugin ./ex/upper/libupper.so ;;
        *) refuse "$name" "$want" "./bad/lib$name.so" ;;
    esac
done

echo 'this is not a shared object' > bad/libtext.so
refuse "a text file" "cannot load: not a shared object (no ELF header)" ./bad/libtext.so
: > bad/libempty.so
refuse "an empty file" "cannot load: not a shared object (no ELF header)" ./bad/libempty.so
$CC -c -fPIC $(pkg-config --cflags sluice) "$examples/upper/upper.c" -o bad/upper.o
refuse "an object file" "cannot load: an ELF object file, not a shared object" ./bad/upper.o
refuse "a directory" "cannot load: is a directory, not a shared object" ./bad
refuse "a missing file" "cannot load: no such file" ./bad/libmissing.so
SLUICE_PLUGIN_PATH="$E2E_DIR/bad" run_sluice 2 stages --plugin upper
grep -qF "plugin upper: cannot load: not found in SLUICE_PLUGIN_PATH=$E2E_DIR/bad (as NAME, libNAME.so and NAME.so)" out/stderr ||
    fail "bare name not found: $(cat out/stderr)"
run_sluice 2 stages --plugin nosuch
grep -qF "plugin nosuch: cannot load: no such file in the current directory" out/stderr ||
    fail "bare name without a search path: $(cat out/stderr)"

# A refused plugin leaves nothing behind: the good one loaded with it works.
run_sluice 2 stages --plugin ./ex/upper/libupper.so --plugin ./bad/libclash_builtin.so
run_sluice 0 stages upper --plugin ./ex/upper/libupper.so

finish
