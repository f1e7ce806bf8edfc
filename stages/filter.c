/*
 * filter: keep the records for which `where` is true, drop the others.
 *
 * Truth is the expression language's: false, null, 0 and "" are false.
 * Dropped records count in the stage's `dropped` metric. A record whose
 * evaluation fails (a type error, an overflow) is left to the stage's
 * on_error policy with the reason, e.g.
 * "where: cannot compare int and string (...), at column 8".
 * Inside `where`, seq() is the record's sequence number at its source.
 */
#include <stddef.h>

#include "sluice/plugin.h"

typedef struct sl__filter {
    sl_expr *where;     /* compiled by the engine; immutable */
} sl__filter;

static const sl_option filter_options[] = {
    {SL_OPT_EXPR, "where", NULL, SL_OPT_REQUIRED,
     offsetof(sl__filter, where), 0, 0, NULL,
     "expression; records for which it is true pass, the others are dropped"},
    SL_OPTIONS_END,
};

static int filter_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    const sl__filter *f = state;
    sl_expr_env env = {.seq = sl_record_position(rec)->seq, .now_ns = 0};
    sl_expr_error err;
    bool keep = false;
    int rc = sl_expr_eval_bool(f->where, rec, &env, &keep, &err);
    if (rc < 0)
        return sl_stage_error(sc, rc, "where: %s, at column %d", err.text,
                              err.column);
    if (!keep) {
        sl_record_drop(sc, rec);
        return 0;
    }
    return sl_emit(sc, rec);
}

const sl_stage_desc sl_stage_filter = {
    SL_STAGE_DESC_HEADER,
    .name = "filter",
    .kind = SL_STAGE_TRANSFORM,
    .summary = "keep the records for which an expression is true",
    .options = filter_options,
    .state_size = sizeof(sl__filter),
    .process = filter_process,
};
