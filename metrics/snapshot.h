/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * A metrics snapshot: a pipeline's status and every stage's figures at one
 * moment, and what is done with it — the JSON form (DESIGN.md "Metrics —
 * contract"; written to metrics.file, appended to metrics.history, served
 * at /snapshot), reading that JSON back (`sluice metrics`), the tables
 * people read, the bottleneck rule, the Prometheus text format and the
 * /health body. docs/metrics.md describes every field.
 *
 * The runtime fills a snapshot from its counters (engine/metrics_snapshot.c,
 * sl__run_snapshot_take); everything here works on a snapshot alone, so a
 * snapshot read from a file is as good as a live one (except that it has
 * no latency buckets for Prometheus).
 *
 * Thread: a snapshot belongs to whoever took it; the functions here touch
 * nothing else, so any thread may call them on its own snapshot.
 */
#ifndef SLUICE_METRICS_SNAPSHOT_H
#define SLUICE_METRICS_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sluice/stage.h"
#include "sluice/value.h"

typedef enum sl__run_status {
    SL__RUN_RUNNING = 0,
    SL__RUN_SUCCEEDED,      /* every source finished, everything stored */
    SL__RUN_INTERRUPTED,    /* stopped on request (graceful or forced) */
    SL__RUN_FAILED,         /* a stage failed or the deadline passed */
} sl__run_status;

/* "running", "succeeded", "interrupted", "failed". */
const char *sl__run_status_name(sl__run_status s);
/* The reverse; false for anything else. */
bool sl__run_status_parse(const char *name, sl__run_status *out);

/*
 * Prometheus bucket bounds of the latency histogram: le = 2^k - 1 ns for
 * k = SL__LAT_LE_FIRST .. SL__LAT_LE_FIRST + SL__LAT_LE_N - 1 (128 ns to
 * about 34 s, one per power of two). Each is the top of a histogram
 * bucket, so the cumulative counts are exact.
 */
#define SL__LAT_LE_FIRST 7
#define SL__LAT_LE_N 29

/* A stage's own metric (sl_stage_metric_add), summed over its workers.
 * Strings are borrowed from the run. Not read back from JSON. */
#define SL__EXTRA_MAX 32

typedef struct sl__extra_metric {
    const char *name;           /* [a-z][a-z0-9_]* */
    const char *label_key;      /* NULL when unlabelled */
    const char *label_value;    /* its value */
    const char *help;           /* one line */
    bool counter;               /* counter, else gauge */
    int64_t value;
} sl__extra_metric;

typedef struct sl__stage_snapshot {
    const char *name;           /* borrowed from the run (or the document) */
    const char *type;
    sl_stage_kind kind;
    const char *state;          /* "starting", "running", "retrying",
                                   "stalled", "done" */
    int workers;
    size_t n_inputs;            /* upstream stages ... */
    const size_t *inputs;       /* ... as indices into the snapshot's stages */
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
    double queue_full_s;        /* upstream workers' time waiting on a full
                                   input, summed over them */
    double active_s;            /* time the workers have run (from the
                                   start to their end, or to now), summed;
                                   negative when unknown (read from a
                                   snapshot without it) */
    double blocked_send_s;      /* summed over workers */
    double idle_recv_s;         /* summed over workers */
    double latency_p50_us;
    double latency_p90_us;
    double latency_p99_us;
    double latency_max_us;
    uint64_t latency_count;     /* calls of process() recorded */
    double latency_sum_s;       /* their total time (estimated when sampled) */
    bool has_buckets;           /* latency_le is filled (live snapshots) */
    uint64_t latency_le[SL__LAT_LE_N]; /* cumulative counts per bound */
    double throughput_rps;      /* records per second (see docs/metrics.md) */
    bool has_breaker;           /* a circuit breaker guards the stage */
    const char *breaker_state;  /* "closed", "open", "half_open" */
    uint64_t breaker_opens;     /* times it opened */
    uint64_t breaker_rejections;/* calls it refused */
    size_t n_extra;             /* the stage's own metrics ... */
    sl__extra_metric extra[SL__EXTRA_MAX]; /* ... in declaration order */
} sl__stage_snapshot;

typedef struct sl__run_snapshot {
    const char *pipeline;
    sl__run_status status;
    bool stopping;              /* a graceful stop is draining the run */
    double elapsed_s;
    const char *cause;          /* "" unless failed/forced */
    size_t n_stages;
    sl__stage_snapshot *stages; /* owned by the snapshot */
    size_t *input_store;        /* owned: every stage's inputs */
    sl_value *doc;              /* owned: the parsed document the strings
                                   point into, when read from JSON */
} sl__run_snapshot;

/* Free what the snapshot owns; it may be taken or read again. NULL and
 * zeroed snapshots are fine. */
void sl__run_snapshot_fini(sl__run_snapshot *s);

/* ------------------------------------------------------------------ */
/* JSON (metrics/snapshot_json.c, metrics/snapshot_read.c)             */
/* ------------------------------------------------------------------ */

/* The snapshot as one line of JSON, no newline. 0 or SL_ENOMEM. */
int sl__run_snapshot_json(const sl__run_snapshot *s, sl_buf *out);

/* Write it to path atomically (temp file + rename). 0 or SL_EIO (errno
 * says why) or SL_ENOMEM. */
int sl__run_snapshot_write(const sl__run_snapshot *s, const char *path);

/* Write len bytes of data to path atomically: a temporary file next to
 * it, then one rename. 0, SL_EIO (errno says why) or SL_ENOMEM. */
int sl__file_write_atomic(const char *path, const char *data, size_t len);

/* Append it as one line to path. 0, SL_EIO or SL_ENOMEM. */
int sl__run_snapshot_append(const sl__run_snapshot *s, const char *path);

/*
 * Read a snapshot from JSON text (one document; what sl__run_snapshot_json
 * writes, or anything with the contract's fields — missing numbers read as
 * 0). Returns 0, SL_EPARSE (err says why, e.g. "not JSON: ... at column 7"
 * or "stage 2: no name") or SL_ENOMEM. *out is filled only on success.
 */
int sl__run_snapshot_read(const char *text, size_t len, sl__run_snapshot *out,
                          char *err, size_t err_size);

/* ------------------------------------------------------------------ */
/* Reading a snapshot (metrics/bottleneck.c)                           */
/* ------------------------------------------------------------------ */

/* Fractions of a stage's worker time while its workers ran (active_s),
 * each 0..1. See docs/metrics.md "Bottleneck". */
typedef struct sl__stage_load {
    double busy;                /* working: not idle, not blocked */
    double blocked;             /* waiting on a full output */
    double idle;                /* waiting for input */
    double input_full;          /* of the time its upstream workers ran,
                                   the share they waited on this stage's
                                   full input (1 for a source) */
    double pressure;            /* busy * input_full, 0 when excluded */
} sl__stage_load;

void sl__stage_load_of(const sl__run_snapshot *s, size_t i,
                       sl__stage_load *out);

/*
 * The snapshot of what happened between prev and now (same run, prev
 * earlier): times and counts as differences, elapsed_s the time between
 * them, queue figures and states as in now. Strings and inputs are
 * borrowed from now, which must outlive *out; out->stages is owned (free
 * with sl__run_snapshot_fini). Returns 0, SL_EINVAL (different stages) or
 * SL_ENOMEM.
 */
int sl__run_snapshot_window(const sl__run_snapshot *now,
                            const sl__run_snapshot *prev,
                            sl__run_snapshot *out);

/* A stage's output counts as waiting when it spent this much of its time
 * blocked on a full output. */
#define SL__BOTTLENECK_MAX_BLOCKED 0.20
/* The least pressure that names a bottleneck. */
#define SL__BOTTLENECK_MIN_PRESSURE 0.50

/*
 * The bottleneck: among stages blocked less than SL__BOTTLENECK_MAX_BLOCKED
 * of their time, the one with the highest pressure (busy x input_full), if
 * that is at least SL__BOTTLENECK_MIN_PRESSURE; on a tie the later stage in
 * the list. Returns its index, or -1 when no stage qualifies (nothing is
 * saturated, or the run was too short to tell).
 */
long sl__metrics_bottleneck(const sl__run_snapshot *s);

/* ------------------------------------------------------------------ */
/* Tables (metrics/table.c)                                            */
/* ------------------------------------------------------------------ */

/* The per-stage summary table printed at the end of `sluice run`. */
void sl__run_snapshot_print_table(const sl__run_snapshot *s, FILE *out);

/* The line "bottleneck: NAME (TYPE): busy ..% of the time ..." with the
 * figures that name it, or "bottleneck: none found (...)". */
void sl__metrics_print_bottleneck(const sl__run_snapshot *s, FILE *out);

/* The fuller report of `sluice metrics`: the pipeline line, a table of
 * counts and rates, a table of time use, and the bottleneck with the
 * figures that name it. */
void sl__metrics_print_report(const sl__run_snapshot *s, FILE *out);

/*
 * The live line `sluice run` redraws on a terminal, at most width - 1
 * characters: elapsed_s (the run's), then per stage its name, records per second,
 * input queue fill ("q" and a percentage, not for sources) and share of
 * time blocked on a full output ("b"), all over `window` (the last
 * interval; sl__run_snapshot_window) except the queue fill, which is now.
 * The stage that is the bottleneck over the window is marked with "*".
 * E.g. "   4.2s  gen 9.8k/s b97% | slow* 200/s q100% b0% | out 200/s q0% b0%".
 */
void sl__metrics_progress_line(const sl__run_snapshot *window,
                               double elapsed_s, char *buf, size_t width);

/* ------------------------------------------------------------------ */
/* Exporters (metrics/prometheus.c, metrics/health.c)                  */
/* ------------------------------------------------------------------ */

/* The Prometheus text exposition format (version 0.0.4) of s. 0 or
 * SL_ENOMEM. */
int sl__metrics_prometheus(const sl__run_snapshot *s, sl_buf *out);

/* Degraded: a stage stalled, or a circuit breaker not closed. */
bool sl__metrics_degraded(const sl__run_snapshot *s);

/*
 * The /health body: {"pipeline":..,"status":"running"|"degraded"|
 * "stopping"|final status,"elapsed_s":..,"stages":[{"name","state",
 * "breaker"?}]} and its HTTP status: 200 while running (degraded
 * included), 503 once stopping or finished. 0 or SL_ENOMEM.
 */
int sl__metrics_health_json(const sl__run_snapshot *s, sl_buf *out,
                            int *http_status);

#endif
