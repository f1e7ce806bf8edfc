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

typedef enum sl__run_status {
    SL__RUN_RUNNING = 0,
    SL__RUN_SUCCEEDED,      /* every source finished, everything stored */
    SL__RUN_INTERRUPTED,    /* stopped on request (graceful or forced) */
    SL__RUN_FAILED,         /* a stage failed or the deadline passed */
} sl__run_status;

const char *sl__run_status_name(sl__run_status s);

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

/* Each stage's state (queues, counts, heartbeat age, worker states) as text
 * for SIGUSR1. Thread: any. */
void sl__run_dump(sl__run *run, FILE *out);

/* ------------------------------------------------------------------ */
/* Snapshots (metrics_snapshot.c)                                      */
/* ------------------------------------------------------------------ */

typedef struct sl__stage_snapshot {
    const char *name;           /* borrowed from the run */
    const char *type;
    sl_stage_kind kind;
    int workers;
    uint64_t records_in;
    uint64_t records_out;
    uint64_t errors;
    uint64_t dropped;
    uint64_t retries;
    uint64_t bytes_in;
    uint64_t bytes_out;
    size_t queue_depth;         /* input channel; 0 for a source */
    size_t queue_capacity;
    size_t queue_max_depth;     /* high-water mark */
    double blocked_send_s;      /* summed over workers */
    double idle_recv_s;         /* summed over workers */
    double latency_p50_us;
    double latency_p90_us;
    double latency_p99_us;
    double latency_max_us;
    double throughput_rps;      /* records per second (see metrics docs) */
} sl__stage_snapshot;

typedef struct sl__run_snapshot {
    const char *pipeline;
    sl__run_status status;
    double elapsed_s;
    const char *cause;          /* "" unless failed/forced */
    size_t n_stages;
    sl__stage_snapshot *stages; /* owned by the snapshot */
} sl__run_snapshot;

/*
 * Take a snapshot now. throughput_rps is over the time since prev (same
 * stages, may be NULL: over the whole run). Returns 0 or SL_ENOMEM.
 * Thread: any.
 */
int sl__run_snapshot_take(sl__run *run, const sl__run_snapshot *prev,
                          sl__run_snapshot *out);
void sl__run_snapshot_fini(sl__run_snapshot *s);

/* The snapshot as one line of JSON (DESIGN.md "Metrics"), no newline.
 * Returns 0 or SL_ENOMEM. */
int sl__run_snapshot_json(const sl__run_snapshot *s, sl_buf *out);

/* Write it to path atomically (temp file + rename). 0 or SL_EIO. */
int sl__run_snapshot_write(const sl__run_snapshot *s, const char *path);

/* Append it as one line to path. 0 or SL_EIO. */
int sl__run_snapshot_append(const sl__run_snapshot *s, const char *path);

/* The per-stage summary table printed at the end of `sluice run`. */
void sl__run_snapshot_print_table(const sl__run_snapshot *s, FILE *out);

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
