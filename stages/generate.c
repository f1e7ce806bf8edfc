/*
 * generate: a source of synthetic records, for tests and benchmarks.
 *
 * Record n (n = 1, 2, ...) has the fields given by `fields`, a map of
 * expressions evaluated in order with seq() = n; each expression sees the
 * fields above it ({id: seq(), even: id % 2 == 0}). Without `fields` the
 * record is {"seq": n}. Its position is (source = stage name, seq = n).
 *
 * `count` records are made (0: until the pipeline stops), paced at `rate`
 * records per second when given: record n is due at start + (n-1)/rate on
 * the stage clock, so pacing does not drift, and the waits are on the
 * source context so a stop request ends them at once. With several
 * workers, worker i makes the records n = i+1, i+1+W, ... and the rate is
 * shared between them.
 *
 * With settings.state the sequence goes on after the saved position: a
 * run that stopped after record n makes n+1 (or this worker's next) first,
 * and `count` stays the last number made, not a count per run.
 */
#include <stddef.h>
#include <string.h>

#include "sluice/plugin.h"

typedef struct sl__generate {
    int64_t count;          /* options; immutable */
    double rate;            /* records per second; 0 = as fast as possible */
    sl_exprmap fields;
    size_t key_bytes;       /* key room of each record's object (init) */
} sl__generate;

static const sl_option generate_options[] = {
    {SL_OPT_INT, "count", "0", 0, offsetof(sl__generate, count), 0,
     1e15, NULL, "records to make; 0 makes records until the pipeline stops"},
    {SL_OPT_RATE, "rate", NULL, 0, offsetof(sl__generate, rate), 0, 1e9,
     NULL, "records per second (e.g. 100/s); unpaced when absent"},
    {SL_OPT_EXPR_MAP, "fields", NULL, 0, offsetof(sl__generate, fields), 0, 0,
     NULL, "field -> expression, in order; seq() is the record number (default {seq: seq()})"},
    SL_OPTIONS_END,
};

/* The record numbered n, or NULL with the stage error set. */
static sl_record *make_record(const sl__generate *g, sl_stage_ctx *sc,
                              int64_t n, int *rc)
{
    sl_record *rec = sl_record_new();
    if (rec == NULL) {
        *rc = sl_stage_error(sc, SL_ENOMEM, "out of memory");
        return NULL;
    }
    *rc = sl_record_set_position(rec, sl_stage_name(sc), NULL, -1, n);
    if (*rc < 0) {
        sl_record_free(rec);
        *rc = sl_stage_error(sc, *rc, "out of memory");
        return NULL;
    }
    if (g->fields.n == 0) {
        sl_value *v = sl_value_int(n);
        *rc = v != NULL ? sl_record_set(rec, "seq", v) : SL_ENOMEM;
        if (*rc < 0) {
            sl_record_free(rec);
            *rc = sl_stage_error(sc, SL_ENOMEM, "out of memory");
            return NULL;
        }
        return rec;
    }
    /* An object with room for every field and a few a map adds, so that
     * setting them one by one (each may read the ones before) allocates
     * nothing more. */
    sl_value *obj = sl_object_build(NULL, 0, g->fields.n + 4, g->key_bytes);
    if (obj == NULL || sl_record_set_fields(rec, obj) < 0) {
        sl_record_free(rec);
        *rc = sl_stage_error(sc, SL_ENOMEM, "out of memory");
        return NULL;
    }
    sl_expr_env env = {.seq = n, .now_ns = 0};
    for (size_t i = 0; i < g->fields.n; i++) {
        sl_value *v = NULL;
        sl_expr_error err;
        *rc = sl_expr_eval(g->fields.exprs[i], rec, &env, &v, &err);
        if (*rc < 0) {
            sl_record_free(rec);
            if (*rc == SL_ENOMEM)
                *rc = sl_stage_error(sc, *rc, "fields %s: out of memory",
                                     g->fields.keys[i]);
            else
                *rc = sl_stage_error(sc, *rc, "fields %s: %s, at column %d "
                                     "(record %lld)", g->fields.keys[i],
                                     err.text, err.column, (long long)n);
            return NULL;
        }
        *rc = sl_record_set(rec, g->fields.keys[i], v);   /* takes v */
        if (*rc < 0) {
            sl_record_free(rec);
            *rc = sl_stage_error(sc, *rc, "out of memory");
            return NULL;
        }
    }
    return rec;
}

static int generate_init(void *state, sl_stage_ctx *sc)
{
    (void)sc;
    sl__generate *g = state;
    /* The field names, and room for the names of a few a map adds. */
    g->key_bytes = 48;
    for (size_t i = 0; i < g->fields.n; i++)
        g->key_bytes += strlen(g->fields.keys[i]) + 1;
    return 0;
}

static int generate_run(void *state, sl_stage_ctx *sc)
{
    const sl__generate *g = state;
    const sl_clock *clock = sl_stage_clock(sc);
    sl_ctx *wait_ctx = sl_stage_source_context(sc);
    int64_t workers = sl_stage_worker_count(sc) > 0 ? sl_stage_worker_count(sc) : 1;
    int64_t first = (int64_t)sl_stage_worker_index(sc) + 1;
    /* This worker's share of the rate: one record every `interval` ns. */
    double interval = g->rate > 0 ? 1e9 * (double)workers / g->rate : 0;
    int64_t start = sl_clock_now(clock);
    int64_t k0 = 0;      /* resume: the first k not made yet */
    sl_resume rp;
    if (sl_stage_resume_point(sc, &rp) == 0 && rp.seq >= first)
        k0 = (rp.seq - first) / workers + 1;

    for (int64_t k = k0;; k++) {
        if (k > (INT64_MAX - first) / workers)
            break;                              /* numbers run out */
        int64_t n = first + k * workers;
        if (g->count > 0 && n > g->count)
            break;
        if (sl_stage_stopping(sc))
            break;
        if (interval > 0) {
            int64_t due = start + (int64_t)((double)(k - k0) * interval);
            int64_t now = sl_clock_now(clock);
            if (due > now && sl_clock_sleep(clock, wait_ctx, due - now) < 0)
                break;                          /* asked to stop */
        }
        int rc;
        sl_record *rec = make_record(g, sc, n, &rc);
        if (rec == NULL)
            return rc;
        rc = sl_emit(sc, rec);
        if (rc < 0)
            return sl_ctx_is_done(sl_stage_context(sc)) ? 0 : rc;
    }
    return 0;
}

const sl_stage_desc sl_stage_generate = {
    SL_STAGE_DESC_HEADER,
    .name = "generate",
    .kind = SL_STAGE_SOURCE,
    .summary = "make synthetic records from expressions, at a rate or up to a count",
    .options = generate_options,
    .state_size = sizeof(sl__generate),
    .init = generate_init,
    .run = generate_run,
};
