/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * The activity trace (`sluice run --trace PATH`): what every stage worker
 * did over time, written when the run ends as Chrome trace-event JSON
 * (opens in Perfetto, ui.perfetto.dev, and chrome://tracing).
 *
 *   - one track per worker, covered by spans named "busy" (processing),
 *     "blocked" (waiting on a full output: backpressure) and "idle"
 *     (waiting on an empty input);
 *   - one counter per channel, "queue STAGE", its depth over time;
 *   - instants: "error" (with the reason), "retry" and "errors" (counts
 *     from the stage counters), "breaker" (state changes), "stuck" (the
 *     watchdog), "signal" (SIGINT, SIGTERM, SIGUSR1) and "end".
 *
 * Size bound. A worker's spans are merged into windows of at least the
 * current resolution: a wait or a run of processing at least that long is
 * a span of its own, shorter ones are summed into the window, which
 * becomes one span named after what took most of it (its args give the
 * busy / blocked / idle microseconds inside). The resolution starts at
 * SL__TRACE_RES0_NS and doubles each time the worker has written another
 * SL__TRACE_LEVEL_SPANS spans, so spans grow with the logarithm of the
 * run's duration, not with the number of records. Channel depths are
 * sampled every SL__TRACE_SAMPLE0_NS, written when they change, and the
 * sampling period doubles every SL__TRACE_LEVEL_SAMPLES samples. See
 * docs/debugging.md for the resulting figures.
 *
 * Cost. A worker records into its own buffer with no lock, and only at the
 * points where it already reads the clock (receiving a batch, handing a
 * batch on): nothing is done per record.
 *
 * Thread: create/start/finish/destroy on the owner's thread; a worker's
 * hooks on its own thread; sl__trace_sample on the monitor;
 * sl__run_trace_note on any thread.
 */
#ifndef SLUICE_ENGINE_TRACE_H
#define SLUICE_ENGINE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/clock.h"

/* First span resolution, and spans per worker before it doubles. */
#define SL__TRACE_RES0_NS (200 * SL_NS_PER_US)
#define SL__TRACE_LEVEL_SPANS 8192
/* First channel sampling period, and samples before it doubles. */
#define SL__TRACE_SAMPLE0_NS (50 * SL_NS_PER_MS)
#define SL__TRACE_LEVEL_SAMPLES 4096

typedef enum sl__trace_kind {
    SL__TRACE_BUSY = 0,     /* processing (or a source reading) */
    SL__TRACE_BLOCKED,      /* waiting on a full output channel */
    SL__TRACE_IDLE,         /* waiting on an empty input channel */
    SL__TRACE_KINDS,
} sl__trace_kind;

typedef struct sl__trace sl__trace;
typedef struct sl__trace_worker sl__trace_worker;
typedef struct sl__run sl__run;

/*
 * Open path for writing (truncated) and set up an empty trace for the
 * pipeline named `pipeline`. Returns 0, SL_EIO (the file cannot be opened;
 * err says why) or SL_ENOMEM; *out untouched on failure. Thread: owner.
 */
int sl__trace_create(const char *path, const char *pipeline, char *err,
                     size_t err_size, sl__trace **out);

/*
 * A track for worker `index` of stage `stage` (borrowed; must outlive the
 * trace). Returns NULL when out of memory (that worker is then not
 * traced). Thread: owner, before sl__trace_start.
 */
sl__trace_worker *sl__trace_add_worker(sl__trace *tr, const char *stage,
                                       int index);

/* Time zero of the trace (monotonic ns). Thread: owner, before any
 * worker starts. */
void sl__trace_start(sl__trace *tr, int64_t now);

/* ------------------------------------------------------------------ */
/* Worker side (the worker's thread; tw may be NULL: not traced)       */
/* ------------------------------------------------------------------ */

/* The worker starts at now: busy from here. */
void sl__trace_worker_begin(sl__trace_worker *tw, int64_t now);

/* The worker ends at now: close its last span. */
void sl__trace_worker_end(sl__trace_worker *tw, int64_t now);

void sl__trace_segment(sl__trace_worker *tw, sl__trace_kind kind, int64_t t0,
                       int64_t t1);

/*
 * Busy until t0, then `kind` (blocked or idle) from t0 to t1. Called where
 * the worker timed a wait anyway.
 */
static inline void sl__trace_wait(sl__trace_worker *tw, sl__trace_kind kind,
                                  int64_t t0, int64_t t1)
{
    if (tw != NULL)
        sl__trace_segment(tw, kind, t0, t1);
}

/* A record failed with reason (copied). At most one error instant per
 * resolution window is written; the others are counted into the next. */
void sl__trace_error(sl__trace_worker *tw, int64_t now, const char *reason);

/* ------------------------------------------------------------------ */
/* Monitor side                                                        */
/* ------------------------------------------------------------------ */

/*
 * Sample the run's channel depths, stage retry / error counters and
 * circuit breakers at now. Returns when to sample next (monotonic ns).
 * Thread: the monitor.
 */
int64_t sl__trace_sample(sl__run *run, int64_t now);

/*
 * An instant on the run's trace (no-op without one): name ("signal",
 * "stuck", ...), a detail text (copied), and the stage / worker it
 * concerns (stage NULL: the whole process). Thread: any.
 */
void sl__run_trace_note(sl__run *run, const char *name, const char *stage,
                        int worker, const char *detail);

/* ------------------------------------------------------------------ */
/* The end                                                             */
/* ------------------------------------------------------------------ */

/*
 * Write the trace file (every worker must have ended) with a final "end"
 * instant naming status and cause (may be ""). Returns 0 or SL_EIO.
 * Thread: owner.
 */
int sl__trace_finish(sl__trace *tr, int64_t end_ns, const char *status,
                     const char *cause);

/* Events kept and the file's size after finish (for messages, tests). */
uint64_t sl__trace_events(const sl__trace *tr);

/* Free it (closing the file if finish was not called). NULL: no-op. */
void sl__trace_destroy(sl__trace *tr);

#endif
