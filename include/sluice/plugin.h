/*
 * The one header a stage plugin needs.
 *
 * A plugin is a shared object that declares one or more stage types
 * (stage.h) and exports one function returning a table of them:
 *
 *     #include <sluice/plugin.h>
 *
 *     static int upper_process(void *state, sl_stage_ctx *sc, sl_record *rec)
 *     { ... return sl_emit(sc, rec); }
 *
 *     static const sl_stage_desc upper_stage = {
 *         SL_STAGE_DESC_HEADER,
 *         .name = "upper", .kind = SL_STAGE_TRANSFORM,
 *         .summary = "upper-case string fields",
 *         .process = upper_process,
 *     };
 *
 *     SL_PLUGIN_EXPORT("upper", &upper_stage);
 *
 * Build it with nothing but this header:
 *
 *     cc -shared -fPIC $(pkg-config --cflags sluice) upper.c -o libupper.so
 *
 * and load it with `plugins: [./libupper.so]` in the pipeline file or
 * `sluice run --plugin ./libupper.so` (docs/plugins.md walks through it).
 *
 * What this header brings in, and what each part is for:
 *   stage.h    the stage descriptor, its option table, and the calls a stage
 *              makes into the engine (sl_emit, sl_stage_error, ...)
 *   record.h   records: payload, fields, position metadata
 *   value.h    the JSON-like values records hold; JSON parse and dump
 *   expr.h     compiled expressions (what SL_OPT_EXPR options hold)
 *   context.h  cancellation (sl_stage_context, sl_ctx_sleep, ...)
 *   channel.h  bounded channels, for stages that run helper threads
 *   clock.h    the injectable clock (sl_stage_clock)
 *   error.h    the SL_E* codes every int-returning call uses
 * and, included on their own when wanted: patterns.h (tee, merge, pools,
 * ...), ratelimit.h, breaker.h and retry.h.
 *
 * Linking: a plugin links against nothing of ours. The sl_* functions it
 * calls are resolved at load time against the sluice executable, which
 * exports exactly the functions these headers declare (and nothing else).
 * A plugin must not link a copy of the engine: it would get a second,
 * unconnected set of everything.
 *
 * Versioning (docs/decisions/0005-plugin-abi.md):
 *   - SL_ABI_MAJOR changes when something existing changes incompatibly;
 *     the engine refuses any plugin or stage descriptor built for another
 *     major.
 *   - SL_ABI_MINOR grows when fields are appended to sl_plugin or
 *     sl_stage_desc, or functions are added to these headers. Structs only
 *     ever grow at the end; each field's comment names the version it came
 *     in.
 *   - Each struct carries its own struct_size (sizeof at build time). The
 *     engine refuses one smaller than the 1.0 layout, then copies the first
 *     min(struct_size, its own sizeof) bytes into zeroed memory: fields a
 *     newer plugin adds are ignored, fields an older plugin lacks read as
 *     0 / NULL — "absent" — and every optional field is defined so that
 *     absent means the old behaviour.
 *   - A plugin built against minor M may call only functions that exist in
 *     M; loading it into an older sluice that lacks one fails with a message
 *     naming the missing symbol (nothing is called).
 *
 * Ownership: the sl_plugin table, the stage descriptors, their option tables
 * and every string they point to are borrowed: the engine copies the two
 * structs but keeps pointing at the rest, so all of it must live as long as
 * the plugin is loaded — make it static const, as SL_PLUGIN_EXPORT does.
 * A plugin stays loaded until the process has finished with it (after the
 * run, never while a stage of it may run).
 *
 * Thread: sluice_plugin() is called once per load, on the loading thread,
 * before any stage of the plugin runs; it must return the same table every
 * time and do nothing else. Stage callbacks run as stage.h says: each worker
 * on its own thread, several workers (and several stages of one type) at
 * once, so anything shared between them — a static variable — needs a lock
 * or an atomic.
 */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "channel.h"
#include "clock.h"
#include "context.h"
#include "error.h"
#include "expr.h"
#include "record.h"
#include "stage.h"
#include "value.h"

/* Exported by the sluice executable to plugins (see "Linking" above). */
#pragma GCC visibility push(default)
#ifdef __cplusplus
extern "C" {
#endif

/*
 * The plugin ABI this header describes. History:
 *   1.0  sl_plugin, sl_stage_desc and sl_option as below; the functions of
 *        stage.h, record.h, value.h, expr.h, context.h, channel.h, clock.h,
 *        error.h, patterns.h, ratelimit.h, breaker.h and retry.h.
 */
#define SL_ABI_MAJOR 1
#define SL_ABI_MINOR 0

/*
 * What sluice_plugin() returns. Checked on load: abi_major must equal the
 * engine's SL_ABI_MAJOR and struct_size must be at least the 1.0 size;
 * then the stages are checked one by one (stage.h) and registered all or
 * nothing. Fill it with SL_PLUGIN_EXPORT rather than by hand.
 */
typedef struct sl_plugin {
    /* --- ABI 1.0 --- */
    uint16_t abi_major;            /* SL_ABI_MAJOR the plugin was built against */
    uint16_t abi_minor;            /* SL_ABI_MINOR the plugin was built against */
    uint32_t struct_size;          /* sizeof(sl_plugin) when built */
    const char *name;              /* the plugin's name, for messages */
    size_t n_stages;               /* entries in stages, at least 1 */
    const sl_stage_desc *const *stages; /* the stage types it declares */
    /* --- end of ABI 1.0; new fields go below, with the minor they came in --- */
} sl_plugin;

/* The name of the function a plugin exports. */
#define SL_PLUGIN_SYMBOL "sluice_plugin"

/*
 * The type of that function: returns the plugin's table (borrowed, never
 * freed by the engine). Thread: the loading thread, before any stage runs.
 */
typedef const sl_plugin *(*sl_plugin_fn)(void);

/*
 * Fill in the ABI fields of a stage descriptor; the rest of the initializer
 * uses designated fields:
 *
 *     static const sl_stage_desc d = { SL_STAGE_DESC_HEADER, .name = "x", ... };
 */
#define SL_STAGE_DESC_HEADER \
    .abi_major = SL_ABI_MAJOR, .abi_minor = SL_ABI_MINOR, \
    .struct_size = (uint32_t)sizeof(sl_stage_desc)

/*
 * SL_PLUGIN_EXPORT(name, &desc_a, &desc_b, ...); defines sluice_plugin(),
 * exported even when the plugin is built with -fvisibility=hidden,
 * returning a static table of the given descriptors stamped with this
 * header's ABI version. Use it once per plugin, at file scope, followed by
 * a semicolon.
 */
#define SL_PLUGIN_EXPORT(plugin_name, ...)                                  \
    static const sl_stage_desc *const sl__plugin_stages[] = {__VA_ARGS__};  \
    __attribute__((visibility("default"))) const sl_plugin *sluice_plugin(void); \
    const sl_plugin *sluice_plugin(void)                                    \
    {                                                                       \
        static const sl_plugin sl__plugin = {                               \
            SL_ABI_MAJOR, SL_ABI_MINOR, (uint32_t)sizeof(sl_plugin),        \
            plugin_name,                                                    \
            sizeof(sl__plugin_stages) / sizeof(sl__plugin_stages[0]),       \
            sl__plugin_stages};                                             \
        return &sl__plugin;                                                 \
    }                                                                       \
    _Static_assert(sizeof(sl__plugin_stages) > 0,                           \
                   "SL_PLUGIN_EXPORT lists the plugin's stage descriptors")

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
