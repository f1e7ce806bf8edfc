/*
 * Where the time went: each stage's share of busy, blocked and idle time,
 * how full its input was kept, and the bottleneck rule (docs/metrics.md
 * "Bottleneck").
 */
#include "metrics/snapshot.h"

#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"

static double clamp01(double v)
{
    if (!(v > 0))
        return 0;
    return v > 1 ? 1 : v;
}

/* Worker-seconds a stage ran; for snapshots written without active_s
 * (negative), the elapsed time for each worker. */
static double active_of(const sl__run_snapshot *s, const sl__stage_snapshot *t)
{
    if (t->active_s >= 0)
        return t->active_s;
    return s->elapsed_s * (t->workers > 0 ? t->workers : 1);
}

void sl__stage_load_of(const sl__run_snapshot *s, size_t i,
                       sl__stage_load *out)
{
    const sl__stage_snapshot *t = &s->stages[i];
    double worker_s = active_of(s, t);
    out->busy = out->blocked = out->idle = out->input_full = 0;
    out->pressure = 0;
    if (!(worker_s > 0))
        return;
    out->blocked = clamp01(t->blocked_send_s / worker_s);
    out->idle = clamp01(t->idle_recv_s / worker_s);
    out->busy = clamp01(1.0 - out->blocked - out->idle);
    if (t->kind == SL_STAGE_SOURCE) {
        out->input_full = 1;   /* a source never waits for an upstream */
    } else {
        /* of the time the upstream workers ran, the share they waited on
           this stage's full input */
        double upstream_s = 0;
        for (size_t k = 0; k < t->n_inputs; k++)
            if (t->inputs[k] < s->n_stages)
                upstream_s += active_of(s, &s->stages[t->inputs[k]]);
        if (!(upstream_s > 0))
            upstream_s = s->elapsed_s;
        out->input_full = upstream_s > 0 ? clamp01(t->queue_full_s / upstream_s)
                                         : 0;
    }
    if (out->blocked < SL__BOTTLENECK_MAX_BLOCKED)
        out->pressure = out->busy * out->input_full;
}

long sl__metrics_bottleneck(const sl__run_snapshot *s)
{
    long best = -1;
    double best_pressure = 0;
    for (size_t i = 0; i < s->n_stages; i++) {
        sl__stage_load l;
        sl__stage_load_of(s, i, &l);
        if (l.pressure >= SL__BOTTLENECK_MIN_PRESSURE &&
            l.pressure >= best_pressure) {
            best = (long)i;
            best_pressure = l.pressure;
        }
    }
    return best;
}

static uint64_t sub_u64(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

static double sub_d(double a, double b)
{
    return a > b ? a - b : 0;
}

int sl__run_snapshot_window(const sl__run_snapshot *now,
                            const sl__run_snapshot *prev,
                            sl__run_snapshot *out)
{
    if (prev->n_stages != now->n_stages)
        return SL_EINVAL;
    sl__stage_snapshot *st = calloc(now->n_stages > 0 ? now->n_stages : 1,
                                    sizeof(*st));
    if (st == NULL)
        return SL_ENOMEM;
    *out = *now;
    out->stages = st;
    out->input_store = NULL;
    out->doc = NULL;
    out->elapsed_s = sub_d(now->elapsed_s, prev->elapsed_s);
    for (size_t i = 0; i < now->n_stages; i++) {
        const sl__stage_snapshot *a = &now->stages[i], *b = &prev->stages[i];
        sl__stage_snapshot *t = &st[i];
        *t = *a;
        t->records_in = sub_u64(a->records_in, b->records_in);
        t->records_out = sub_u64(a->records_out, b->records_out);
        t->errors = sub_u64(a->errors, b->errors);
        t->dropped = sub_u64(a->dropped, b->dropped);
        t->retries = sub_u64(a->retries, b->retries);
        t->bytes_in = sub_u64(a->bytes_in, b->bytes_in);
        t->bytes_out = sub_u64(a->bytes_out, b->bytes_out);
        t->queue_full_s = sub_d(a->queue_full_s, b->queue_full_s);
        t->active_s = sub_d(a->active_s, b->active_s);
        t->blocked_send_s = sub_d(a->blocked_send_s, b->blocked_send_s);
        t->idle_recv_s = sub_d(a->idle_recv_s, b->idle_recv_s);
        t->latency_count = sub_u64(a->latency_count, b->latency_count);
        t->latency_sum_s = sub_d(a->latency_sum_s, b->latency_sum_s);
        t->has_buckets = false;
    }
    return 0;
}
