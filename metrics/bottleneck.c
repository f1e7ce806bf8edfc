/*
 * Where the time went: each stage's share of busy, blocked and idle time,
 * how full its input was kept, and the bottleneck rule (docs/metrics.md
 * "Bottleneck").
 */
#include "metrics/snapshot.h"

static double clamp01(double v)
{
    if (!(v > 0))
        return 0;
    return v > 1 ? 1 : v;
}

/* Worker-seconds a stage ran; from snapshots without active_s, the
 * elapsed time for each worker. */
static double active_of(const sl__run_snapshot *s, const sl__stage_snapshot *t)
{
    if (t->active_s > 0)
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
