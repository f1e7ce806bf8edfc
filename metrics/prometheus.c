/*
 * A snapshot in the Prometheus text exposition format, version 0.0.4
 * (what `promtool check metrics` checks): one family per figure, each with
 * HELP and TYPE, labelled {pipeline="…",stage="…"}; counters end in
 * _total, durations are in seconds, and the latency histogram is
 * sluice_stage_latency_seconds with cumulative _bucket{le=…}, _sum and
 * _count. The names are listed in docs/metrics.md.
 */
#include <stdio.h>
#include <string.h>

#include "metrics/snapshot.h"
#include "metrics/text.h"
#include "sluice/error.h"

/* A label value: backslash, double quote and newline escaped. */
static int put_label(sl_buf *b, const char *s)
{
    int rc = 0;
    for (const char *p = s != NULL ? s : ""; *p && rc == 0; p++) {
        if (*p == '\\')
            rc = sl__mput(b, "\\\\");
        else if (*p == '"')
            rc = sl__mput(b, "\\\"");
        else if (*p == '\n')
            rc = sl__mput(b, "\\n");
        else
            rc = sl_buf_putc(b, *p) != 0 ? SL_ENOMEM : 0;
    }
    return rc;
}

/* A sample value: integers as such, others with enough digits. */
static int put_value(sl_buf *b, double v)
{
    if (v != v)
        return sl__mput(b, "NaN");
    if (v == (double)(long long)v && v < 9e15 && v > -9e15)
        return sl__mputf(b, "%lld", (long long)v);
    return sl__mputf(b, "%.9g", v);
}

static int family(sl_buf *b, const char *name, const char *type,
                  const char *help)
{
    return sl__mputf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                     type);
}

/* name{pipeline="…",stage="…"<extra>} value */
static int stage_sample(sl_buf *b, const sl__run_snapshot *s,
                        const sl__stage_snapshot *t, const char *name,
                        const char *extra, double v)
{
    int rc = 0;
    rc |= sl__mput(b, name);
    rc |= sl__mput(b, "{pipeline=\"");
    rc |= put_label(b, s->pipeline);
    rc |= sl__mput(b, "\",stage=\"");
    rc |= put_label(b, t->name);
    rc |= sl__mput(b, "\"");
    if (extra != NULL)
        rc |= sl__mput(b, extra);
    rc |= sl__mput(b, "} ");
    rc |= put_value(b, v);
    rc |= sl__mput(b, "\n");
    return rc;
}

/* What one per-stage family reads from a stage. */
typedef double (*stage_field)(const sl__stage_snapshot *t);

#define FIELD(fn, expr) \
    static double fn(const sl__stage_snapshot *t) { return (double)(expr); }
FIELD(f_records_in, t->records_in)
FIELD(f_records_out, t->records_out)
FIELD(f_errors, t->errors)
FIELD(f_dropped, t->dropped)
FIELD(f_retries, t->retries)
FIELD(f_bytes_in, t->bytes_in)
FIELD(f_bytes_out, t->bytes_out)
FIELD(f_queue_depth, t->queue_depth)
FIELD(f_queue_capacity, t->queue_capacity)
FIELD(f_queue_max_depth, t->queue_max_depth)
FIELD(f_queue_full, t->queue_full_s)
FIELD(f_active, t->active_s)
FIELD(f_blocked, t->blocked_send_s)
FIELD(f_idle, t->idle_recv_s)
FIELD(f_workers, t->workers)
FIELD(f_throughput, t->throughput_rps)
#undef FIELD

static const struct {
    const char *name;
    const char *type;
    const char *help;
    stage_field get;
    bool consumers_only;        /* not for sources (no input) */
} stage_families[] = {
    {"sluice_stage_records_in_total", "counter",
     "Records handed to the stage's process().", f_records_in, false},
    {"sluice_stage_records_out_total", "counter",
     "Records the stage emitted (or, for a sink, stored).", f_records_out,
     false},
    {"sluice_stage_errors_total", "counter",
     "Records that failed in the stage, and errors it counted itself.",
     f_errors, false},
    {"sluice_stage_dropped_total", "counter",
     "Records the stage dropped on purpose (filtered out).", f_dropped, false},
    {"sluice_stage_retries_total", "counter",
     "Calls the stage retried.", f_retries, false},
    {"sluice_stage_bytes_in_total", "counter",
     "Bytes the stage read or received (records with fields: estimated).",
     f_bytes_in, false},
    {"sluice_stage_bytes_out_total", "counter",
     "Bytes the stage emitted or stored (records with fields: estimated).",
     f_bytes_out, false},
    {"sluice_stage_queue_depth", "gauge",
     "Records waiting in the stage's input queue.", f_queue_depth, true},
    {"sluice_stage_queue_capacity", "gauge",
     "Capacity of the stage's input queue in records.", f_queue_capacity,
     true},
    {"sluice_stage_queue_max_depth", "gauge",
     "Most records the stage's input queue has held.", f_queue_max_depth,
     true},
    {"sluice_stage_queue_full_seconds_total", "counter",
     "Time upstream workers waited because the stage's input queue was "
     "full, summed over them.", f_queue_full, true},
    {"sluice_stage_active_seconds_total", "counter",
     "Time the stage's workers have been running, summed over workers.",
     f_active, false},
    {"sluice_stage_blocked_send_seconds_total", "counter",
     "Time the stage's workers waited on a full output (backpressure), "
     "summed over workers.", f_blocked, false},
    {"sluice_stage_idle_recv_seconds_total", "counter",
     "Time the stage's workers waited on an empty input, summed over "
     "workers.", f_idle, true},
    {"sluice_stage_workers", "gauge",
     "Worker threads of the stage.", f_workers, false},
    {"sluice_stage_throughput_records_per_second", "gauge",
     "Records the stage worked through per second since the run started.",
     f_throughput, false},
};

static const char *const stage_states[] = {"starting", "running", "retrying",
                                           "stalled", "done"};
static const char *const breaker_states[] = {"closed", "open", "half_open"};

static int pipeline_families(const sl__run_snapshot *s, sl_buf *b)
{
    static const sl__run_status statuses[] = {
        SL__RUN_RUNNING, SL__RUN_SUCCEEDED, SL__RUN_INTERRUPTED,
        SL__RUN_FAILED};
    int rc = 0;
    rc |= family(b, "sluice_pipeline_elapsed_seconds", "gauge",
                 "Time since the run started.");
    rc |= sl__mput(b, "sluice_pipeline_elapsed_seconds{pipeline=\"");
    rc |= put_label(b, s->pipeline);
    rc |= sl__mput(b, "\"} ");
    rc |= put_value(b, s->elapsed_s);
    rc |= sl__mput(b, "\n");
    rc |= family(b, "sluice_pipeline_status", "gauge",
                 "The run's status: 1 for the current one, 0 for the others.");
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        rc |= sl__mput(b, "sluice_pipeline_status{pipeline=\"");
        rc |= put_label(b, s->pipeline);
        rc |= sl__mputf(b, "\",status=\"%s\"} %d\n",
                        sl__run_status_name(statuses[i]),
                        s->status == statuses[i] ? 1 : 0);
    }
    rc |= family(b, "sluice_pipeline_stopping", "gauge",
                 "1 while a graceful stop drains the run.");
    rc |= sl__mput(b, "sluice_pipeline_stopping{pipeline=\"");
    rc |= put_label(b, s->pipeline);
    rc |= sl__mputf(b, "\"} %d\n", s->stopping ? 1 : 0);
    return rc;
}

static int state_families(const sl__run_snapshot *s, sl_buf *b)
{
    int rc = family(b, "sluice_stage_state", "gauge",
                    "What the stage's workers are doing: 1 for the current "
                    "state, 0 for the others.");
    char extra[64];
    for (size_t i = 0; i < s->n_stages; i++) {
        const sl__stage_snapshot *t = &s->stages[i];
        for (size_t k = 0; k < sizeof(stage_states) / sizeof(stage_states[0]);
             k++) {
            snprintf(extra, sizeof(extra), ",state=\"%s\"", stage_states[k]);
            rc |= stage_sample(b, s, t, "sluice_stage_state", extra,
                               t->state != NULL &&
                                   strcmp(t->state, stage_states[k]) == 0);
        }
    }
    bool any = false;
    for (size_t i = 0; i < s->n_stages; i++)
        any |= s->stages[i].has_breaker;
    if (!any)
        return rc;
    rc |= family(b, "sluice_stage_circuit_breaker_state", "gauge",
                 "The stage's circuit breaker: 1 for its state (the worst "
                 "over workers), 0 for the others.");
    for (size_t i = 0; i < s->n_stages; i++) {
        const sl__stage_snapshot *t = &s->stages[i];
        if (!t->has_breaker)
            continue;
        for (size_t k = 0;
             k < sizeof(breaker_states) / sizeof(breaker_states[0]); k++) {
            snprintf(extra, sizeof(extra), ",state=\"%s\"", breaker_states[k]);
            rc |= stage_sample(b, s, t, "sluice_stage_circuit_breaker_state",
                               extra,
                               strcmp(t->breaker_state, breaker_states[k]) == 0);
        }
    }
    rc |= family(b, "sluice_stage_circuit_breaker_opens_total", "counter",
                 "Times the stage's circuit breaker opened.");
    for (size_t i = 0; i < s->n_stages; i++)
        if (s->stages[i].has_breaker)
            rc |= stage_sample(b, s, &s->stages[i],
                               "sluice_stage_circuit_breaker_opens_total",
                               NULL, (double)s->stages[i].breaker_opens);
    rc |= family(b, "sluice_stage_circuit_breaker_rejections_total", "counter",
                 "Calls the stage's circuit breaker refused.");
    for (size_t i = 0; i < s->n_stages; i++)
        if (s->stages[i].has_breaker)
            rc |= stage_sample(b, s, &s->stages[i],
                               "sluice_stage_circuit_breaker_rejections_total",
                               NULL, (double)s->stages[i].breaker_rejections);
    return rc;
}

static int latency_family(const sl__run_snapshot *s, sl_buf *b)
{
    int rc = family(b, "sluice_stage_latency_seconds", "histogram",
                    "Time per call of the stage's process().");
    char extra[64];
    for (size_t i = 0; i < s->n_stages; i++) {
        const sl__stage_snapshot *t = &s->stages[i];
        if (t->kind == SL_STAGE_SOURCE)
            continue;
        uint64_t count = t->latency_count;
        for (int k = 0; k < SL__LAT_LE_N; k++) {
            double le = (double)(((int64_t)1 << (SL__LAT_LE_FIRST + k)) - 1) /
                        1e9;
            snprintf(extra, sizeof(extra), ",le=\"%.9g\"", le);
            uint64_t v = t->has_buckets ? t->latency_le[k] : 0;
            if (v > count)
                v = count;
            rc |= stage_sample(b, s, t, "sluice_stage_latency_seconds_bucket",
                               extra, (double)v);
        }
        rc |= stage_sample(b, s, t, "sluice_stage_latency_seconds_bucket",
                           ",le=\"+Inf\"", (double)count);
        rc |= stage_sample(b, s, t, "sluice_stage_latency_seconds_sum", NULL,
                           t->latency_sum_s);
        rc |= stage_sample(b, s, t, "sluice_stage_latency_seconds_count", NULL,
                           (double)count);
    }
    return rc;
}

/* The family of a stage's own metric: sluice_<type>_<name>[_total]. */
static void extra_family_name(const sl__stage_snapshot *t,
                              const sl__extra_metric *m, char *out,
                              size_t size)
{
    int n = snprintf(out, size, "sluice_");
    for (const char *p = t->type != NULL ? t->type : "stage";
         *p != '\0' && n + 1 < (int)size; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_';
        out[n++] = ok ? c : '_';
    }
    out[n] = '\0';
    snprintf(out + n, size - (size_t)n, "_%s%s", m->name,
             m->counter ? "_total" : "");
}

/*
 * Stages' own metrics: one family per name, shared by every stage that
 * has it (HELP and TYPE once, as the format requires), its samples from
 * each of them.
 */
static int extra_families(const sl__run_snapshot *s, sl_buf *b)
{
    int rc = 0;
    char fam[160], other[160], extra[160];
    for (size_t i = 0; i < s->n_stages; i++) {
        const sl__stage_snapshot *t = &s->stages[i];
        for (size_t e = 0; e < t->n_extra; e++) {
            extra_family_name(t, &t->extra[e], fam, sizeof(fam));
            /* written already, with an earlier stage or entry? */
            bool done = false;
            for (size_t pi = 0; pi <= i && !done; pi++) {
                const sl__stage_snapshot *pt = &s->stages[pi];
                size_t upto = pi == i ? e : pt->n_extra;
                for (size_t pe = 0; pe < upto && !done; pe++) {
                    extra_family_name(pt, &pt->extra[pe], other, sizeof(other));
                    done = strcmp(fam, other) == 0;
                }
            }
            if (done)
                continue;
            rc |= family(b, fam, t->extra[e].counter ? "counter" : "gauge",
                         t->extra[e].help);
            for (size_t si = i; si < s->n_stages; si++) {
                const sl__stage_snapshot *st = &s->stages[si];
                for (size_t se = 0; se < st->n_extra; se++) {
                    const sl__extra_metric *m = &st->extra[se];
                    extra_family_name(st, m, other, sizeof(other));
                    if (strcmp(fam, other) != 0)
                        continue;
                    extra[0] = '\0';
                    if (m->label_key != NULL) {
                        sl_buf lv;
                        sl_buf_init(&lv);
                        rc |= put_label(&lv, m->label_value);
                        snprintf(extra, sizeof(extra), ",%s=\"%s\"",
                                 m->label_key, lv.data != NULL ? lv.data : "");
                        sl_buf_fini(&lv);
                    }
                    rc |= stage_sample(b, s, st, fam,
                                       extra[0] != '\0' ? extra : NULL,
                                       (double)m->value);
                }
            }
        }
    }
    return rc;
}

int sl__metrics_prometheus(const sl__run_snapshot *s, sl_buf *b)
{
    int rc = pipeline_families(s, b);
    for (size_t f = 0; f < sizeof(stage_families) / sizeof(stage_families[0]);
         f++) {
        rc |= family(b, stage_families[f].name, stage_families[f].type,
                     stage_families[f].help);
        for (size_t i = 0; i < s->n_stages; i++) {
            const sl__stage_snapshot *t = &s->stages[i];
            if (stage_families[f].consumers_only && t->kind == SL_STAGE_SOURCE)
                continue;
            rc |= stage_sample(b, s, t, stage_families[f].name, NULL,
                               stage_families[f].get(t));
        }
    }
    rc |= state_families(s, b);
    rc |= latency_family(s, b);
    rc |= extra_families(s, b);
    return rc != 0 ? SL_ENOMEM : 0;
}
