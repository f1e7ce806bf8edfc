# The plugin SDK headers: each public header compiles on its own as strict
# C11 with every warning an error, with each C compiler on the machine; a
# minimal plugin built with -fvisibility=hidden exports just sluice_plugin;
# and the sluice executable exports exactly the functions the headers
# declare — every one of them, and no engine-internal sl__ symbol.
. "$(dirname "$0")/lib.bash"

inc="$SLUICE_SOURCE_DIR/include"
strict=(-std=c11 -pedantic -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
        -Wmissing-prototypes -Wredundant-decls)

compilers=()
for c in "${SLUICE_CC:-${CC:-cc}}" gcc clang; do
    command -v "$c" >/dev/null 2>&1 || continue
    case " ${compilers[*]-} " in *" $c "*) continue ;; esac
    compilers+=("$c")
done
[ "${#compilers[@]}" -gt 0 ] || { echo "no C compiler found" >&2; exit 1; }

for cc in "${compilers[@]}"; do
    for h in "$inc"/sluice/*.h; do
        name=$(basename "$h")
        printf '#include <sluice/%s>\n' "$name" > out/one.c
        if "$cc" "${strict[@]}" -I"$inc" -c out/one.c -o out/one.o 2>out/cc.err; then
            echo "ok: $cc: $name compiles alone"
        else
            fail "$cc: $name does not compile alone: $(head -5 out/cc.err)"
        fi
    done

    # The smallest plugin, built the way docs/plugins.md says, plus strictness.
    cat > out/tiny.c <<'C'
#include <sluice/plugin.h>

static int tiny_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    (void)state;
    return sl_emit(sc, rec);
}

static const sl_stage_desc tiny_stage = {
    SL_STAGE_DESC_HEADER,
    .name = "tiny",
    .kind = SL_STAGE_TRANSFORM,
    .summary = "pass records on",
    .process = tiny_process,
};

SL_PLUGIN_EXPORT("tiny", &tiny_stage);
C
    if "$cc" "${strict[@]}" -fvisibility=hidden -shared -fPIC -I"$inc" \
            out/tiny.c -o out/libtiny.so 2>out/cc.err; then
        expect_eq "$cc: a hidden-visibility plugin exports only sluice_plugin" \
            "sluice_plugin" \
            "$(nm -D --defined-only out/libtiny.so | awk '{print $3}' | grep -v '^_' | tr '\n' ' ' | sed 's/ $//')"
    else
        fail "$cc: the tiny plugin does not build: $(head -5 out/cc.err)"
    fi

    # Forgetting the semicolon after SL_PLUGIN_EXPORT is a compile error,
    # not a silent difference.
    sed 's/^SL_PLUGIN_EXPORT(\(.*\));$/SL_PLUGIN_EXPORT(\1)/' out/tiny.c > out/nosemi.c
    if "$cc" -std=c11 -shared -fPIC -I"$inc" out/nosemi.c -o out/nosemi.so 2>/dev/null; then
        fail "$cc: SL_PLUGIN_EXPORT without a semicolon compiled"
    fi
done

# What the executable exports: the functions the public headers declare.
declared=$(cat "$inc"/sluice/*.h | grep -oE '\bsl_[a-z][a-z0-9_]*[[:space:]]*\(' |
           sed 's/[[:space:](]//g' | sort -u)
exported=$(nm -D --defined-only "$SLUICE_BIN" | awk '{print $3}' | sed 's/@.*//' |
           grep '^sl' | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$exported") | tr '\n' ' ')
extra=$(comm -13 <(echo "$declared") <(echo "$exported") | tr '\n' ' ')
# A name that only appears in a comment ("sl_foo()") and is not a function
# would show as missing: every such name must be a real function.
expect_eq "declared functions the executable does not export" "" "$missing"
expect_eq "sl symbols exported beyond the public headers" "" "$extra"
expect_eq "public functions exported" "$(echo "$declared" | wc -l)" \
    "$(echo "$exported" | wc -l)"

finish
