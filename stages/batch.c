/*
 * batch: group records into one record {"records": [...], "count": n}.
 *
 * A batch goes out when it holds `size` records; when `timeout` is set and
 * a record arrives after the open batch has waited that long (the old batch
 * goes first, the record starts the next); and whenever the engine calls
 * flush() — when the input pauses and at the end of input — so no record
 * waits on a quiet input and the last partial batch is never lost.
 *
 * Each element of "records" is the record's fields; a record with no
 * fields but a payload (not parsed yet) contributes its payload as a
 * string. The batch travels in the last record of the group, so it keeps
 * that record's position and metadata (how far the source has got), and
 * takes over the others' acknowledgements: their source positions count as
 * delivered once the batch is.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "sluice/plugin.h"

typedef struct batch_state {
    int64_t size;           /* option: records per batch */
    int64_t timeout_ns;     /* option: most a batch waits for more; 0 = none */
    sl_record **pending;    /* the open batch, owned */
    size_t n;               /* records in it */
    size_t cap;             /* allocated slots */
    int64_t opened_ns;      /* stage clock time of its first record */
} batch_state;

static const sl_option batch_options[] = {
    {SL_OPT_INT, "size", "100", 0,
     offsetof(batch_state, size), 1, 1e7, NULL,
     "records per batch; the batch goes out as soon as it is full"},
    {SL_OPT_DURATION, "timeout", NULL, 0,
     offsetof(batch_state, timeout_ns), 0, 0, NULL,
     "send a partial batch when a record arrives after the batch has waited this long"},
    SL_OPTIONS_END,
};

/* The value a record contributes to the batch (new reference or NULL). */
static sl_value *batch_item(const sl_record *r)
{
    const sl_value *fields = sl_record_fields(r);
    size_t len = 0;
    const char *payload = sl_record_payload(r, &len);
    if (sl_object_len(fields) == 0 && payload != NULL && len > 0)
        return sl_value_string(payload, len);
    return sl_value_ref((sl_value *)fields);   /* shared, copy on write */
}

/*
 * Build the batch value from the pending records and send it in the last
 * one. On SL_ENOMEM nothing has changed and the records stay pending.
 */
static int batch_send(batch_state *st, sl_stage_ctx *sc)
{
    if (st->n == 0)
        return 0;
    sl_value *items = sl_value_array();
    sl_value *obj = sl_value_object();
    sl_value *count = sl_value_int((int64_t)st->n);
    if (items == NULL || obj == NULL || count == NULL)
        goto out_nomem;
    for (size_t i = 0; i < st->n; i++) {
        sl_value *item = batch_item(st->pending[i]);
        if (item == NULL || sl_array_append(items, item) != 0)
            goto out_nomem;
    }
    int rc = sl_object_set(obj, "records", items);
    items = NULL;                                  /* taken, even on failure */
    if (rc != 0)
        goto out_nomem;
    rc = sl_object_set(obj, "count", count);
    count = NULL;
    if (rc != 0)
        goto out_nomem;

    sl_record *carrier = st->pending[st->n - 1];
    /* The carrier answers for every record of the batch (acknowledgement). */
    for (size_t i = 0; i + 1 < st->n; i++)
        if (sl_record_take_acks(carrier, st->pending[i]) != 0)
            goto out_nomem;
    rc = sl_record_set_fields(carrier, obj);       /* takes obj */
    if (rc != 0)
        return rc;
    sl_record_clear_payload(carrier);
    for (size_t i = 0; i + 1 < st->n; i++)
        sl_record_free(st->pending[i]);
    st->n = 0;
    sl_emit(sc, carrier);   /* on failure the run is ending; carrier is gone */
    return 0;

out_nomem:
    sl_value_unref(items);
    sl_value_unref(obj);
    sl_value_unref(count);
    return SL_ENOMEM;
}

/* Room for one more pending record. */
static int batch_reserve(batch_state *st)
{
    if (st->n < st->cap)
        return 0;
    size_t cap = st->cap != 0 ? st->cap * 2 : 16;
    if (cap > (size_t)st->size && (size_t)st->size > st->n)
        cap = (size_t)st->size;
    sl_record **p = realloc(st->pending, cap * sizeof(*p));
    if (p == NULL)
        return SL_ENOMEM;
    st->pending = p;
    st->cap = cap;
    return 0;
}

static int batch_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    batch_state *st = state;
    int64_t now = sl_clock_now(sl_stage_clock(sc));
    if (st->n > 0 && st->timeout_ns > 0 && now - st->opened_ns >= st->timeout_ns) {
        if (batch_send(st, sc) != 0)
            return sl_stage_error(sc, SL_ENOMEM, "out of memory building a batch");
    }
    if (batch_reserve(st) != 0)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory holding a batch");
    if (st->n == 0)
        st->opened_ns = now;
    st->pending[st->n++] = rec;
    if (st->n >= (size_t)st->size && batch_send(st, sc) != 0) {
        /* rec is ours now; the full batch stays pending for the next try. */
        sl_stage_count_error(sc);
        sl_stage_log(sc, SL_LOG_ERROR, "out of memory building a batch of %zu",
                     st->n);
    }
    return 0;
}

static int batch_flush(void *state, sl_stage_ctx *sc)
{
    batch_state *st = state;
    if (batch_send(st, sc) != 0)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory building a batch");
    return 0;
}

static void batch_destroy(void *state)
{
    batch_state *st = state;
    for (size_t i = 0; i < st->n; i++)
        sl_record_free(st->pending[i]);
    free(st->pending);
    st->pending = NULL;
    st->n = st->cap = 0;
}

const sl_stage_desc sl_stage_batch = {
    SL_STAGE_DESC_HEADER,
    .name = "batch",
    .kind = SL_STAGE_TRANSFORM,
    .summary = "group records into one record {\"records\": [...], \"count\": n}",
    .options = batch_options,
    .state_size = sizeof(batch_state),
    .process = batch_process,
    .flush = batch_flush,
    .destroy = batch_destroy,
};
