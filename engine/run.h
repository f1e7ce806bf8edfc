/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * The runtime: runs a wired pipeline.
 *
 * One thread per stage worker; a bounded channel in front of every stage
 * that has inputs (several upstream stages send into the same channel:
 * merge); a stage read by several stages gets one outbox per reader and
 * every record is copied to each (tee). Records move between threads in
 * batches: a worker collects what it emits in an outbox and hands it on
 * when it holds SL__OUTBOX_BATCH records, when about 1 ms has passed, or
 * when the worker is about to wait for input. A monitor thread hands on
 * what idle sources left in their outboxes, enforces the deadline and the
 * shutdown timeout, watches for stalled stages and writes metrics.
 *
 * Stopping: sl__run_stop(run, false) asks sources to stop; everything
 * already read flows through, sinks flush, and the run ends "interrupted"
 * with exit code 0 — unless it takes longer than the shutdown timeout, or
 * sl__run_stop(run, true) is called, which cancels everything (exit 3).
 * A stage failure (on_error: fail) or the deadline cancels everything too
 * (exit 1).
 *
 * Thread: create/start/wait/destroy on the owner's thread; stop, dump and
 * snapshots from any thread while the run exists.
 */
#ifndef SLUICE_ENGINE_RUN_H
#define SLUICE_ENGINE_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/config.h"
#include "engine/diag.h"
#include "engine/stage_ctx.h"
#include "metrics/snapshot.h"
#include "sluice/clock.h"

/* Records a worker collects before handing them downstream. */
#define SL__OUTBOX_BATCH 64
/* Age after which a partly filled outbox is handed on anyway. */
#define SL__OUTBOX_MAX_AGE_NS (1 * SL_NS_PER_MS)

/* One stage as the runtime needs it. */
typedef struct sl__run_stage {
    const sl_stage_conf *conf;  /* name, desc and engine-applied keys */
    size_t n_inputs;            /* upstream stages (several: merge) */
    const size_t *inputs;       /* their indices in the stage list */
    /* Options when conf->node is NULL (tests): YAML mapping text, applied
     * with the descriptor's option table. NULL: defaults only. */
    const char *options_yaml;
} sl__run_stage;

/* What a finished run ended with. */
typedef struct sl__run_result {
    sl__run_status status;  /* never RUNNING */
    bool forced;            /* stopped by force (second signal, timeout) */
    int exit_code;          /* 0, 1 or 3 (see DESIGN.md) */
    char cause[512];        /* "stage parse: bad JSON at line 12", or "" */
} sl__run_result;

typedef struct sl__run sl__run;

/* Called by the monitor every progress_interval_ns while the run goes. */
typedef void (*sl__run_progress_fn)(void *arg, sl__run *run);

typedef struct sl__run_opts {
    const sl_config *cfg;        /* name, settings, metrics, dead_letter */
    size_t n_stages;
    const sl__run_stage *stages; /* in any order; inputs refer by index */
    const sl_clock *clock;       /* stages' clock; NULL = real */
    const char *metrics_file;    /* overrides cfg->metrics.file if set */
    sl__run_progress_fn progress;/* may be NULL */
    void *progress_arg;
    int64_t progress_interval_ns;/* 0 = 500 ms */
    size_t batch;                /* records per hand-over, 1..64; 0 = 64.
                                    1 sends and receives one at a time
                                    (for comparison: bench_run) */
    bool metrics_off;            /* no per-record measurements: no latency
                                    timing, no record sizes (latency_us and
                                    the records' bytes stay 0); counts and
                                    wait times stay (SLUICE_METRICS=off;
                                    docs/metrics.md "Overhead") */
    const char *trace_path;      /* write the activity trace here when the
                                    run ends (engine/trace.h); NULL = none */
} sl__run_opts;

/*
 * Build a run: check the wiring, create channels, fill every worker's
 * options (reporting problems to diag) and open the dead-letter file. No
 * thread is started. Returns 0, SL_ECONFIG (messages in diag), SL_EIO (a
 * file could not be opened, message in diag) or SL_ENOMEM; *out untouched
 * on failure.
 */
int sl__run_create(const sl__run_opts *opts, sl_diag *diag, sl__run **out);

/* Start every worker and the monitor. 0, or SL_ENOMEM / SL_EINTERNAL if a
 * thread could not be started (the run is then failed and must still be
 * waited for). */
int sl__run_start(sl__run *run);

/* Wait until every thread is done; fills *res. Writes the final metrics
 * snapshot. Returns 0 (the outcome is in res). */
int sl__run_wait(sl__run *run, sl__run_result *res);

/* Free everything. All threads must have been waited for. NULL: no-op. */
void sl__run_destroy(sl__run *run);

/*
 * Ask the run to stop: gracefully (sources stop, the rest drains) or by
 * force (everything is cancelled). Idempotent; a forced stop after a
 * graceful one upgrades it. Thread: any (also a signal-handling thread).
 */
void sl__run_stop(sl__run *run, bool force);

/* true once a graceful stop was requested. Thread: any. */
bool sl__run_stopping(const sl__run *run);

/* Each stage's state (queues, counts, heartbeat age, worker states, the
 * record in hand, busy/blocked/idle) as text for SIGUSR1: the text of
 * sl__run_describe (engine/watchdog.h). Thread: any. */
void sl__run_dump(sl__run *run, FILE *out);

/* ------------------------------------------------------------------ */
/* Snapshots (metrics_snapshot.c)                                      */
/* ------------------------------------------------------------------ */

/*
 * Take a snapshot now: status RUNNING, or FAILED / INTERRUPTED as soon as
 * a failure or forced stop has decided the outcome (the caller sets the
 * final status once the run is waited for).
 * throughput_rps is over the time since prev (same stages, may be NULL:
 * over the whole run). Free with sl__run_snapshot_fini. Returns 0 or
 * SL_ENOMEM. Thread: any, while the run exists.
 */
int sl__run_snapshot_take(sl__run *run, const sl__run_snapshot *prev,
                          sl__run_snapshot *out);

/* ------------------------------------------------------------------ */
/* Introspection for tests and the CLI                                 */
/* ------------------------------------------------------------------ */

size_t sl__run_stage_count(const sl__run *run);
/* A stage's input channel (NULL for a source). */
struct sl_chan *sl__run_stage_input(const sl__run *run, size_t stage);
/* Sum of the stage's workers' counter (offset into sl__stage_counters). */
uint64_t sl__run_stage_counter(const sl__run *run, size_t stage,
                               size_t counter_offset);
#define SL__RUN_COUNTER(run, stage, field) \
    sl__run_stage_counter((run), (stage), offsetof(sl__stage_counters, field))
/* The run's root context. */
sl_ctx *sl__run_context(sl__run *run);

#endif
