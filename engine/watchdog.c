/*
 * The stuck-stage watchdog, the per-worker state dump and the leak check
 * at the end of a run. See watchdog.h.
 */
#include "engine/watchdog.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/options.h"
#include "engine/registry.h"
#include "engine/run_internal.h"
#include "sluice/error.h"

int64_t sl__run_clock_now(const sl__run *run)
{
    return sl_clock_now(run->clock);
}

/* ================================================================== */
/* Stuck workers                                                       */
/* ================================================================== */

/*
 * Stuck: inside process() or flush(), silent for the stall timeout, and
 * with work — a record in hand (process) or records waiting in its input.
 * A source may wait for data as long as it likes; a worker blocked handing
 * records on is backpressure, not a stall (its state is "sending").
 */
static bool worker_stuck(const sl__run *run, const run_stage *st,
                         const run_worker *w, int64_t now, int64_t *hb_out)
{
    int64_t limit = run->cfg->settings.stall_timeout_ns;
    if (limit <= 0 || st->source)
        return false;
    int state = atomic_load_explicit(&w->counters.state, memory_order_relaxed);
    if (state != SL__WS_PROCESSING && state != SL__WS_FLUSHING)
        return false;
    int64_t hb = atomic_load_explicit(&w->counters.heartbeat_ns,
                                      memory_order_relaxed);
    if (hb == 0 || now - hb < limit)
        return false;
    if (state == SL__WS_FLUSHING && (st->in == NULL || sl_chan_len(st->in) == 0))
        return false;
    if (hb_out != NULL)
        *hb_out = hb;
    return true;
}

bool sl__run_worker_stuck(const sl__run *run, size_t stage, int worker,
                          int64_t now)
{
    if (stage >= run->n_stages || worker < 0 ||
        worker >= run->stages[stage].n_workers)
        return false;
    const run_stage *st = &run->stages[stage];
    return worker_stuck(run, st, &st->workers[worker], now, NULL);
}

/* "record seq 12 of src (offset 120)" for the record w holds, into buf. */
static void describe_record(const run_worker *w, char *buf, size_t size)
{
    const char *src = atomic_load_explicit(&w->watch.pos_source,
                                           memory_order_acquire);
    int64_t seq = atomic_load_explicit(&w->watch.pos_seq, memory_order_relaxed);
    int64_t off = atomic_load_explicit(&w->watch.pos_offset,
                                       memory_order_relaxed);
    if (src == NULL && seq == 0) {
        snprintf(buf, size, "a record with no position");
        return;
    }
    int n = snprintf(buf, size, "record seq %lld of %s", (long long)seq,
                     src != NULL && src[0] != '\0' ? src : "?");
    if (off >= 0 && n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, " (offset %lld)", (long long)off);
}

/* "input 16/16, output to sink 16/16" into buf. */
static void describe_queues(const run_stage *st, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    if (st->in != NULL)
        used += (size_t)snprintf(buf, size, "input %zu/%zu", sl_chan_len(st->in),
                                 sl_chan_cap(st->in));
    for (size_t o = 0; o < st->n_out && used < size; o++) {
        const run_stage *r = st->outs[o];
        used += (size_t)snprintf(buf + used, size - used, "%s%s %s %zu/%zu",
                                 used > 0 ? ", " : "",
                                 o == 0 ? "output to" : "and",
                                 r->conf->name, sl_chan_len(r->in),
                                 sl_chan_cap(r->in));
    }
}

int sl__run_watchdog(sl__run *run, char *cause, size_t cause_size)
{
    int reported = 0;
    if (run->cfg->settings.stall_timeout_ns <= 0)
        return 0;
    pthread_mutex_lock(&run->wd_mu);
    int64_t now = sl__run_clock_now(run);
    for (size_t s = 0; s < run->n_stages; s++) {
        run_stage *st = &run->stages[s];
        for (int i = 0; i < st->n_workers; i++) {
            run_worker *w = &st->workers[i];
            int64_t hb = 0;
            if (!worker_stuck(run, st, w, now, &hb))
                continue;
            if (atomic_load_explicit(&w->watch.reported_hb,
                                     memory_order_relaxed) == hb)
                continue;   /* this stall was reported already */
            atomic_store_explicit(&w->watch.reported_hb, hb,
                                  memory_order_relaxed);
            bool in_flush = atomic_load_explicit(&w->counters.state,
                                                 memory_order_relaxed) ==
                            SL__WS_FLUSHING;
            char d[32], rec[160], queues[256], what[200];
            sl__format_duration(now - hb, d, sizeof(d));
            describe_queues(st, queues, sizeof(queues));
            if (in_flush) {
                snprintf(what, sizeof(what), "in flush()");
            } else {
                describe_record(w, rec, sizeof(rec));
                snprintf(what, sizeof(what), "holding %s", rec);
            }
            sl__log(SL_LOG_WARN, st->conf->name,
                    "worker %d stuck: no heartbeat for %s in %s, %s; %s", i,
                    d, in_flush ? "flush()" : "process()", what, queues);
            char note[512];
            snprintf(note, sizeof(note), "silent for %s, %s; %s", d, what,
                     queues);
            sl__run_trace_note(run, "stuck", st->conf->name, i, note);
            if (reported == 0 && cause != NULL && cause_size > 0)
                snprintf(cause, cause_size,
                         "stage %s: stalled in %s for %s (worker %d, %s; %s)",
                         st->conf->name, in_flush ? "flush()" : "process()", d,
                         i, what, queues);
            reported++;
        }
    }
    pthread_mutex_unlock(&run->wd_mu);
    return reported;
}

/* ================================================================== */
/* The dump                                                            */
/* ================================================================== */

static int bprintf(sl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int bprintf(sl_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return SL_EINTERNAL;
    if ((size_t)n < sizeof(small))
        return sl_buf_append(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        return SL_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = sl_buf_append(b, big, (size_t)n);
    free(big);
    return rc;
}

static double seconds(int64_t ns)
{
    return (double)ns / 1e9;
}

int sl__run_describe(sl__run *run, sl_buf *out)
{
    int64_t real_now = sl__run_now();
    int64_t now = sl__run_clock_now(run);
    int64_t start = atomic_load(&run->start_ns);
    int rc = 0;
    const char *how = sl_ctx_is_done(run->root) ? "cancelled: "
                      : atomic_load(&run->stop_requested) ? "stopping"
                                                          : "running";
    rc |= bprintf(out, "sluice: pipeline %s, %.1fs, %s%s\n", run->pipeline,
                  start > 0 ? seconds(real_now - start) : 0.0, how,
                  sl_ctx_is_done(run->root) ? sl_ctx_cause(run->root) : "");
    for (size_t s = 0; s < run->n_stages; s++) {
        run_stage *st = &run->stages[s];
        rc |= bprintf(out, "  stage %s (%s, %s)", st->conf->name,
                      st->desc->name, sl__stage_kind_name(st->desc->kind));
        if (st->in != NULL)
            rc |= bprintf(out, " queue %zu/%zu%s", sl_chan_len(st->in),
                          sl_chan_cap(st->in),
                          sl_chan_is_closed(st->in) ? " closed" : "");
        rc |= bprintf(out, " in=%llu out=%llu errors=%llu dropped=%llu\n",
                      (unsigned long long)SL__RUN_COUNTER(run, s, records_in),
                      (unsigned long long)SL__RUN_COUNTER(run, s, records_out),
                      (unsigned long long)SL__RUN_COUNTER(run, s, errors),
                      (unsigned long long)SL__RUN_COUNTER(run, s, dropped));
        for (int i = 0; i < st->n_workers; i++) {
            run_worker *w = &st->workers[i];
            int state = atomic_load(&w->counters.state);
            int64_t hb = atomic_load_explicit(&w->counters.heartbeat_ns,
                                              memory_order_relaxed);
            rc |= bprintf(out, "    worker %d: %s", i,
                          sl__worker_state_name((sl__worker_state)state));
            if (hb > 0 && state != SL__WS_DONE)
                rc |= bprintf(out, ", last heartbeat %.3fs ago",
                              seconds(now - hb));
            if (state == SL__WS_PROCESSING && !st->source) {
                char rec[160];
                describe_record(w, rec, sizeof(rec));
                rc |= bprintf(out, ", holding %s", rec);
            }
            int64_t done = atomic_load(&w->done_ns);
            int64_t until = done > 0 ? done : real_now;
            int64_t blocked = atomic_load_explicit(&w->blocked_send_ns,
                                                   memory_order_relaxed);
            int64_t idle = atomic_load_explicit(&w->idle_recv_ns,
                                                memory_order_relaxed);
            /* the wait it is in now counts too */
            int64_t since = atomic_load_explicit(&w->wait_since_ns,
                                                 memory_order_relaxed);
            if (since > 0 && done == 0 && real_now > since) {
                if (state == SL__WS_SENDING)
                    blocked += real_now - since;
                else if (state == SL__WS_RECEIVING)
                    idle += real_now - since;
            }
            int64_t busy = start > 0 ? until - start - blocked - idle : 0;
            rc |= bprintf(out, "; busy %.3fs, blocked %.3fs, idle %.3fs",
                          seconds(busy > 0 ? busy : 0), seconds(blocked),
                          seconds(idle));
            if (worker_stuck(run, st, w, now, NULL))
                rc |= bprintf(out, "  STUCK");
            rc |= sl_buf_putc(out, '\n');
        }
    }
    return rc != 0 ? SL_ENOMEM : 0;
}

void sl__run_dump(sl__run *run, FILE *out)
{
    sl_buf b;
    sl_buf_init(&b);
    if (sl__run_describe(run, &b) != 0) {
        fputs("sluice: out of memory for the stage dump\n", out);
    } else {
        flockfile(out);
        fwrite(b.data, 1, b.len, out);
        fflush(out);
        funlockfile(out);
    }
    sl_buf_fini(&b);
}

/* ================================================================== */
/* Leaks                                                               */
/* ================================================================== */

int sl__thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/*
 * A thread a stage started may still be on its way out right after the
 * stage's destroy() returned (a detached helper finishing): look again a
 * few times over about 100 ms before calling it a leak.
 */
static int extra_threads(int before)
{
    if (before < 0)
        return 0;
    int extra = 0;
    for (int tries = 0; tries < 20; tries++) {
        int now = sl__thread_count();
        extra = now - before;
        if (now < 0 || extra <= 0)
            return 0;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return extra;
}

int sl__run_check_leaks(sl__run *run)
{
    int leaks = 0;
    bool cancelled = sl_ctx_is_done(run->root);
    int live = atomic_load(&run->live_workers);
    if (live != 0) {
        sl__log(SL_LOG_WARN, NULL, "leak: %d worker thread(s) never reported "
                "their end", live);
        leaks++;
    }
    for (size_t s = 0; s < run->n_stages; s++) {
        run_stage *st = &run->stages[s];
        for (int i = 0; i < st->n_workers; i++) {
            run_worker *w = &st->workers[i];
            for (size_t o = 0; o < st->n_out && w->outs != NULL; o++) {
                size_t n = atomic_load(&w->outs[o].n);
                if (n > 0) {
                    sl__log(SL_LOG_WARN, st->conf->name,
                            "leak: worker %d still holds %zu record(s) for %s",
                            i, n, st->outs[o]->conf->name);
                    leaks++;
                }
            }
        }
        if (st->in == NULL)
            continue;
        if (!sl_chan_is_closed(st->in)) {
            sl__log(SL_LOG_WARN, st->conf->name,
                    "leak: its input channel was never closed");
            leaks++;
        }
        size_t left = sl_chan_len(st->in);
        if (left > 0 && !cancelled) {
            sl__log(SL_LOG_WARN, st->conf->name,
                    "leak: %zu record(s) left in its input channel", left);
            leaks++;
        }
    }
    int extra = extra_threads(run->threads_before);
    if (extra > 0) {
        sl__log(SL_LOG_WARN, NULL, "leak: %d thread(s) started during the run "
                "are still running (a stage that did not join its threads?)",
                extra);
        leaks++;
    }
    return leaks;
}
