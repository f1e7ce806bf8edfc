/*
 * upper: an example transform plugin that upper-cases chosen string fields.
 *
 *   stages:
 *     - name: shout
 *       type: upper
 *       fields: [user, method]   # required: the fields to upper-case
 *       strict: true             # optional: a listed field that is missing
 *                                # or not a string is an error (default:
 *                                # leave such fields alone)
 *
 * Only ASCII letters change; other bytes (UTF-8 included) pass through.
 *
 * Build it with nothing but the installed SDK:
 *
 *   cc -shared -fPIC $(pkg-config --cflags sluice) upper.c -o libupper.so
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include <sluice/plugin.h>

/*
 * The per-worker state. The engine allocates state_size zeroed bytes for
 * each worker and writes each option at the offset its table row gives,
 * defaults applied, before init() runs. Option values belong to the engine:
 * read them, never free or change them.
 */
typedef struct upper_state {
    sl_strlist fields;   /* option `fields` */
    bool strict;         /* option `strict` */
} upper_state;

/*
 * The option table: it drives validation of the YAML (unknown keys, types,
 * missing required options, all reported with file:line:column), the
 * defaults, and what `sluice stages upper` prints.
 */
static const sl_option upper_options[] = {
    {SL_OPT_STRING_LIST, "fields", NULL, SL_OPT_REQUIRED,
     offsetof(upper_state, fields), 0, 0, NULL,
     "the string fields to upper-case"},
    {SL_OPT_BOOL, "strict", "false", 0, offsetof(upper_state, strict), 0, 0,
     NULL, "a listed field that is missing or not a string is an error"},
    SL_OPTIONS_END,
};

/*
 * init: once per worker, before any record. A failure here stops the run
 * before it starts; sl_stage_error() says why and returns the code.
 */
static int upper_init(void *state, sl_stage_ctx *sc)
{
    const upper_state *u = state;
    if (u->fields.n == 0)
        return sl_stage_error(sc, SL_ECONFIG, "fields: list at least one field");
    return 0;
}

/* A copy of s[0..len) with ASCII letters upper-cased, as a new value. */
static sl_value *upper_copy(const char *s, size_t len)
{
    char *buf = malloc(len > 0 ? len : 1);
    if (buf == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++)
        buf[i] = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 'a' + 'A') : s[i];
    sl_value *v = sl_value_string(buf, len);   /* copies buf */
    free(buf);
    return v;
}

static bool has_lower(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] >= 'a' && s[i] <= 'z')
            return true;
    return false;
}

/*
 * process: once per input record, on the worker's thread. The stage owns
 * rec while it runs and gives it away with sl_emit() (or sl_record_drop()
 * to filter it out). To fail a record, describe the problem with
 * sl_stage_error() and return its code without giving rec away: the engine
 * then applies the stage's on_error policy — fail the run, skip the record,
 * write it to the dead-letter file, or retry.
 */
static int upper_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    const upper_state *u = state;

    /* Check before changing anything, so that a failed record reaches the
     * dead-letter file exactly as it arrived. */
    if (u->strict) {
        for (size_t i = 0; i < u->fields.n; i++) {
            const sl_value *v = sl_record_get(rec, u->fields.items[i]);
            if (sl_value_type(v) != SL_TYPE_STRING)
                return sl_stage_error(sc, SL_ETYPE, "field '%s' is %s, not a string",
                                      u->fields.items[i],
                                      v == NULL ? "missing"
                                                : sl_type_name(sl_value_type(v)));
        }
    }

    for (size_t i = 0; i < u->fields.n; i++) {
        size_t len = 0;
        /* Borrowed: valid until the field changes. */
        const char *s = sl_value_get_string(sl_record_get(rec, u->fields.items[i]), &len);
        if (s == NULL || !has_lower(s, len))
            continue;   /* not a string, or nothing to change */
        sl_value *v = upper_copy(s, len);
        if (v == NULL)
            return sl_stage_error(sc, SL_ENOMEM, "out of memory");
        /* sl_record_set takes v, and copies the fields first if another
         * branch of a tee shares them (copy on write). */
        int rc = sl_record_set(rec, u->fields.items[i], v);
        if (rc < 0)
            return sl_stage_error(sc, rc, "cannot set field '%s'", u->fields.items[i]);
    }
    /* Hand the record downstream. This blocks while the next stage is
     * behind (backpressure) and returns SL_ECANCELED if the run stops
     * meanwhile; either way rec is no longer ours. */
    return sl_emit(sc, rec);
}

/*
 * The descriptor: what the engine knows about the stage type. No flush or
 * destroy: this stage keeps nothing between records.
 */
static const sl_stage_desc upper_stage = {
    SL_STAGE_DESC_HEADER,
    .name = "upper",
    .kind = SL_STAGE_TRANSFORM,
    .summary = "upper-case chosen string fields (example plugin)",
    .options = upper_options,
    .state_size = sizeof(upper_state),
    .init = upper_init,
    .process = upper_process,
};

/* Export sluice_plugin(), the one symbol the engine looks for. */
SL_PLUGIN_EXPORT("upper", &upper_stage);
