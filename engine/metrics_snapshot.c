/*
 * Taking a metrics snapshot of a running (or finished) run: each stage's
 * worker counters summed, latency percentiles and Prometheus bucket counts
 * from the workers' histograms, input channel figures, worker states and
 * circuit breakers. What is done with a snapshot is in metrics/.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/run_internal.h"
#include "sluice/error.h"

/* Records a stage has worked through: emitted for a source, taken in for
 * everything else. What throughput_rps counts. */
static uint64_t stage_progress(const sl__stage_snapshot *s)
{
    return s->kind == SL_STAGE_SOURCE ? s->records_out : s->records_in;
}

/* Add a worker's own metrics to the stage's, merging the same metric
 * (name and label value) of several workers. */
static void add_extra(sl__stage_snapshot *s, const sl__stage_counters *c)
{
    size_t n = atomic_load_explicit(&c->n_extra, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        const struct sl_stage_metric *m = &c->extra[i];
        int64_t v = atomic_load_explicit(&m->value, memory_order_relaxed);
        size_t k = 0;
        while (k < s->n_extra &&
               !(strcmp(s->extra[k].name, m->name) == 0 &&
                 strcmp(s->extra[k].label_value, m->label_value) == 0))
            k++;
        if (k == s->n_extra) {
            if (k == SL__EXTRA_MAX)
                continue;
            s->extra[k] = (sl__extra_metric){
                .name = m->name,
                .label_key = m->label_key[0] != '\0' ? m->label_key : NULL,
                .label_value = m->label_value,
                .help = m->help,
                .counter = m->kind == SL_METRIC_COUNTER,
            };
            s->n_extra++;
        }
        s->extra[k].value += v;
    }
}

/*
 * One word for what a stage's workers are doing: "done" when all are,
 * "stalled" when one has been inside process()/flush() longer than the
 * stall timeout, "retrying" when one waits to retry, "starting" before any
 * got going, else "running".
 */
static const char *stage_state(const sl__run *run, const run_stage *st,
                               int64_t now)
{
    int64_t limit = run->cfg->settings.stall_timeout_ns;
    int done = 0, starting = 0;
    bool retrying = false;
    for (int k = 0; k < st->n_workers; k++) {
        const run_worker *w = &st->workers[k];
        int state = atomic_load_explicit(&w->counters.state,
                                         memory_order_relaxed);
        if (state == SL__WS_DONE) {
            done++;
            continue;
        }
        if (state == SL__WS_STARTING)
            starting++;
        if (state == SL__WS_RETRYING)
            retrying = true;
        if (limit > 0 &&
            sl__run_worker_stuck(run, st->index, k, now))
            return "stalled";
    }
    if (done == st->n_workers)
        return "done";
    if (retrying)
        return "retrying";
    if (starting + done == st->n_workers)
        return "starting";
    return "running";
}

/* open > half_open > closed: the state that says most about trouble. */
static int breaker_rank(sl_breaker_state s)
{
    return s == SL_BREAKER_OPEN ? 2 : s == SL_BREAKER_HALF_OPEN ? 1 : 0;
}

static void add_breaker(sl__stage_snapshot *s, sl_breaker_state state,
                        uint64_t opens, uint64_t rejections,
                        sl_breaker_state *worst)
{
    if (!s->has_breaker || breaker_rank(state) > breaker_rank(*worst))
        *worst = state;
    s->has_breaker = true;
    s->breaker_opens += opens;
    s->breaker_rejections += rejections;
}

/*
 * The engine's own breaker for the stage, and the ones its workers asked
 * to have watched (read under breaker_mu, so that none is destroyed
 * meanwhile; a detached one reports its last figures).
 */
static void snapshot_breakers(sl__run *run, run_stage *st,
                              sl__stage_snapshot *s)
{
    sl_breaker_state worst = SL_BREAKER_CLOSED;
    if (st->breaker != NULL)
        add_breaker(s, sl_breaker_get_state(st->breaker),
                    sl_breaker_opens(st->breaker),
                    sl_breaker_rejections(st->breaker), &worst);
    pthread_mutex_lock(&run->breaker_mu);
    for (int k = 0; k < st->n_workers; k++) {
        run_worker *w = &st->workers[k];
        sl_breaker *b = atomic_load(&w->counters.breaker);
        if (b != NULL)
            add_breaker(s, sl_breaker_get_state(b), sl_breaker_opens(b),
                        sl_breaker_rejections(b), &worst);
        else if (w->breaker_detached)
            add_breaker(s, w->breaker_state, w->breaker_opens,
                        w->breaker_rejections, &worst);
    }
    pthread_mutex_unlock(&run->breaker_mu);
    if (s->has_breaker)
        s->breaker_state = sl_breaker_state_name(worst);
}

static void snapshot_latency(sl__stage_snapshot *s, const sl__hist_sum *sum)
{
    s->latency_p50_us = (double)sl__hist_quantile(sum, 0.50) / 1e3;
    s->latency_p90_us = (double)sl__hist_quantile(sum, 0.90) / 1e3;
    s->latency_p99_us = (double)sl__hist_quantile(sum, 0.99) / 1e3;
    s->latency_max_us = (double)sum->max_ns / 1e3;
    /* the count from the buckets, so that it matches the +Inf bucket */
    uint64_t count = 0;
    for (int b = 0; b < SL__HIST_BUCKETS; b++)
        count += sum->buckets[b];
    s->latency_count = count;
    s->latency_sum_s = (double)sum->sum_ns / 1e9;
    s->has_buckets = true;
    int b = 0;
    uint64_t cum = 0;
    for (int k = 0; k < SL__LAT_LE_N; k++) {
        int64_t le = ((int64_t)1 << (SL__LAT_LE_FIRST + k)) - 1;
        while (b < SL__HIST_BUCKETS && sl__hist_bucket_high(b) <= le)
            cum += sum->buckets[b++];
        s->latency_le[k] = cum;
    }
}

int sl__run_snapshot_take(sl__run *run, const sl__run_snapshot *prev,
                          sl__run_snapshot *out)
{
    memset(out, 0, sizeof(*out));
    size_t n_inputs = 0;
    for (size_t i = 0; i < run->n_stages; i++)
        n_inputs += run->stages[i].n_in;
    out->stages = calloc(run->n_stages > 0 ? run->n_stages : 1,
                         sizeof(*out->stages));
    out->input_store = calloc(n_inputs > 0 ? n_inputs : 1,
                              sizeof(*out->input_store));
    sl__hist_sum *sum = malloc(sizeof(*sum));
    if (out->stages == NULL || out->input_store == NULL || sum == NULL) {
        free(sum);
        sl__run_snapshot_fini(out);
        return SL_ENOMEM;
    }
    int64_t start = atomic_load(&run->start_ns);
    int64_t end = atomic_load(&run->end_ns);
    int64_t now = end > 0 ? end : sl__run_now();
    out->pipeline = run->pipeline;
    /* a failure or forced stop is known before the threads have wound
       down; a graceful stop is still "running" (and stopping) */
    int outcome = atomic_load(&run->outcome);
    out->status = outcome == OUTCOME_FAILED   ? SL__RUN_FAILED
                  : outcome == OUTCOME_FORCED ? SL__RUN_INTERRUPTED
                                              : SL__RUN_RUNNING;
    out->stopping = atomic_load(&run->stop_requested);
    out->elapsed_s = start > 0 ? (double)(now - start) / 1e9 : 0.0;
    out->cause = atomic_load(&run->cause_ready) ? run->cause : "";
    out->n_stages = run->n_stages;

    size_t next_input = 0;
    for (size_t i = 0; i < run->n_stages; i++) {
        run_stage *st = &run->stages[i];
        sl__stage_snapshot *s = &out->stages[i];
        s->name = st->conf->name;
        s->type = st->desc->name;
        s->kind = st->desc->kind;
        s->state = stage_state(run, st, sl__run_clock_now(run));
        /* as configured: for a stage that runs its own concurrency on
           one worker thread (it declares `workers`), that concurrency */
        s->workers = st->conf->workers > st->n_workers ? (int)st->conf->workers
                                                       : st->n_workers;
        s->inputs = out->input_store + next_input;
        for (size_t k = 0; k < st->n_in; k++)
            out->input_store[next_input++] = st->ins[k]->index;
        s->n_inputs = st->n_in;
        memset(sum, 0, sizeof(*sum));
        int64_t blocked = 0, idle = 0, active = 0;
        for (int k = 0; k < st->n_workers; k++) {
            run_worker *w = &st->workers[k];
            int64_t done = atomic_load(&w->done_ns);
            if (start > 0)
                active += (done > 0 ? done : now) - start;
            const sl__stage_counters *c = &w->counters;
            s->records_in += sl__counter_get(&c->records_in);
            s->records_out += sl__counter_get(&c->records_out);
            s->errors += sl__counter_get(&c->errors);
            s->dropped += sl__counter_get(&c->dropped);
            s->retries += sl__counter_get(&c->retries);
            s->bytes_in += sl__counter_get(&c->bytes_in);
            s->bytes_out += sl__counter_get(&c->bytes_out);
            blocked += atomic_load_explicit(&w->blocked_send_ns,
                                            memory_order_relaxed);
            idle += atomic_load_explicit(&w->idle_recv_ns,
                                         memory_order_relaxed);
            sl__hist_accumulate(sum, &c->latency);
            add_extra(s, c);
        }
        if (st->in != NULL) {
            sl_chan_stats cs;
            sl_chan_stats_get(st->in, &cs);
            s->queue_depth = cs.depth;
            s->queue_capacity = cs.capacity;
            s->queue_max_depth = cs.max_depth;
            s->queue_full_s = (double)cs.blocked_send_ns / 1e9;
        }
        s->active_s = (double)active / 1e9;
        s->blocked_send_s = (double)blocked / 1e9;
        s->idle_recv_s = (double)idle / 1e9;
        snapshot_latency(s, sum);
        snapshot_breakers(run, st, s);

        double secs = out->elapsed_s;
        uint64_t done = stage_progress(s);
        if (prev != NULL && prev->n_stages == run->n_stages &&
            out->elapsed_s > prev->elapsed_s) {
            secs = out->elapsed_s - prev->elapsed_s;
            uint64_t before = stage_progress(&prev->stages[i]);
            done = done >= before ? done - before : 0;
        }
        s->throughput_rps = secs > 0 ? (double)done / secs : 0.0;
    }
    free(sum);
    return 0;
}
