/* Private to the engine: not installed, not part of the plugin ABI. */
/*
 * The engine side of the stage API (include/sluice/stage.h).
 *
 * An sl_stage_ctx is what a stage worker's callbacks receive. It carries the
 * worker's identity (stage name, type, worker index and count), its contexts,
 * its clock, its metrics counters, the last error message, and an "emit
 * target": the function sl_emit() hands records to. The runtime plugs in a
 * target that batches records into the worker's outboxes; the stage harness
 * plugs in one that collects them for assertions. Everything else here is
 * shared by both.
 *
 * Counters are written only by the worker's own thread and read by anyone
 * (metrics snapshots, SIGUSR1 dumps), so they are relaxed atomics updated
 * with load+store rather than read-modify-write.
 *
 * Thread: the worker's thread unless noted.
 */
#ifndef SLUICE_ENGINE_STAGE_CTX_H
#define SLUICE_ENGINE_STAGE_CTX_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "metrics/histogram.h"
#include "sluice/breaker.h"
#include "sluice/stage.h"

/* ------------------------------------------------------------------ */
/* Counters                                                            */
/* ------------------------------------------------------------------ */

/* What a worker is doing, for the SIGUSR1 dump. */
typedef enum sl__worker_state {
    SL__WS_STARTING = 0,
    SL__WS_RECEIVING,   /* waiting for input */
    SL__WS_PROCESSING,  /* inside process() or run() */
    SL__WS_SENDING,     /* blocked handing output downstream */
    SL__WS_FLUSHING,    /* inside flush() */
    SL__WS_ORDERING,    /* waiting for its turn to release ordered output */
    SL__WS_RETRYING,    /* waiting before retrying process() */
    SL__WS_THROTTLED,   /* waiting for the stage's rate_limit */
    SL__WS_DONE,
} sl__worker_state;

const char *sl__worker_state_name(sl__worker_state s);

/* A stage's own metric (sl_stage_metric_add). Everything but value is
 * written once, before the entry is published by n_extra. */
#define SL__METRIC_NAME_MAX 48
#define SL__STAGE_METRICS_MAX 32

struct sl_stage_metric {
    sl_metric_kind kind;                    /* counter or gauge */
    char name[SL__METRIC_NAME_MAX];         /* [a-z][a-z0-9_]* */
    char label_key[SL__METRIC_NAME_MAX];    /* "" when unlabelled */
    char label_value[SL__METRIC_NAME_MAX];  /* its value */
    const char *help;                       /* borrowed from the stage */
    _Atomic int64_t value;                  /* atomic: relaxed */
};

typedef struct sl__stage_counters {
    _Atomic uint64_t records_in;   /* atomic: records handed to process() */
    _Atomic uint64_t records_out;  /* atomic: emitted or stored */
    _Atomic uint64_t stored;       /* atomic: of records_out, stored by a sink */
    _Atomic uint64_t errors;       /* atomic: failed records and counted errors */
    _Atomic uint64_t dropped;      /* atomic: filtered out on purpose */
    _Atomic uint64_t retries;      /* atomic: retried calls */
    _Atomic uint64_t bytes_in;     /* atomic: bytes read / received */
    _Atomic uint64_t bytes_out;    /* atomic: bytes emitted / stored */
    _Atomic int64_t heartbeat_ns;  /* atomic: last sign of life (real clock) */
    _Atomic int state;             /* atomic: sl__worker_state */
    sl_breaker *_Atomic breaker;   /* atomic: one the stage asked the engine
                                      to report (sl_stage_watch_breaker) */
    sl__hist latency;              /* time per process() call */
    struct sl_stage_metric extra[SL__STAGE_METRICS_MAX]; /* the stage's own */
    _Atomic size_t n_extra;        /* atomic: entries of extra published
                                      (release; readers acquire) */
} sl__stage_counters;

/* counter += n for a single-writer counter. */
static inline void sl__count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline uint64_t sl__counter_get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static inline void sl__worker_set_state(sl__stage_counters *c,
                                        sl__worker_state s)
{
    atomic_store_explicit(&c->state, (int)s, memory_order_relaxed);
}

/* ------------------------------------------------------------------ */
/* The stage context                                                   */
/* ------------------------------------------------------------------ */

/*
 * Where sl_emit() sends a record. Takes ownership of rec on every path.
 * Returns 0, or a negative code (SL_ECANCELED when the run is torn down).
 * The stage context counts records_out/bytes_out on success.
 */
typedef int (*sl__emit_fn)(sl_stage_ctx *sc, sl_record *rec);

/*
 * Where sl_record_reject() sends a held record the stage gave up on: apply
 * on_error to it with code and reason (the stage's text, without the stage
 * name). Takes ownership of rec on every path; returns what
 * sl_record_reject returns. The stage context has already counted the
 * record in `errors`.
 */
typedef int (*sl__reject_fn)(sl_stage_ctx *sc, sl_record *rec, int code,
                             const char *reason);

#define SL__STAGE_ERR_MAX 512

/*
 * Record sizes for bytes_in/bytes_out (sources count what they read
 * themselves). One record in SL__SIZE_SAMPLE is measured — its payload
 * length plus, when it has fields, sl_record_size() (cached in the record
 * until its fields change, else a walk of the fields) — and that measure
 * stands in for the records until the next one: on the others the cost is
 * a countdown. Worker thread only.
 */
#define SL__SIZE_SAMPLE 16

typedef struct sl__size_est {
    uint32_t skip;           /* records still to take the last measure */
    uint64_t last;           /* the last measured size */
} sl__size_est;

/* Measure rec now (and restart the countdown). */
uint64_t sl__record_bytes_measure(sl__size_est *est, const sl_record *rec);

static inline uint64_t sl__record_bytes(sl__size_est *est, const sl_record *rec)
{
    if (est->skip > 0) {
        est->skip--;
        return est->last;
    }
    return sl__record_bytes_measure(est, rec);
}

struct sl_stage_ctx {
    const char *name;             /* stage name; immutable */
    const char *type;             /* stage type name; immutable */
    sl_stage_kind kind;           /* immutable */
    int worker_index;             /* 0..worker_count-1; immutable */
    int worker_count;             /* immutable */
    const sl_clock *clock;        /* never NULL; immutable */
    sl_ctx *ctx;                  /* run context; borrowed */
    sl_ctx *source_ctx;           /* done on stop or cancel; borrowed */
    sl__emit_fn emit;             /* NULL: the stage may not emit */
    void *target;                 /* for emit's and reject's use */
    sl__reject_fn reject;         /* NULL: rejected records fail the call */
    sl__stage_counters *counters; /* this worker's; borrowed */
    const sl_record *current;     /* the input record being processed */
    bool current_consumed;        /* it was emitted, dropped or stored */
    sl__size_est size_in;         /* bytes_in estimate (runtime, harness) */
    sl__size_est size_out;        /* bytes_out estimate */
    bool sizes_off;               /* records are not sized (metrics off);
                                     immutable after set-up */
    struct sl__acks *acks;        /* settings.state tracker, or NULL */
    struct sl__ack_source *ack_source; /* a source worker's ring, or NULL */
    int ack_sink;                 /* a store's sink index, or -1 */
    int err_code;                 /* code of the last sl_stage_error */
    char err[SL__STAGE_ERR_MAX];  /* its message; "" if none */
};

/*
 * Set up sc: name/type/kind/clock (NULL = real), contexts, counters. emit,
 * reject and target start NULL. Thread: owner.
 */
void sl__stage_ctx_init(sl_stage_ctx *sc, const char *name, const char *type,
                        sl_stage_kind kind, int worker_index, int worker_count,
                        const sl_clock *clock, sl_ctx *ctx, sl_ctx *source_ctx,
                        sl__stage_counters *counters);

/* Forget the last error (before a new call). */
void sl__stage_ctx_clear_error(sl_stage_ctx *sc);

/*
 * Before process(rec): remember rec, so that a process() which hands rec on
 * (`return sl_emit(sc, rec);`) and then returns an error does not leave the
 * engine thinking it still owns rec. Also clears the last error.
 */
static inline void sl__stage_ctx_begin_record(sl_stage_ctx *sc,
                                              const sl_record *rec)
{
    sc->current = rec;
    sc->current_consumed = false;
    sc->err_code = 0;
    sc->err[0] = '\0';
}

/* After process(): did the stage hand the input record on? */
static inline bool sl__stage_ctx_end_record(sl_stage_ctx *sc)
{
    bool consumed = sc->current_consumed;
    sc->current = NULL;
    sc->current_consumed = false;
    return consumed;
}

/*
 * The reason the last call failed with code: the message given to
 * sl_stage_error, or sl_strerror(code) when none was.
 */
const char *sl__stage_ctx_reason(const sl_stage_ctx *sc, int code);

/* ------------------------------------------------------------------ */
/* Logging                                                             */
/* ------------------------------------------------------------------ */

/* Lines above this level are not printed. Default SL_LOG_INFO. Thread: any. */
void sl__log_set_level(sl_log_level level);
sl_log_level sl__log_get_level(void);
/* "error", "warn", "info", "debug" -> level. 0 or SL_EINVAL. */
int sl__log_parse_level(const char *s, sl_log_level *out);
/* Where log lines go (default stderr). Thread: owner, before any logging. */
void sl__log_set_stream(FILE *f);
/* When a live progress line is on the terminal: start each log line by
 * clearing it (the progress line is redrawn on its next tick). Thread: any. */
void sl__log_set_clear_line(bool on);

/* One line: "2024-05-01T12:00:00.123Z WARN  [stage] text". stage may be
 * NULL. Thread: any. */
void sl__log(sl_log_level level, const char *stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sl__logv(sl_log_level level, const char *stage, const char *fmt,
              va_list ap) __attribute__((format(printf, 3, 0)));

#endif
