/*
 * The runtime: stage worker threads, channels, outboxes, error policies,
 * stopping, and the monitor thread. See run.h for the model.
 *
 * Locks and order. A worker never holds a lock while calling a stage
 * callback, except a source's outbox mutex, which the source holds only
 * around queueing and handing records on (never across run()). The monitor
 * only ever try-locks an outbox and only try-sends, so it never blocks on a
 * stage. Ordered stages wait for their turn on a futex word that both the
 * releasing worker and a cancellation bump.
 */
#include "engine/run.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/acks.h"
#include "engine/futex_internal.h"
#include "engine/options.h"
#include "engine/record_internal.h"
#include "engine/registry.h"
#include "engine/run_internal.h"
#include "sluice/error.h"

/* Outcome of handling one record: go on, or stop this worker. */
#define STEP_OK 0
#define STEP_STOP 1

int64_t sl__run_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SL_NS_PER_S + ts.tv_nsec;
}

static void free_record(void *item)
{
    sl_record_free(item);
}

static void add_ns(_Atomic int64_t *c, int64_t ns)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + ns,
                          memory_order_relaxed);
}

/* The worker's idea of now, just read from the clock. */
static inline void set_now(run_worker *w, int64_t now)
{
    w->now_ns = now;
    w->now_stale = false;
}

/* ================================================================== */
/* Outcome: failure and forced stop                                    */
/* ================================================================== */

static void wake_monitor(sl__run *run)
{
    atomic_fetch_add(&run->monitor_word, 1);
    sl__futex_wake(&run->monitor_word, INT_MAX);
}

/*
 * The first failure or forced stop decides the outcome and the cause;
 * every call cancels the root context (only the first cancel counts).
 */
static void set_outcome(sl__run *run, enum run_outcome outcome, int code,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void set_outcome(sl__run *run, enum run_outcome outcome, int code,
                        const char *fmt, ...)
{
    int expected = OUTCOME_NONE;
    if (atomic_compare_exchange_strong(&run->outcome, &expected, (int)outcome)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(run->cause, sizeof(run->cause), fmt, ap);
        va_end(ap);
        atomic_store(&run->cause_ready, true);
        sl_ctx_cancel(run->root, code, "%s", run->cause);
    } else {
        sl_ctx_cancel(run->root, code, "cancelled");
    }
    wake_monitor(run);
}

/* A stage failed: "stage NAME: reason" cancels the run. */
static void fail_stage(run_worker *w, int code)
{
    run_stage *st = w->st;
    set_outcome(st->run, OUTCOME_FAILED, SL_ECANCELED, "stage %s: %s",
                st->conf->name, sl__stage_ctx_reason(&w->sc, code));
}

void sl__run_stop(sl__run *run, bool force)
{
    /* The time first: the monitor reads stop_requested, then stop_ns. */
    int64_t unset = 0;
    atomic_compare_exchange_strong(&run->stop_ns, &unset, sl__run_now());
    if (!atomic_exchange(&run->stop_requested, true))
        sl_ctx_cancel(run->sources, SL_ESTOPPED, "stop requested");
    if (force)
        set_outcome(run, OUTCOME_FORCED, SL_ECANCELED, "forced stop");
    wake_monitor(run);
}

bool sl__run_stopping(const sl__run *run)
{
    return atomic_load(&run->stop_requested);
}

sl_ctx *sl__run_context(sl__run *run)
{
    return run->root;
}

/* ================================================================== */
/* Outboxes                                                            */
/* ================================================================== */

static int outbox_push(outbox *ob, sl_record *rec, int64_t now)
{
    size_t n = atomic_load_explicit(&ob->n, memory_order_relaxed);
    if (n == ob->cap) {
        size_t ncap = ob->cap * 2;
        void **ni = realloc(ob->items, ncap * sizeof(*ni));
        if (ni == NULL) {
            sl_record_free(rec);
            return SL_ENOMEM;
        }
        ob->items = ni;
        ob->cap = ncap;
    }
    ob->items[n] = rec;
    if (n == 0)
        ob->first_ns = now;
    /* seq_cst: pairs with the monitor's "sleeping" flag (see monitor) */
    atomic_store(&ob->n, n + 1);
    return 0;
}

/* Hand everything in ob on, blocking while the reader's channel is full.
 * Caller holds ob->mu if ob->locked. */
static int outbox_send(run_worker *w, outbox *ob)
{
    size_t n = atomic_load_explicit(&ob->n, memory_order_relaxed);
    if (n == 0)
        return 0;
    int64_t t0 = sl__run_now();
    atomic_store_explicit(&w->wait_since_ns, t0, memory_order_relaxed);
    int rc = sl_chan_send_batch(ob->ch, w->st->run->root, ob->items, n);
    int64_t t1 = sl__run_now();
    atomic_store_explicit(&w->wait_since_ns, 0, memory_order_relaxed);
    add_ns(&w->blocked_send_ns, t1 - t0);
    sl__trace_wait(w->trace, SL__TRACE_BLOCKED, t0, t1);
    atomic_store_explicit(&ob->n, 0, memory_order_relaxed);
    set_now(w, t1);
    return rc;
}

/* Hand on every outbox of w. Returns 0 or the first error (cancel). */
static int flush_outboxes(run_worker *w)
{
    int first = 0;
    run_stage *st = w->st;
    if (st->n_out == 0)
        return 0;
    int prev = atomic_load_explicit(&w->counters.state, memory_order_relaxed);
    sl__worker_set_state(&w->counters, SL__WS_SENDING);
    for (size_t i = 0; i < st->n_out; i++) {
        outbox *ob = &w->outs[i];
        if (ob->locked)
            pthread_mutex_lock(&ob->mu);
        int rc = outbox_send(w, ob);
        if (ob->locked)
            pthread_mutex_unlock(&ob->mu);
        if (rc != 0 && first == 0)
            first = rc;
    }
    /* Time spent blocked handing records on is not a stall. */
    if (prev == SL__WS_PROCESSING || prev == SL__WS_FLUSHING)
        sl__run_pulse(w, w->now_ns);
    sl__worker_set_state(&w->counters, (sl__worker_state)prev);
    return first;
}

/* Free whatever is left (after a cancel). */
static void discard_outboxes(run_worker *w)
{
    for (size_t i = 0; i < w->st->n_out; i++) {
        outbox *ob = &w->outs[i];
        if (ob->locked)
            pthread_mutex_lock(&ob->mu);
        size_t n = atomic_load_explicit(&ob->n, memory_order_relaxed);
        for (size_t k = 0; k < n; k++)
            sl_record_free(ob->items[k]);
        atomic_store_explicit(&ob->n, 0, memory_order_relaxed);
        if (ob->locked)
            pthread_mutex_unlock(&ob->mu);
    }
}

/*
 * The monitor's part: hand on what a quiet source left behind, without
 * ever blocking — try-lock the outbox, try-send each record. Returns true
 * if something is still waiting there.
 */
static bool outbox_nudge(outbox *ob, int64_t now)
{
    if (atomic_load(&ob->n) == 0)
        return false;
    if (pthread_mutex_trylock(&ob->mu) != 0)
        return true;   /* the source is at it right now */
    size_t n = atomic_load_explicit(&ob->n, memory_order_relaxed);
    size_t sent = 0;
    if (n > 0 && now - ob->first_ns >= SL__OUTBOX_MAX_AGE_NS) {
        /* SL_ECLOSED frees the record too: gone either way. */
        while (sent < n && sl_chan_try_send(ob->ch, ob->items[sent]) != SL_EAGAIN)
            sent++;
        if (sent > 0) {
            memmove(ob->items, ob->items + sent, (n - sent) * sizeof(void *));
            atomic_store_explicit(&ob->n, n - sent, memory_order_relaxed);
        }
    }
    bool left = n - sent > 0;
    pthread_mutex_unlock(&ob->mu);
    return left;
}

/* ================================================================== */
/* Emit: the runtime's target for sl_emit                               */
/* ================================================================== */

/*
 * Acknowledgements (settings.state): a source's record gets its slot (the
 * source waits while its ring is full, its output handed on first); a
 * record emitted while another is processed takes that one's references.
 * Returns 0 to go on, 1 when rec was freed because every store downstream
 * has it already, or a negative code (rec freed).
 */
static int ack_track(run_worker *w, sl_record *rec)
{
    sl__ack_source *as = w->sc.ack_source;
    if (as != NULL) {
        if (sl__record_ack_count(rec) > 0)
            return 0;
        if (sl__acks_full(as)) {
            int rc = flush_outboxes(w);
            if (rc == 0)
                rc = sl__acks_wait_room(as, w->st->run->root);
            if (rc != 0) {
                sl_record_free(rec);
                return rc;
            }
        }
        int rc = sl__acks_attach(as, rec);
        if (rc <= 0) {
            sl_record_free(rec);
            return rc;
        }
        return 0;
    }
    const sl_record *cur = w->sc.current;
    if (cur != NULL && cur != rec && sl__record_ack_count(rec) == 0 &&
        sl__record_ack_inherit(rec, cur) != 0) {
        sl_record_free(rec);
        return SL_ENOMEM;
    }
    return 0;
}

/*
 * Queue rec for every reader (copies for all but the last: a tee), then
 * hand the outboxes on when full or old — except for an ordered stage,
 * whose output waits for its turn.
 */
static int run_emit(sl_stage_ctx *sc, sl_record *rec)
{
    run_worker *w = sc->target;
    run_stage *st = w->st;
    sl__run *run = st->run;

    if (sl_ctx_is_done(run->root)) {
        sl_record_free(rec);
        return SL_ECANCELED;
    }
    if (st->n_out == 0) {       /* nobody reads this stage: counted, gone */
        sl_record_free(rec);
        return 0;
    }
    if (run->acks != NULL) {
        int arc = ack_track(w, rec);
        if (arc != 0)
            return arc > 0 ? 0 : arc;
    }
    if (st->source) {
        if (st->limiter != NULL) {
            /* A stop ends the wait; a record read before it still goes. */
            int rc = sl_limiter_wait(st->limiter, run->sources, 1);
            if (rc != 0 && (sl_ctx_is_done(run->root) ||
                            !sl_ctx_is_done(run->sources))) {
                sl_record_free(rec);
                return rc;
            }
        }
        set_now(w, sl__run_now());
        sl__run_pulse(w, w->now_ns);
    }
    int rc = 0;
    for (size_t i = 0; i < st->n_out; i++) {
        sl_record *r = rec;
        if (i + 1 < st->n_out) {
            r = sl_record_copy(rec);
            if (r == NULL) {
                sl_record_free(rec);
                return SL_ENOMEM;
            }
        }
        if (run->acks != NULL && st->n_out > 1 &&
            sl__record_ack_count(r) > 0) {
            /* A tee: each copy counts for its branch's stores only, and
             * a branch whose stores all have it gets none. */
            sl__record_ack_narrow(r, sl__acks_reach(run->acks,
                                                    st->outs[i]->index));
            if (sl__record_ack_count(r) == 0) {
                sl_record_free(r);
                continue;
            }
        }
        outbox *ob = &w->outs[i];
        if (ob->locked)
            pthread_mutex_lock(&ob->mu);
        int prc = outbox_push(ob, r, w->now_ns);
        if (ob->locked)
            pthread_mutex_unlock(&ob->mu);
        if (prc != 0) {
            if (r != rec)
                sl_record_free(rec);
            return prc;
        }
    }
    /* seq_cst after outbox_push's store of n: pairs with the monitor's
     * store of monitor_sleeping and its re-check of the outboxes. */
    if (st->source && atomic_load(&run->monitor_sleeping))
        wake_monitor(run);
    if (st->ordered)
        return 0;
    outbox *first = &w->outs[0];
    size_t n = atomic_load_explicit(&first->n, memory_order_relaxed);
    if (n >= run->batch ||
        (n > 0 && w->now_ns - first->first_ns >= SL__OUTBOX_MAX_AGE_NS))
        rc = flush_outboxes(w);
    return rc;
}

/* ================================================================== */
/* Dead letters                                                        */
/* ================================================================== */

static int dump_string(sl_buf *b, const char *s, size_t len)
{
    sl_value *v = sl_value_string(s, len);
    if (v == NULL)
        return SL_ENOMEM;
    int rc = sl_json_dump(v, b);
    sl_value_unref(v);
    return rc;
}

static int buf_puts(sl_buf *b, const char *s)
{
    return sl_buf_append(b, s, strlen(s));
}

/*
 * One JSON line: {"stage":..,"error":..,"record":..,"position":{..}}. The
 * record is its fields, or its payload as a string when it has no fields
 * yet (a parse stage's input), or null if the stage already gave it away.
 */
static int dead_letter_line(const char *stage, const char *error,
                            const sl_record *rec, sl_buf *b)
{
    char num[64];
    int rc = 0;
    rc |= buf_puts(b, "{\"stage\":");
    rc |= dump_string(b, stage, strlen(stage));
    rc |= buf_puts(b, ",\"error\":");
    rc |= dump_string(b, error, strlen(error));
    rc |= buf_puts(b, ",\"record\":");
    if (rec == NULL) {
        rc |= buf_puts(b, "null");
    } else {
        const sl_value *fields = sl_record_fields(rec);
        size_t plen = 0;
        const char *payload = sl_record_payload(rec, &plen);
        if (sl_object_len(fields) > 0 || payload == NULL || plen == 0)
            rc |= sl_json_dump(fields, b);
        else
            rc |= dump_string(b, payload, plen);
    }
    rc |= buf_puts(b, ",\"position\":");
    const sl_position *pos = rec != NULL ? sl_record_position(rec) : NULL;
    if (pos == NULL) {
        rc |= buf_puts(b, "null");
    } else {
        rc |= buf_puts(b, "{\"source\":");
        if (pos->source != NULL)
            rc |= dump_string(b, pos->source, strlen(pos->source));
        else
            rc |= buf_puts(b, "null");
        rc |= buf_puts(b, ",\"locator\":");
        if (pos->locator != NULL)
            rc |= dump_string(b, pos->locator, strlen(pos->locator));
        else
            rc |= buf_puts(b, "null");
        snprintf(num, sizeof(num), ",\"offset\":%lld,\"seq\":%lld}",
                 (long long)pos->offset, (long long)pos->seq);
        rc |= buf_puts(b, num);
    }
    rc |= buf_puts(b, "}\n");
    return rc != 0 ? SL_ENOMEM : 0;
}

/* strerror(e) with a lower-case first letter, as sluice writes its
 * messages ("no space left on device"), into buf. Returns buf. */
static const char *errno_text(int e, char *buf, size_t size)
{
    char tmp[128];
    snprintf(buf, size, "%s", strerror_r(e, tmp, sizeof(tmp)));  /* GNU */
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}

/*
 * Append the line under the writer lock: whole lines, one at a time, each
 * handed to the operating system before the record counts as dead-lettered.
 * A write that fails part-way (a full disk) is cut back off the file, so
 * the file always ends with its last whole line. Returns 0, SL_ENOMEM, or
 * SL_EIO with *err the errno value.
 */
static int dead_letter_write(sl__run *run, const char *stage,
                             const char *error, const sl_record *rec, int *err)
{
    sl_buf b;
    sl_buf_init(&b);
    int rc = dead_letter_line(stage, error, rec, &b);
    if (rc != 0)
        goto out;
    pthread_mutex_lock(&run->dl_mu);
    off_t start = lseek(run->dl_fd, 0, SEEK_END);
    size_t done = 0;
    while (done < b.len) {
        ssize_t n = write(run->dl_fd, b.data + done, b.len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *err = n < 0 ? errno : ENOSPC;   /* 0 bytes written: no room */
            rc = SL_EIO;
            if (done > 0 && start >= 0 && ftruncate(run->dl_fd, start) < 0)
                *err = errno;
            break;
        }
        done += (size_t)n;
    }
    pthread_mutex_unlock(&run->dl_mu);
out:
    sl_buf_fini(&b);
    return rc;
}

/*
 * The runtime's target for sl_record_reject: a record the stage held and
 * gave up on meets the stage's on_error policy, as a record whose
 * process() failed would (sl_record_reject has counted it in errors).
 * Under fail and retry the stage fails its call with code.
 */
static int run_reject(sl_stage_ctx *sc, sl_record *rec, int code,
                      const char *reason)
{
    run_worker *w = sc->target;
    run_stage *st = w->st;
    sl__run *run = st->run;
    int rc = 0;
    switch (st->conf->on_error) {
    case SL_ON_ERROR_SKIP:
        break;
    case SL_ON_ERROR_DEAD_LETTER: {
        int derr = 0;
        int drc = dead_letter_write(run, st->conf->name, reason, rec, &derr);
        if (drc != 0) {
            char etext[128];
            set_outcome(run, OUTCOME_FAILED, SL_ECANCELED,
                        "stage %s: dead letter file %s: %s", st->conf->name,
                        run->dl_path, drc == SL_EIO
                            ? errno_text(derr, etext, sizeof(etext))
                            : sl_strerror(drc));
            rc = sl_stage_error(sc, SL_EIO, "dead letter file %s: cannot "
                                "write", run->dl_path);
        }
        break;
    }
    case SL_ON_ERROR_FAIL:
    case SL_ON_ERROR_RETRY:
    default:
        rc = sl_stage_error(sc, code, "%s", reason);
        break;
    }
    sl_record_free(rec);
    return rc;
}

/* ================================================================== */
/* Processing one record                                               */
/* ================================================================== */

/*
 * One call of process() with the engine-applied per-record timeout: the
 * stage sees a child context with the deadline as sl_stage_context().
 */
static int call_process(run_worker *w, sl_record *rec)
{
    run_stage *st = w->st;
    if (st->timeout_ns <= 0)
        return st->desc->process(w->state, &w->sc, rec);
    sl_ctx *call = NULL;
    int rc = sl_ctx_create_timeout(st->run->root, st->timeout_ns, &call);
    if (rc != 0)
        return sl_stage_error(&w->sc, rc, "cannot set up the timeout");
    w->sc.ctx = call;
    rc = st->desc->process(w->state, &w->sc, rec);
    w->sc.ctx = st->run->root;
    if (rc < 0 && sl_ctx_err(call) == SL_EDEADLINE &&
        !sl_ctx_is_done(st->run->root)) {
        char d[32];
        sl__format_duration(st->timeout_ns, d, sizeof(d));
        if (w->sc.err[0] == '\0')
            sl_stage_error(&w->sc, SL_ETIMEDOUT, "timed out after %s", d);
        rc = SL_ETIMEDOUT;
    }
    sl_ctx_destroy(call);
    return rc;
}

/* Call process() once, timing it, with the breaker around it. Returns its
 * result; *consumed says whether the stage handed rec on anyway. */
static int attempt(run_worker *w, sl_record *rec, bool *consumed)
{
    run_stage *st = w->st;
    sl__stage_ctx_begin_record(&w->sc, rec);
    if (st->breaker != NULL && sl_breaker_allow(st->breaker) != 0) {
        sl__stage_ctx_end_record(&w->sc);
        *consumed = false;
        return sl_stage_error(&w->sc, SL_EBREAKER, "circuit breaker open");
    }
    /* Timed records (see metrics/histogram.h) start at now_ns when it was
     * read after the last receive or timed call, saving a clock read. */
    bool timed = sl__lat_begin(&w->lat);
    if (timed && w->now_stale)
        set_now(w, sl__run_now());
    int64_t t0 = w->now_ns;
    sl__watch_hold(&w->watch, rec);
    sl__run_pulse(w, t0);
    sl__worker_set_state(&w->counters, SL__WS_PROCESSING);
    int rc = call_process(w, rec);
    if (timed) {
        int64_t t1 = sl__run_now();
        set_now(w, t1);
        sl__lat_end(&w->lat, &w->counters.latency, t1 - t0);
    } else {
        w->now_stale = true;
    }
    *consumed = sl__stage_ctx_end_record(&w->sc);
    if (st->breaker != NULL)
        sl_breaker_record(st->breaker, rc >= 0);
    return rc;
}

/*
 * Process one input record and apply the stage's on_error policy when
 * process() fails. Takes ownership of rec. Returns STEP_OK, or STEP_STOP
 * when the run is cancelled or this stage just failed it.
 */
static int process_one(run_worker *w, sl_record *rec)
{
    run_stage *st = w->st;
    sl__run *run = st->run;

    sl__count(&w->counters.records_in, 1);
    if (!w->sc.sizes_off)
        sl__count(&w->counters.bytes_in,
                  sl__record_bytes(&w->sc.size_in, rec));
    w->dirty = true;
    if (st->limiter != NULL) {
        sl__worker_set_state(&w->counters, SL__WS_THROTTLED);
        if (sl_limiter_wait(st->limiter, run->root, 1) != 0) {
            sl_record_free(rec);
            return STEP_STOP;
        }
        set_now(w, sl__run_now());   /* the wait is not the stage's latency */
    }
    bool consumed = false;
    int rc = attempt(w, rec, &consumed);
    if (rc >= 0)
        return STEP_OK;
    if (sl_ctx_is_done(run->root)) {   /* torn down: not the stage's fault */
        if (!consumed)
            sl_record_free(rec);
        return STEP_STOP;
    }
    if (st->conf->on_error == SL_ON_ERROR_RETRY && !consumed) {
        for (int a = 1; a < st->retry.max_attempts && rc < 0 && !consumed;
             a++) {
            sl__worker_set_state(&w->counters, SL__WS_RETRYING);
            if (sl_retry_sleep(&st->retry, run->clock, run->root, a, &w->rng) != 0)
                break;
            sl__count(&w->counters.retries, 1);
            set_now(w, sl__run_now());
            rc = attempt(w, rec, &consumed);
        }
        if (rc >= 0)
            return STEP_OK;
        if (sl_ctx_is_done(run->root)) {
            if (!consumed)
                sl_record_free(rec);
            return STEP_STOP;
        }
    }
    sl__trace_error(w->trace, w->now_ns, sl__stage_ctx_reason(&w->sc, rc));
    sl__count(&w->counters.errors, 1);
    switch (st->conf->on_error) {
    case SL_ON_ERROR_SKIP:
        break;
    case SL_ON_ERROR_DEAD_LETTER: {
        int derr = 0;
        int drc = dead_letter_write(run, st->conf->name,
                                    sl__stage_ctx_reason(&w->sc, rc),
                                    consumed ? NULL : rec, &derr);
        if (drc != 0) {
            char etext[128];
            set_outcome(run, OUTCOME_FAILED, SL_ECANCELED,
                        "stage %s: dead letter file %s: %s", st->conf->name,
                        run->dl_path, drc == SL_EIO
                            ? errno_text(derr, etext, sizeof(etext))
                            : sl_strerror(drc));
            if (!consumed)
                sl_record_free(rec);
            return STEP_STOP;
        }
        break;
    }
    case SL_ON_ERROR_FAIL:
    case SL_ON_ERROR_RETRY:   /* retries ran out: the fallback is fail */
    default:
        fail_stage(w, rc);
        if (!consumed)
            sl_record_free(rec);
        return STEP_STOP;
    }
    if (!consumed)
        sl_record_free(rec);
    return STEP_OK;
}

/* The stage's flush(): after processing, when the input runs dry and at
 * its end. Skipped when nothing was processed since the last one. */
static int stage_flush(run_worker *w, bool final)
{
    run_stage *st = w->st;
    if (st->desc->flush == NULL || (!w->dirty && !final))
        return 0;
    if (sl_ctx_is_done(st->run->root))
        return SL_ECANCELED;
    sl__stage_ctx_clear_error(&w->sc);
    sl__worker_set_state(&w->counters, SL__WS_FLUSHING);
    set_now(w, sl__run_now());
    sl__run_pulse(w, w->now_ns);
    int rc = st->desc->flush(w->state, &w->sc);
    set_now(w, sl__run_now());
    w->dirty = false;
    if (rc < 0) {
        if (!sl_ctx_is_done(st->run->root))
            fail_stage(w, rc);
        return rc;
    }
    return 0;
}

/* Input ran dry: flush(), then hand on everything queued. */
static int go_dry(run_worker *w)
{
    int rc = stage_flush(w, false);
    if (rc != 0)
        return rc;
    return flush_outboxes(w);
}

/* Receive a batch, counting the wait as idle time. */
static int timed_recv(run_worker *w, sl_record **items, size_t *got,
                      pthread_mutex_t *mu)
{
    run_stage *st = w->st;
    sl__worker_set_state(&w->counters, SL__WS_RECEIVING);
    int64_t t0 = sl__run_now();
    atomic_store_explicit(&w->wait_since_ns, t0, memory_order_relaxed);
    if (mu != NULL)
        pthread_mutex_lock(mu);
    int rc = sl_chan_recv_batch(st->in, st->run->root, (void **)items,
                                st->run->batch, got);
    if (mu != NULL)
        pthread_mutex_unlock(mu);
    int64_t t1 = sl__run_now();
    atomic_store_explicit(&w->wait_since_ns, 0, memory_order_relaxed);
    add_ns(&w->idle_recv_ns, t1 - t0);
    sl__trace_wait(w->trace, SL__TRACE_IDLE, t0, t1);
    set_now(w, t1);
    return rc;
}

/*
 * Next batch for an unordered consumer. When the input is empty, flush()
 * and hand everything on first, so nothing waits in an outbox while this
 * worker sleeps. With several workers, receiving is serialised so that
 * "the channel has items" stays true until this worker takes them.
 */
static int consumer_recv(run_worker *w, sl_record **items, size_t *got)
{
    run_stage *st = w->st;
    int rc;
    *got = 0;
    if (st->n_workers == 1) {
        if (sl_chan_len(st->in) == 0) {
            rc = go_dry(w);
            if (rc != 0)
                return rc;
        }
        return timed_recv(w, items, got, NULL);
    }
    if (pthread_mutex_trylock(&st->recv_mu) == 0) {
        if (sl_chan_len(st->in) > 0) {
            rc = sl_chan_recv_batch(st->in, st->run->root, (void **)items,
                                    st->run->batch, got);
            pthread_mutex_unlock(&st->recv_mu);
            return rc;
        }
        pthread_mutex_unlock(&st->recv_mu);
    }
    rc = go_dry(w);
    if (rc != 0)
        return rc;
    return timed_recv(w, items, got, &st->recv_mu);
}

static void free_records(sl_record **items, size_t from, size_t n)
{
    for (size_t i = from; i < n; i++)
        sl_record_free(items[i]);
}

/* Process a batch; STEP_STOP frees the rest. */
static int process_batch(run_worker *w, sl_record **items, size_t n)
{
    run_stage *st = w->st;
    /* Fetch ahead: record i + 2 itself, then the fields of i + 1 (whose
     * record arrived meanwhile), while record i is processed. */
    if (n > 0)
        sl__record_prefetch_head(items[0]);
    if (n > 1)
        sl__record_prefetch_head(items[1]);
    if (n > 0)
        sl__record_prefetch_fields(items[0]);
    for (size_t i = 0; i < n; i++) {
        if (i + 2 < n)
            sl__record_prefetch_head(items[i + 2]);
        if (i + 1 < n)
            sl__record_prefetch_fields(items[i + 1]);
        if (sl_ctx_is_done(st->run->root)) {
            free_records(items, i, n);
            return STEP_STOP;
        }
        if (process_one(w, items[i]) == STEP_STOP) {   /* it took items[i] */
            free_records(items, i + 1, n);
            return STEP_STOP;
        }
        if (!st->ordered && st->n_out > 0) {
            outbox *ob = &w->outs[0];
            if (atomic_load_explicit(&ob->n, memory_order_relaxed) > 0 &&
                w->now_ns - ob->first_ns >= SL__OUTBOX_MAX_AGE_NS &&
                flush_outboxes(w) != 0) {
                free_records(items, i + 1, n);
                return STEP_STOP;
            }
        }
    }
    return STEP_OK;
}

static void consumer_loop(run_worker *w)
{
    sl_record *items[SL__OUTBOX_BATCH];
    size_t got;
    for (;;) {
        int rc = consumer_recv(w, items, &got);
        if (rc == SL_ECLOSED)
            break;
        if (rc != 0)
            return;          /* cancelled (or a flush failure) */
        if (process_batch(w, items, got) == STEP_STOP)
            return;
    }
    /* End of input: final flush(), everything handed on. */
    if (stage_flush(w, true) == 0)
        flush_outboxes(w);
}

/* ------------------------------------------------------------------ */
/* Ordered consumers                                                   */
/* ------------------------------------------------------------------ */

static void turn_wake(sl_ctx_waiter *cw)
{
    run_stage *st = cw->arg;
    atomic_fetch_add(&st->turn_word, 1);
    sl__futex_wake(&st->turn_word, INT_MAX);
}

/* Block until ticket's turn comes (0) or the run is cancelled. */
static int wait_turn(run_worker *w, uint64_t ticket)
{
    run_stage *st = w->st;
    if (atomic_load(&st->turn) == ticket)
        return 0;
    sl__worker_set_state(&w->counters, SL__WS_ORDERING);
    sl_ctx_waiter cw = {.wake = turn_wake, .arg = st};
    if (!sl_ctx_add_waiter(st->run->root, &cw))
        return sl_ctx_err(st->run->root);
    int rc = 0;
    for (;;) {
        uint32_t seen = atomic_load(&st->turn_word);
        if (atomic_load(&st->turn) == ticket)
            break;
        if (sl_ctx_is_done(st->run->root)) {
            rc = sl_ctx_err(st->run->root);
            break;
        }
        sl__futex_wait(&st->turn_word, seen, INT64_MAX);
    }
    sl_ctx_remove_waiter(st->run->root, &cw);
    return rc;
}

static void pass_turn(run_stage *st, uint64_t ticket)
{
    atomic_store(&st->turn, ticket + 1);
    atomic_fetch_add(&st->turn_word, 1);
    sl__futex_wake(&st->turn_word, INT_MAX);
}

/*
 * Workers take batches in turn (a ticket each, under recv_mu), process
 * them in parallel into their outboxes, and hand the outputs on in ticket
 * order. Each worker holds at most one batch's output, so the reordering
 * needs no unbounded buffer. At the end of input each worker takes one
 * more ticket for its final flush().
 */
static void ordered_loop(run_worker *w)
{
    run_stage *st = w->st;
    sl_record *items[SL__OUTBOX_BATCH];
    for (;;) {
        size_t got = 0;
        sl__worker_set_state(&w->counters, SL__WS_RECEIVING);
        int64_t t0 = sl__run_now();
        atomic_store_explicit(&w->wait_since_ns, t0, memory_order_relaxed);
        pthread_mutex_lock(&st->recv_mu);
        uint64_t ticket = st->next_ticket++;
        int rc = sl_chan_recv_batch(st->in, st->run->root, (void **)items,
                                    st->run->batch, &got);
        pthread_mutex_unlock(&st->recv_mu);
        set_now(w, sl__run_now());
        atomic_store_explicit(&w->wait_since_ns, 0, memory_order_relaxed);
        add_ns(&w->idle_recv_ns, w->now_ns - t0);
        sl__trace_wait(w->trace, SL__TRACE_IDLE, t0, w->now_ns);
        bool final = rc == SL_ECLOSED;
        if (rc != 0 && !final)
            return;
        if (!final && process_batch(w, items, got) == STEP_STOP)
            return;
        if ((final || sl_chan_len(st->in) == 0) && stage_flush(w, final) != 0)
            return;
        if (wait_turn(w, ticket) != 0)
            return;
        rc = flush_outboxes(w);
        pass_turn(st, ticket);
        if (rc != 0 || final)
            return;
    }
}

/* ================================================================== */
/* Workers                                                             */
/* ================================================================== */

static void source_body(run_worker *w)
{
    run_stage *st = w->st;
    sl__run *run = st->run;
    sl__worker_set_state(&w->counters, SL__WS_PROCESSING);
    sl__run_pulse(w, sl__run_now());
    sl__stage_ctx_clear_error(&w->sc);
    int rc = st->desc->run(w->state, &w->sc);
    if (rc >= 0 || sl_ctx_is_done(run->root))
        return;
    /* Asked to stop and reporting it: a clean end. */
    if (sl_ctx_is_done(run->sources) &&
        (rc == SL_ESTOPPED || rc == SL_ECANCELED ||
         rc == sl_ctx_err(run->sources)))
        return;
    fail_stage(w, rc);
}

/* Tell each reader one producer less; the last one closes its input. */
static void release_outputs(run_worker *w)
{
    run_stage *st = w->st;
    if (sl_ctx_is_done(st->run->root))
        discard_outboxes(w);
    else if (flush_outboxes(w) != 0)
        discard_outboxes(w);
    for (size_t i = 0; i < st->n_out; i++) {
        run_stage *reader = st->outs[i];
        if (atomic_fetch_sub(&reader->producers, 1) == 1)
            sl_chan_close(reader->in);
    }
}

/*
 * Before destroy() frees a breaker the stage asked us to watch: keep its
 * last figures for the snapshots still to come, and stop reading it.
 */
static void detach_breaker(run_worker *w)
{
    sl_breaker *b = atomic_load(&w->counters.breaker);
    if (b == NULL)
        return;
    sl__run *run = w->st->run;
    pthread_mutex_lock(&run->breaker_mu);
    w->breaker_state = sl_breaker_get_state(b);
    w->breaker_opens = sl_breaker_opens(b);
    w->breaker_rejections = sl_breaker_rejections(b);
    w->breaker_detached = true;
    atomic_store(&w->counters.breaker, NULL);
    pthread_mutex_unlock(&run->breaker_mu);
}

static void *worker_main(void *arg)
{
    run_worker *w = arg;
    run_stage *st = w->st;
    sl__run *run = st->run;
    bool init_called = false;

    set_now(w, sl__run_now());
    sl__trace_worker_begin(w->trace, w->now_ns);
    if (!sl_ctx_is_done(run->root)) {
        init_called = true;
        if (st->desc->init != NULL) {
            sl__stage_ctx_clear_error(&w->sc);
            int rc = st->desc->init(w->state, &w->sc);
            if (rc < 0) {
                if (!sl_ctx_is_done(run->root))
                    fail_stage(w, rc);
                goto out;
            }
        }
        if (st->source)
            source_body(w);
        else if (st->ordered)
            ordered_loop(w);
        else
            consumer_loop(w);
    }
out:
    sl__lat_finish(&w->lat, &w->counters.latency);
    release_outputs(w);
    detach_breaker(w);
    if (init_called && st->desc->destroy != NULL)
        st->desc->destroy(w->state);
    int64_t done = sl__run_now();
    sl__trace_worker_end(w->trace, done);
    atomic_store(&w->done_ns, done);
    sl__worker_set_state(&w->counters, SL__WS_DONE);
    if (atomic_fetch_sub(&run->live_workers, 1) == 1)
        wake_monitor(run);
    return NULL;
}

/* ================================================================== */
/* Monitor                                                             */
/* ================================================================== */

/*
 * Periodic snapshots measure throughput over the interval since the last
 * one; the final snapshot over the whole run.
 */
static void write_snapshot(sl__run *run, sl__run_status status)
{
    if (run->metrics_file == NULL && run->history_file == NULL)
        return;
    bool final = status != SL__RUN_RUNNING;
    sl__run_snapshot snap;
    if (sl__run_snapshot_take(run, run->has_last && !final ? &run->last : NULL,
                              &snap) != 0)
        return;
    snap.status = status;
    if (run->metrics_file != NULL &&
        sl__run_snapshot_write(&snap, run->metrics_file) != 0)
        sl__log(SL_LOG_WARN, NULL, "cannot write metrics file %s: %s",
                run->metrics_file, strerror(errno));
    if (run->history_file != NULL &&
        sl__run_snapshot_append(&snap, run->history_file) != 0)
        sl__log(SL_LOG_WARN, NULL, "cannot append to metrics history %s: %s",
                run->history_file, strerror(errno));
    if (run->has_last)
        sl__run_snapshot_fini(&run->last);
    run->last = snap;
    run->has_last = true;
}

/* Report (or fail on) workers stuck inside process()/flush(): the
 * watchdog (watchdog.c) reports, on_stall decides. */
static void check_stalls(sl__run *run)
{
    char cause[512];
    if (sl__run_watchdog(run, cause, sizeof(cause)) > 0 &&
        run->cfg->settings.on_stall == SL_ON_STALL_FAIL)
        set_outcome(run, OUTCOME_FAILED, SL_ECANCELED, "%s", cause);
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/*
 * The monitor: deadline, shutdown timeout, stall watch, periodic metrics
 * and progress, and quiet sources' outboxes. It sleeps until the next of
 * those is due; a source that queues a record while the monitor sleeps
 * long wakes it (outbox_push and the "sleeping" flag are seq_cst, so one of
 * the two sides always sees the other).
 */
static void *monitor_main(void *arg)
{
    sl__run *run = arg;
    const sl_config *cfg = run->cfg;
    int64_t start = atomic_load(&run->start_ns);
    int64_t deadline_at = cfg->settings.deadline_ns > 0
                              ? start + cfg->settings.deadline_ns : INT64_MAX;
    int64_t next_metrics = run->metrics_file != NULL || run->history_file != NULL
                               ? start + run->metrics_interval_ns : INT64_MAX;
    int64_t next_progress = run->progress != NULL
                                ? start + run->progress_interval_ns : INT64_MAX;
    int64_t stall_every = cfg->settings.stall_timeout_ns > 0
                              ? min64(cfg->settings.stall_timeout_ns / 4,
                                      SL_NS_PER_S) : 0;
    int64_t next_stall = stall_every > 0 ? start + stall_every : INT64_MAX;
    int64_t next_trace = run->trace != NULL ? start : INT64_MAX;
    bool deadline_hit = false, timeout_hit = false;

    while (atomic_load(&run->live_workers) > 0) {
        int64_t now = sl__run_now();
        if (!deadline_hit && now >= deadline_at) {
            char d[32];
            sl__format_duration(cfg->settings.deadline_ns, d, sizeof(d));
            set_outcome(run, OUTCOME_FAILED, SL_EDEADLINE,
                        "deadline exceeded (%s)", d);
            deadline_hit = true;
        }
        int64_t timeout_at = INT64_MAX;
        if (atomic_load(&run->stop_requested) && !timeout_hit) {
            timeout_at = atomic_load(&run->stop_ns) +
                         cfg->settings.shutdown_timeout_ns;
            if (now >= timeout_at) {
                char d[32];
                sl__format_duration(cfg->settings.shutdown_timeout_ns, d,
                                    sizeof(d));
                set_outcome(run, OUTCOME_FORCED, SL_ECANCELED,
                            "shutdown timeout (%s) exceeded", d);
                timeout_hit = true;
                timeout_at = INT64_MAX;
            }
        }
        if (now >= next_stall) {
            check_stalls(run);
            next_stall = now + stall_every;
        }
        if (now >= next_trace)
            next_trace = sl__trace_sample(run, now);
        if (now >= next_metrics) {
            write_snapshot(run, SL__RUN_RUNNING);
            next_metrics = now + run->metrics_interval_ns;
        }
        if (now >= next_progress) {
            run->progress(run->progress_arg, run);
            next_progress = now + run->progress_interval_ns;
        }
        bool pending = false;
        for (size_t s = 0; s < run->n_stages; s++) {
            run_stage *st = &run->stages[s];
            if (!st->source)
                continue;
            for (int i = 0; i < st->n_workers; i++)
                for (size_t o = 0; o < st->n_out; o++)
                    pending |= outbox_nudge(&st->workers[i].outs[o], now);
        }
        int64_t wake_at = min64(min64(deadline_hit ? INT64_MAX : deadline_at,
                                      timeout_at),
                                min64(min64(next_metrics, next_progress),
                                      min64(next_stall, next_trace)));
        if (pending)
            wake_at = min64(wake_at, now + SL__OUTBOX_MAX_AGE_NS);
        uint32_t seen = atomic_load(&run->monitor_word);
        if (!pending) {
            atomic_store(&run->monitor_sleeping, true);
            /* re-check after announcing the sleep: a source that queued a
             * record before seeing the flag is caught here */
            for (size_t s = 0; s < run->n_stages && !pending; s++) {
                run_stage *st = &run->stages[s];
                if (!st->source)
                    continue;
                for (int i = 0; i < st->n_workers; i++)
                    for (size_t o = 0; o < st->n_out; o++)
                        if (atomic_load(&st->workers[i].outs[o].n) > 0)
                            pending = true;
            }
            if (pending)
                wake_at = min64(wake_at, now + SL__OUTBOX_MAX_AGE_NS);
        }
        if (atomic_load(&run->live_workers) > 0)
            sl__futex_wait(&run->monitor_word, seen, wake_at);
        atomic_store(&run->monitor_sleeping, false);
    }
    return NULL;
}

/* ================================================================== */
/* Building a run                                                      */
/* ================================================================== */

static bool declares_option(const sl_stage_desc *d, const char *key)
{
    if (d->options == NULL)
        return false;
    for (const sl_option *o = d->options; o->key != NULL; o++)
        if (strcmp(o->key, key) == 0)
            return true;
    return false;
}

/* Depth-first search for a cycle through stage i. */
static bool has_cycle(const sl__run_opts *opts, size_t i, unsigned char *mark)
{
    if (mark[i] == 1)
        return true;
    if (mark[i] == 2)
        return false;
    mark[i] = 1;
    for (size_t k = 0; k < opts->stages[i].n_inputs; k++)
        if (has_cycle(opts, opts->stages[i].inputs[k], mark))
            return true;
    mark[i] = 2;
    return false;
}

/* Check the wiring the runtime relies on. */
static int check_wiring(const sl__run_opts *opts, sl_diag *diag)
{
    const char *file = opts->cfg->file;
    int rc = 0;
    if (opts->n_stages == 0) {
        sl__diag_add(diag, file, 0, 0, "the pipeline has no stages");
        return SL_ECONFIG;
    }
    for (size_t i = 0; i < opts->n_stages; i++) {
        const sl__run_stage *s = &opts->stages[i];
        const sl_stage_conf *c = s->conf;
        if (c == NULL || c->desc == NULL || c->name == NULL) {
            sl__diag_add(diag, file, 0, 0, "stage %zu has no type", i);
            rc = SL_ECONFIG;
            continue;
        }
        bool source = c->desc->kind == SL_STAGE_SOURCE;
        if (source && s->n_inputs > 0) {
            sl__diag_add(diag, file, c->pos.line, c->pos.col,
                         "stage %s: a %s stage takes no input", c->name,
                         c->desc->name);
            rc = SL_ECONFIG;
        }
        if (!source && s->n_inputs == 0) {
            sl__diag_add(diag, file, c->pos.line, c->pos.col,
                         "stage %s: a %s stage needs an input", c->name,
                         c->desc->name);
            rc = SL_ECONFIG;
        }
        for (size_t k = 0; k < s->n_inputs; k++) {
            size_t j = s->inputs[k];
            if (j >= opts->n_stages) {
                sl__diag_add(diag, file, c->pos.line, c->pos.col,
                             "stage %s: input %zu does not exist", c->name, j);
                rc = SL_ECONFIG;
            } else if (opts->stages[j].conf != NULL &&
                       opts->stages[j].conf->desc != NULL &&
                       opts->stages[j].conf->desc->kind == SL_STAGE_SINK) {
                sl__diag_add(diag, file, c->pos.line, c->pos.col,
                             "stage %s: cannot read from %s, a sink",
                             c->name, opts->stages[j].conf->name);
                rc = SL_ECONFIG;
            }
        }
        if (c->on_error == SL_ON_ERROR_DEAD_LETTER &&
            opts->cfg->dead_letter.path == NULL) {
            sl__diag_add(diag, file, c->pos.line, c->pos.col,
                         "stage %s: on_error: dead_letter needs "
                         "dead_letter.path", c->name);
            rc = SL_ECONFIG;
        }
    }
    if (rc != 0)
        return rc;
    unsigned char *mark = calloc(opts->n_stages, 1);
    if (mark == NULL)
        return SL_ENOMEM;
    for (size_t i = 0; i < opts->n_stages; i++) {
        if (has_cycle(opts, i, mark)) {
            sl__diag_add(diag, file, 0, 0, "stage %s: its inputs form a cycle",
                         opts->stages[i].conf->name);
            rc = SL_ECONFIG;
            break;
        }
    }
    free(mark);
    return rc;
}

/* Fill one worker's options from the stage's YAML (or the test text). */
static int fill_options(sl__run *run, run_stage *st, run_worker *w,
                        sl_diag *diag)
{
    if (st->desc->options == NULL)
        return 0;
    w->options_filled = true;
    if (st->conf->node != NULL)
        return sl__config_stage_options(run->cfg, st->conf, w->state, diag);
    return sl__options_apply_text(st->desc->options,
                                  st->options_yaml != NULL ? st->options_yaml
                                                           : "{}",
                                  st->conf->name, w->state, diag);
}

static int setup_policies(sl__run *run, run_stage *st, sl_diag *diag)
{
    const sl_stage_conf *c = st->conf;
    const char *file = run->cfg->file;
    if (c->rate_limit.set && !declares_option(st->desc, "rate_limit")) {
        int rc = sl_limiter_create(c->rate_limit.rate,
                                   c->rate_limit.burst > 0 ? c->rate_limit.burst : 1,
                                   run->clock, &st->limiter);
        if (rc != 0) {
            sl__diag_add(diag, file, c->pos.line, c->pos.col,
                         "stage %s: bad rate_limit: %s", c->name,
                         sl_strerror(rc));
            return rc == SL_ENOMEM ? rc : SL_ECONFIG;
        }
    }
    if (c->breaker.set && !st->source &&
        !declares_option(st->desc, "circuit_breaker")) {
        sl_breaker_config bc = {
            .failures = c->breaker.failures > 0 ? (uint32_t)c->breaker.failures : 5,
            .cooldown_ns = c->breaker.cooldown_ns,
            .clock = run->clock,
        };
        int rc = sl_breaker_create(&bc, &st->breaker);
        if (rc != 0) {
            sl__diag_add(diag, file, c->pos.line, c->pos.col,
                         "stage %s: bad circuit_breaker: %s", c->name,
                         sl_strerror(rc));
            return rc == SL_ENOMEM ? rc : SL_ECONFIG;
        }
    }
    if (c->timeout_ns > 0 && !st->source && !declares_option(st->desc, "timeout"))
        st->timeout_ns = c->timeout_ns;
    sl_retry_policy_default(&st->retry);
    if (c->retry.set) {
        if (c->retry.attempts > 0)
            st->retry.max_attempts = (int)c->retry.attempts;
        if (c->retry.backoff_ns > 0)
            st->retry.initial_ns = c->retry.backoff_ns;
        if (c->retry.max_backoff_ns > 0)
            st->retry.max_backoff_ns = c->retry.max_backoff_ns;
        if (st->retry.max_backoff_ns < st->retry.initial_ns)
            st->retry.max_backoff_ns = st->retry.initial_ns;
    }
    if (sl_retry_policy_check(&st->retry) != 0) {
        sl__diag_add(diag, file, c->pos.line, c->pos.col,
                     "stage %s: bad retry settings", c->name);
        return SL_ECONFIG;
    }
    return 0;
}

static int setup_worker(sl__run *run, run_stage *st, int i, sl_diag *diag)
{
    run_worker *w = &st->workers[i];
    w->st = st;
    w->index = i;
    w->lat.off = run->metrics_off;
    w->rng = (uint64_t)sl__run_now() ^ ((uint64_t)(st->index + 1) << 32) ^
             (uint64_t)i;
    sl__stage_ctx_init(&w->sc, st->conf->name, st->desc->name, st->desc->kind,
                       i, st->n_workers, run->clock, run->root, run->sources,
                       &w->counters);
    w->sc.sizes_off = run->metrics_off;
    if (run->trace != NULL)
        w->trace = sl__trace_add_worker(run->trace, st->conf->name, i);
    w->sc.target = w;
    w->sc.reject = run_reject;
    if (st->desc->kind != SL_STAGE_SINK)
        w->sc.emit = run_emit;
    w->state = calloc(1, st->desc->state_size > 0 ? st->desc->state_size : 1);
    if (w->state == NULL)
        return SL_ENOMEM;
    if (st->n_out > 0) {
        w->outs = calloc(st->n_out, sizeof(*w->outs));
        if (w->outs == NULL)
            return SL_ENOMEM;
        for (size_t o = 0; o < st->n_out; o++) {
            outbox *ob = &w->outs[o];
            ob->ch = st->outs[o]->in;
            ob->cap = SL__OUTBOX_BATCH;
            ob->items = malloc(ob->cap * sizeof(*ob->items));
            if (ob->items == NULL)
                return SL_ENOMEM;
            ob->locked = st->source;
            pthread_mutex_init(&ob->mu, NULL);
        }
    }
    return fill_options(run, st, w, diag);
}

/* Count the readers of each stage and wire the pointers both ways. */
static int wire(sl__run *run, const sl__run_opts *opts)
{
    for (size_t i = 0; i < opts->n_stages; i++) {
        run_stage *st = &run->stages[i];
        const sl__run_stage *s = &opts->stages[i];
        st->n_in = s->n_inputs;
        if (st->n_in > 0) {
            st->ins = calloc(st->n_in, sizeof(*st->ins));
            if (st->ins == NULL)
                return SL_ENOMEM;
        }
        for (size_t k = 0; k < s->n_inputs; k++) {
            st->ins[k] = &run->stages[s->inputs[k]];
            st->ins[k]->n_out++;
        }
    }
    for (size_t i = 0; i < run->n_stages; i++) {
        run_stage *st = &run->stages[i];
        if (st->n_out > 0) {
            st->outs = calloc(st->n_out, sizeof(*st->outs));
            if (st->outs == NULL)
                return SL_ENOMEM;
            st->n_out = 0;   /* refilled below */
        }
    }
    for (size_t i = 0; i < run->n_stages; i++) {
        run_stage *st = &run->stages[i];
        int producers = 0;
        for (size_t k = 0; k < st->n_in; k++) {
            run_stage *up = st->ins[k];
            up->outs[up->n_out++] = st;
            producers += up->n_workers;
        }
        atomic_init(&st->producers, producers);
    }
    return 0;
}

/*
 * settings.state: the acknowledgement tracker, and each worker's part in
 * it (a source's ring, a store's sink index). 0, SL_EIO / SL_ECONFIG
 * (message in diag) or SL_ENOMEM.
 */
static int setup_acks(sl__run *run, const sl_config *cfg, sl_diag *diag)
{
    sl__acks_stage *as = calloc(run->n_stages, sizeof(*as));
    size_t **outs = calloc(run->n_stages, sizeof(*outs));
    int rc = SL_ENOMEM;
    if (as == NULL || outs == NULL)
        goto out;
    for (size_t i = 0; i < run->n_stages; i++) {
        run_stage *st = &run->stages[i];
        if (st->n_out > 0) {
            outs[i] = calloc(st->n_out, sizeof(**outs));
            if (outs[i] == NULL)
                goto out;
            for (size_t k = 0; k < st->n_out; k++)
                outs[i][k] = st->outs[k]->index;
        }
        as[i].name = st->conf->name;
        as[i].source = st->source;
        as[i].workers = st->n_workers;
        as[i].n_out = st->n_out;
        as[i].outs = outs[i];
    }
    char err[512];
    rc = sl__acks_create(cfg->settings.state, run->pipeline, as, run->n_stages,
                         run->root, err, sizeof(err), &run->acks);
    if (rc != 0) {
        if (rc != SL_ENOMEM) {
            sl__diag_add(diag, cfg->file, 0, 0, "%s", err);
            rc = rc == SL_ELIMIT ? SL_ECONFIG : SL_EIO;
        }
        goto out;
    }
    for (size_t i = 0; i < run->n_stages; i++) {
        run_stage *st = &run->stages[i];
        for (int k = 0; k < st->n_workers; k++) {
            sl_stage_ctx *sc = &st->workers[k].sc;
            sc->acks = run->acks;
            sc->ack_source = sl__acks_source(run->acks, i, k);
            sc->ack_sink = sl__acks_sink_index(run->acks, i);
        }
    }
out:
    if (outs != NULL)
        for (size_t i = 0; i < run->n_stages; i++)
            free(outs[i]);
    free(outs);
    free(as);
    return rc;
}

int sl__run_create(const sl__run_opts *opts, sl_diag *diag, sl__run **out)
{
    int rc = check_wiring(opts, diag);
    if (rc != 0)
        return rc;
    const sl_config *cfg = opts->cfg;
    sl__run *run = calloc(1, sizeof(*run));
    if (run == NULL)
        return SL_ENOMEM;
    run->cfg = cfg;
    run->pipeline = cfg->name != NULL ? cfg->name : "pipeline";
    run->clock = opts->clock != NULL ? opts->clock : sl_clock_real();
    run->batch = opts->batch > 0 && opts->batch < SL__OUTBOX_BATCH
                     ? opts->batch : SL__OUTBOX_BATCH;
    pthread_mutex_init(&run->dl_mu, NULL);
    run->dl_fd = -1;
    pthread_mutex_init(&run->breaker_mu, NULL);
    pthread_mutex_init(&run->wd_mu, NULL);
    run->real_clock = run->clock == sl_clock_real();
    run->threads_before = -1;
    run->metrics_interval_ns = cfg->metrics.interval_ns > 0
                                   ? cfg->metrics.interval_ns : SL_NS_PER_S;
    run->metrics_off = opts->metrics_off;
    run->progress = opts->progress;
    run->progress_arg = opts->progress_arg;
    run->progress_interval_ns = opts->progress_interval_ns > 0
                                    ? opts->progress_interval_ns
                                    : 500 * SL_NS_PER_MS;
    rc = SL_ENOMEM;
    const char *mf = opts->metrics_file != NULL ? opts->metrics_file
                                                : cfg->metrics.file;
    if (mf != NULL && (run->metrics_file = strdup(mf)) == NULL)
        goto out_destroy;
    if (cfg->metrics.history != NULL &&
        (run->history_file = strdup(cfg->metrics.history)) == NULL)
        goto out_destroy;
    if (opts->trace_path != NULL) {
        char err[512];
        rc = sl__trace_create(opts->trace_path, run->pipeline, err,
                              sizeof(err), &run->trace);
        if (rc != 0) {
            if (rc == SL_EIO)
                sl__diag_add(diag, cfg->file, 0, 0, "--trace: %s", err);
            goto out_destroy;
        }
        rc = SL_ENOMEM;
    }
    if (sl_ctx_create(&run->root) != 0)
        goto out_destroy;
    if (sl_ctx_create_child(run->root, &run->sources) != 0)
        goto out_destroy;

    run->n_stages = opts->n_stages;
    run->stages = calloc(run->n_stages, sizeof(*run->stages));
    if (run->stages == NULL)
        goto out_destroy;
    bool needs_dl = false;
    for (size_t i = 0; i < run->n_stages; i++) {
        run_stage *st = &run->stages[i];
        const sl_stage_conf *c = opts->stages[i].conf;
        st->run = run;
        st->index = i;
        st->conf = c;
        st->desc = c->desc;
        st->options_yaml = opts->stages[i].options_yaml;
        st->source = c->desc->kind == SL_STAGE_SOURCE;
        /* A stage that declares `workers` runs its own concurrency (the
         * http fetch: that many transfers on one thread): one worker. */
        st->n_workers = c->workers > 0 && !declares_option(c->desc, "workers")
                            ? (int)c->workers : 1;
        st->ordered = c->ordered && st->n_workers > 1 && !st->source;
        pthread_mutex_init(&st->recv_mu, NULL);
        atomic_init(&st->turn, 0);
        atomic_init(&st->turn_word, 0);
        if (c->on_error == SL_ON_ERROR_DEAD_LETTER)
            needs_dl = true;
        if (!st->source) {
            int64_t cap = c->capacity > 0 ? c->capacity
                                          : cfg->settings.channel_capacity;
            if (cap <= 0)
                cap = 1024;
            if (sl_chan_create((size_t)cap, free_record, &st->in) != 0)
                goto out_destroy;
        }
        st->workers = calloc((size_t)st->n_workers, sizeof(*st->workers));
        if (st->workers == NULL)
            goto out_destroy;
    }
    rc = wire(run, opts);
    if (rc != 0)
        goto out_destroy;
    int cfg_rc = 0;
    for (size_t i = 0; i < run->n_stages; i++) {
        run_stage *st = &run->stages[i];
        rc = setup_policies(run, st, diag);
        if (rc == SL_ENOMEM)
            goto out_destroy;
        if (rc != 0)
            cfg_rc = rc;
        for (int k = 0; k < st->n_workers; k++) {
            rc = setup_worker(run, st, k, diag);
            if (rc == SL_ENOMEM)
                goto out_destroy;
            if (rc != 0) {
                cfg_rc = SL_ECONFIG;
                break;   /* the same options fail the same way per worker */
            }
        }
    }
    if (cfg_rc != 0) {
        rc = cfg_rc;
        goto out_destroy;
    }
    if (cfg->settings.state != NULL) {
        rc = setup_acks(run, cfg, diag);
        if (rc != 0)
            goto out_destroy;
    }
    if (needs_dl) {
        run->dl_path = strdup(cfg->dead_letter.path);
        if (run->dl_path == NULL) {
            rc = SL_ENOMEM;
            goto out_destroy;
        }
        run->dl_fd = open(run->dl_path,
                          O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (run->dl_fd < 0) {
            sl__diag_add(diag, cfg->file, 0, 0,
                         "dead_letter.path: cannot open %s: %s", run->dl_path,
                         strerror(errno));
            rc = SL_EIO;
            goto out_destroy;
        }
    }
    *out = run;
    return 0;
out_destroy:
    sl__run_destroy(run);
    return rc;
}

int sl__run_start(sl__run *run)
{
    if (run->started)
        return SL_EINVAL;
    run->started = true;
    run->threads_before = sl__thread_count();
    int64_t start = sl__run_now();
    if (run->trace != NULL)
        sl__trace_start(run->trace, start);
    atomic_store(&run->start_ns, start);
    int total = 0;
    for (size_t s = 0; s < run->n_stages; s++)
        total += run->stages[s].n_workers;
    atomic_store(&run->live_workers, total);
    int rc = 0;
    for (size_t s = 0; s < run->n_stages && rc == 0; s++) {
        run_stage *st = &run->stages[s];
        for (int i = 0; i < st->n_workers; i++) {
            run_worker *w = &st->workers[i];
            if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
                rc = SL_EINTERNAL;
                break;
            }
            w->started = true;
        }
    }
    if (rc != 0) {
        /* Account for the workers that never started; their readers'
         * inputs close when the cancel below reaches them. */
        int missing = 0;
        for (size_t s = 0; s < run->n_stages; s++)
            for (int i = 0; i < run->stages[s].n_workers; i++)
                if (!run->stages[s].workers[i].started)
                    missing++;
        set_outcome(run, OUTCOME_FAILED, SL_ECANCELED,
                    "cannot start a worker thread: %s", strerror(errno));
        if (atomic_fetch_sub(&run->live_workers, missing) == missing)
            wake_monitor(run);
    }
    if (rc == 0 && run->acks != NULL && sl__acks_start(run->acks) != 0) {
        set_outcome(run, OUTCOME_FAILED, SL_ECANCELED,
                    "cannot start the position committer thread");
        rc = SL_EINTERNAL;
    }
    if (pthread_create(&run->monitor, NULL, monitor_main, run) == 0)
        run->monitor_started = true;
    else if (rc == 0) {
        set_outcome(run, OUTCOME_FAILED, SL_ECANCELED,
                    "cannot start the monitor thread");
        rc = SL_EINTERNAL;
    }
    return rc;
}

int sl__run_wait(sl__run *run, sl__run_result *res)
{
    for (size_t s = 0; s < run->n_stages; s++) {
        run_stage *st = &run->stages[s];
        for (int i = 0; i < st->n_workers; i++) {
            if (st->workers[i].started) {
                pthread_join(st->workers[i].thread, NULL);
                st->workers[i].started = false;
            }
        }
    }
    if (run->monitor_started) {
        wake_monitor(run);
        pthread_join(run->monitor, NULL);
        run->monitor_started = false;
    }
    if (atomic_load(&run->end_ns) == 0)
        atomic_store(&run->end_ns, sl__run_now());
    if (run->acks != NULL)
        sl__acks_finish(run->acks);   /* logs a failure to save */

    memset(res, 0, sizeof(*res));
    int outcome = atomic_load(&run->outcome);
    if (outcome == OUTCOME_FAILED) {
        res->status = SL__RUN_FAILED;
        res->exit_code = 1;
    } else if (outcome == OUTCOME_FORCED) {
        res->status = SL__RUN_INTERRUPTED;
        res->forced = true;
        res->exit_code = 3;
    } else if (atomic_load(&run->stop_requested)) {
        res->status = SL__RUN_INTERRUPTED;
        res->exit_code = 0;
    } else {
        res->status = SL__RUN_SUCCEEDED;
        res->exit_code = 0;
    }
    if (atomic_load(&run->cause_ready))
        snprintf(res->cause, sizeof(res->cause), "%s", run->cause);
    write_snapshot(run, res->status);
    sl__run_check_leaks(run);
    if (run->trace != NULL &&
        sl__trace_finish(run->trace, atomic_load(&run->end_ns),
                         sl__run_status_name(res->status), res->cause) != 0)
        sl__log(SL_LOG_WARN, NULL, "cannot write the trace file: %s",
                strerror(errno));
    return 0;
}

void sl__run_destroy(sl__run *run)
{
    if (run == NULL)
        return;
    if (run->stages != NULL) {
        for (size_t s = 0; s < run->n_stages; s++) {
            run_stage *st = &run->stages[s];
            if (st->workers != NULL) {
                for (int i = 0; i < st->n_workers; i++) {
                    run_worker *w = &st->workers[i];
                    if (w->outs != NULL) {
                        for (size_t o = 0; o < st->n_out; o++) {
                            outbox *ob = &w->outs[o];
                            if (ob->items == NULL)
                                continue;
                            size_t n = atomic_load(&ob->n);
                            for (size_t k = 0; k < n; k++)
                                sl_record_free(ob->items[k]);
                            free(ob->items);
                            pthread_mutex_destroy(&ob->mu);
                        }
                        free(w->outs);
                    }
                    if (w->options_filled)
                        sl__options_free(st->desc->options, w->state);
                    free(w->state);
                }
                free(st->workers);
            }
            sl_chan_destroy(st->in);
            sl_limiter_destroy(st->limiter);
            sl_breaker_destroy(st->breaker);
            pthread_mutex_destroy(&st->recv_mu);
            free(st->ins);
            free(st->outs);
        }
        free(run->stages);
    }
    if (run->has_last)
        sl__run_snapshot_fini(&run->last);
    if (run->dl_fd >= 0)
        close(run->dl_fd);
    free(run->dl_path);
    pthread_mutex_destroy(&run->dl_mu);
    pthread_mutex_destroy(&run->breaker_mu);
    pthread_mutex_destroy(&run->wd_mu);
    sl__trace_destroy(run->trace);
    free(run->metrics_file);
    free(run->history_file);
    sl__acks_destroy(run->acks);   /* after every record is freed */
    sl_ctx_destroy(run->sources);
    sl_ctx_destroy(run->root);
    free(run);
}

/* ================================================================== */
/* Introspection                                                       */
/* ================================================================== */

size_t sl__run_stage_count(const sl__run *run)
{
    return run->n_stages;
}

sl_chan *sl__run_stage_input(const sl__run *run, size_t stage)
{
    return stage < run->n_stages ? run->stages[stage].in : NULL;
}

uint64_t sl__run_stage_counter(const sl__run *run, size_t stage,
                               size_t counter_offset)
{
    if (stage >= run->n_stages)
        return 0;
    const run_stage *st = &run->stages[stage];
    uint64_t sum = 0;
    for (int i = 0; i < st->n_workers; i++) {
        const char *base = (const char *)&st->workers[i].counters;
        sum += atomic_load_explicit(
            (const _Atomic uint64_t *)(const void *)(base + counter_offset),
            memory_order_relaxed);
    }
    return sum;
}
