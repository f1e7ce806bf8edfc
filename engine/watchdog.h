/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * The stuck-stage watchdog, the per-worker state dump (SIGUSR1 and
 * /debug/stages) and the leak check at the end of a run.
 *
 * Every worker pulses a heartbeat (sl__stage_counters.heartbeat_ns, on the
 * run's clock) whenever it starts a record, a flush() or finishes handing
 * records on, and publishes the position of the record it holds. The
 * monitor calls sl__run_watchdog() every stall_timeout / 4 (at most every
 * second): a worker inside process() or flush() that has been silent for
 * longer than settings.stall_timeout while it has work — a record in hand
 * or records waiting in its input — is reported once per stall, with its
 * stage, the record's position and the queue depths around it.
 *
 * Thread: the worker-side helpers on the worker's thread; everything else
 * any thread while the run exists.
 */
#ifndef SLUICE_ENGINE_WATCHDOG_H
#define SLUICE_ENGINE_WATCHDOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sluice/record.h"
#include "sluice/value.h"

typedef struct sl__run sl__run;

/* What a worker tells the watchdog about the record it holds. */
typedef struct sl__watch {
    const char *_Atomic pos_source; /* atomic: interned source name or NULL */
    _Atomic int64_t pos_offset;     /* atomic: its offset, -1 unknown */
    _Atomic int64_t pos_seq;        /* atomic: its sequence number, 0 none */
    _Atomic int64_t reported_hb;    /* atomic: heartbeat last reported stuck */
} sl__watch;

/* Before process(rec): remember where rec came from. Thread: worker. */
static inline void sl__watch_hold(sl__watch *wt, const sl_record *rec)
{
    const sl_position *p = sl_record_position(rec);
    /* Release: a reader on another thread (/debug/stages, SIGUSR1) reads
     * the name's bytes, which the source wrote; the channel's hand-over
     * and this store carry that write to it. */
    atomic_store_explicit(&wt->pos_source, p != NULL ? p->source : NULL,
                          memory_order_release);
    atomic_store_explicit(&wt->pos_offset, p != NULL ? p->offset : -1,
                          memory_order_relaxed);
    atomic_store_explicit(&wt->pos_seq, p != NULL ? p->seq : 0,
                          memory_order_relaxed);
}

/*
 * Check every worker against the stall timeout now (on the run's clock).
 * Each newly stuck worker is logged once (WARN, naming stage, worker,
 * record position and queues) and noted in the trace. Returns how many
 * were newly reported; when it is more than 0 and cause is not NULL, cause
 * holds "stage NAME: stalled in process() for 30s (worker 0, ...)" for the
 * first of them. Serialised: two callers never report the same stall.
 * Thread: any (the monitor, or a test).
 */
int sl__run_watchdog(sl__run *run, char *cause, size_t cause_size);

/*
 * Is worker `worker` of stage `stage` stuck now (see above)? Thread: any.
 */
bool sl__run_worker_stuck(const sl__run *run, size_t stage, int worker,
                          int64_t now);

/* The run's clock now (what heartbeats are stamped with). Thread: any. */
int64_t sl__run_clock_now(const sl__run *run);

/*
 * Every stage and worker as text: queues, counts, worker state, time since
 * the last heartbeat, the record in hand, busy / blocked / idle totals, and
 * "STUCK" on a stuck worker. What SIGUSR1 prints and /debug/stages serves.
 * Returns 0 or SL_ENOMEM. Thread: any.
 */
int sl__run_describe(sl__run *run, sl_buf *out);

/*
 * After every worker was joined: check that each thread the run started
 * has ended, that every channel is closed and (unless the run was
 * cancelled, which drops what is queued) empty, that no outbox still holds
 * records, and that the process has no more threads than when the run
 * started. Logs one WARN line per leak and returns how many there were.
 * Thread: owner.
 */
int sl__run_check_leaks(sl__run *run);

/* The number of threads of this process now, or -1 if unknown. */
int sl__thread_count(void);

#endif
