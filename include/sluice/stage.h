/*
 * Stages: the descriptor every stage type — built-in or plugin — declares,
 * its option table, and the calls a stage makes into the engine.
 *
 * Life of a stage worker (one per `workers:` copy, each on its own thread):
 *
 *   engine allocates state_size zeroed bytes, fills options at their
 *   offsets (defaults applied), then
 *     init(state, sc)                      once; may fail the run
 *     source:  run(state, sc)              loop emitting records until its
 *                                          input is exhausted or
 *                                          sl_stage_stopping(sc)
 *     others:  process(state, sc, rec)     per input record
 *              flush(state, sc)            whenever the input runs dry for a
 *                                          moment, and at end of input;
 *                                          sinks commit here
 *     destroy(state)                       always, even after init failed;
 *                                          the engine then frees option
 *                                          values and the state
 *
 * process() contract: return 0 once the record is dealt with — emitted
 * (sl_emit), dropped (sl_record_drop), or stored (sl_record_stored) — all of
 * which take ownership. Return a negative SL_E* code, after describing the
 * problem with sl_stage_error(), to leave the record with the engine, which
 * applies the stage's on_error policy (fail, skip, dead_letter, retry).
 *
 * Ownership: the state belongs to the engine. Option values in it (strings,
 * lists, maps, compiled expressions) are engine-owned and read-only: the
 * engine frees them after destroy(). Anything else the stage puts in its
 * state (buffers, files, connections) it releases itself in destroy(). The
 * sl_stage_ctx is borrowed and valid only during a callback.
 *
 * Thread: callbacks of one worker run on that worker's own thread, one at a
 * time; different workers of a stage (and different stages of one type) run
 * at once on other threads, each with its own state. The sl_stage_* calls
 * below are for the calling worker's thread only unless noted.
 */
#ifndef SLUICE_STAGE_H
#define SLUICE_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "breaker.h"
#include "clock.h"
#include "context.h"
#include "expr.h"
#include "record.h"
#include "value.h"

/* Exported by the sluice executable to plugins (see plugin.h). */
#pragma GCC visibility push(default)
#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

/* Option types and the C type stored at the option's offset. */
typedef enum sl_opt_type {
    SL_OPT_BOOL = 1,     /* bool */
    SL_OPT_INT,          /* int64_t */
    SL_OPT_DOUBLE,       /* double */
    SL_OPT_STRING,       /* char * (engine-owned) */
    SL_OPT_DURATION,     /* int64_t nanoseconds; YAML "250ms", "5s", "2m", "1h" */
    SL_OPT_RATE,         /* double per second; YAML "100/s", "6000/m", "5/h" */
    SL_OPT_SIZE,         /* int64_t bytes; YAML 4096, "64KiB", "16MiB" */
    SL_OPT_ENUM,         /* int: index into the '|'-separated choices */
    SL_OPT_EXPR,         /* sl_expr * (compiled, engine-owned) */
    SL_OPT_STRING_LIST,  /* sl_strlist; a YAML sequence (a scalar = one item) */
    SL_OPT_STRING_MAP,   /* sl_strmap; a YAML mapping of scalars */
    SL_OPT_EXPR_MAP,     /* sl_exprmap; a YAML mapping of expressions */
} sl_opt_type;

typedef struct sl_strlist {
    size_t n;
    char **items;
} sl_strlist;

typedef struct sl_strmap {
    size_t n;
    char **keys;
    char **values;
} sl_strmap;

typedef struct sl_exprmap {
    size_t n;
    char **keys;
    sl_expr **exprs;
} sl_exprmap;

#define SL_OPT_REQUIRED 0x1u   /* must be given */

typedef struct sl_option {
    sl_opt_type type;
    const char *key;
    const char *default_yaml;  /* default written as YAML text; NULL = none */
    unsigned flags;            /* SL_OPT_* flags */
    size_t offset;             /* where the value goes in the stage state */
    double min, max;           /* inclusive range for numbers; min == max: unchecked */
    const char *choices;       /* SL_OPT_ENUM: "jsonl|csv" */
    const char *description;   /* one line, for `sluice stages` and docs */
} sl_option;

/* Table terminator. */
#define SL_OPTIONS_END { 0, NULL, NULL, 0, 0, 0, 0, NULL, NULL }

/*
 * The pipeline file's value syntaxes, for a stage that reads values out of
 * an SL_OPT_STRING_MAP option (e.g. `retry: {backoff: 100ms}`) and wants
 * them to mean what they mean everywhere else:
 *
 *   sl_parse_duration  "250ms", "5s", "2m", "1h", "1h30m", "1.5s", "0"
 *                      -> nanoseconds
 *   sl_parse_rate      "100/s", "6000/m", "5/h", "100" (per second)
 *                      -> per second
 *
 * Return 0, SL_EINVAL for malformed text (negative values included) or
 * SL_ERANGE beyond int64; *out is set only on success.
 * Thread: any.
 */
int sl_parse_duration(const char *text, int64_t *ns);
int sl_parse_rate(const char *text, double *per_s);

/* ------------------------------------------------------------------ */
/* The stage context: calls a stage makes into the engine              */
/* ------------------------------------------------------------------ */

typedef struct sl_stage_ctx sl_stage_ctx;

/*
 * Send rec downstream (takes ownership). May block while the output is full
 * (backpressure). Returns 0, or SL_ECANCELED when the run is being torn down
 * (rec is then freed; the stage should return promptly). A stage with no
 * downstream (a sink) must not emit: SL_EINVAL, and rec is freed.
 * Thread: worker.
 */
int sl_emit(sl_stage_ctx *sc, sl_record *rec);

/* The record was filtered out on purpose: counts in `dropped`, frees it
 * (takes ownership). Thread: worker. */
void sl_record_drop(sl_stage_ctx *sc, sl_record *rec);

/* A sink stored rec durably (committed): counts in records_out, frees it
 * (takes ownership). Thread: worker. */
void sl_record_stored(sl_stage_ctx *sc, sl_record *rec);

/*
 * A sink that holds records until its batch commits may instead count them
 * with sl_stage_count_stored(sc, n, bytes) and free them itself
 * (sl_record_free). Thread: worker.
 */
void sl_stage_count_stored(sl_stage_ctx *sc, uint64_t n, uint64_t bytes);

/*
 * Describe why the current call failed ("line 12: expected ',' at column 7").
 * The engine prefixes the stage name. printf-style; the text is copied (at
 * most 511 bytes kept). Returns code unchanged, so
 * `return sl_stage_error(sc, SL_EPARSE, "...")` reads naturally.
 * Thread: worker.
 */
int sl_stage_error(sl_stage_ctx *sc, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Give up on rec, a record the stage holds beyond the call that brought it
 * (one of a batch a sink could not commit, say), and have the engine apply
 * the stage's on_error policy to it, as to a record whose process() failed
 * with code and the reason given here (printf-style, at most 511 bytes
 * kept; the engine prefixes the stage name):
 *
 *   skip         rec counts in `errors` and is freed;
 *   dead_letter  rec is written to the dead-letter file with the stage name
 *                and the reason, counts in `errors` and is freed;
 *   fail, retry  rec counts in `errors` and is freed, and the call returns
 *                code (also made the stage's error, as by sl_stage_error):
 *                the stage fails its callback with it, which fails the run.
 *                (The engine's retries are for the record in hand; a held
 *                record the stage gave up on has had the stage's own.)
 *
 * Either way the record is done with, like one the engine skipped or
 * dead-lettered itself (its source position may be acknowledged). rec may
 * be the record being processed; process() then returns 0, or what this
 * returned. Takes ownership of rec on every path. Returns 0 (skip,
 * dead_letter), code (fail, retry; a code >= 0 is taken as SL_EINTERNAL),
 * SL_EINVAL for a NULL rec, or SL_EIO when the dead-letter file cannot be
 * written, which fails the run.
 * Thread: worker.
 */
int sl_record_reject(sl_stage_ctx *sc, sl_record *rec, int code,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Sources: true once the pipeline asks sources to stop (SIGINT/SIGTERM,
 * deadline, failure). run() should return 0 soon after. Thread: any. */
bool sl_stage_stopping(const sl_stage_ctx *sc);

/* The worker's context: done when the run is cancelled. Pass it to blocking
 * calls (sl_ctx_sleep, channel ops) so they wake on cancel. Borrowed, valid
 * until destroy() returns; take sl_ctx_ref() to hand it to another thread.
 * Thread: worker. */
sl_ctx *sl_stage_context(sl_stage_ctx *sc);

/* A context done when the run is cancelled *or* sources are asked to stop:
 * what a source waits on between records. Borrowed, as sl_stage_context.
 * Thread: worker. */
sl_ctx *sl_stage_source_context(sl_stage_ctx *sc);

/* The worker's identity and clock. The name and the clock are borrowed and
 * live until destroy() returns. Thread: worker. */
const char *sl_stage_name(const sl_stage_ctx *sc);
int sl_stage_worker_index(const sl_stage_ctx *sc);   /* 0..workers-1 */
int sl_stage_worker_count(const sl_stage_ctx *sc);
const sl_clock *sl_stage_clock(const sl_stage_ctx *sc);

/* Count retries / extra errors a stage handles itself (e.g. HTTP).
 * Thread: worker. */
void sl_stage_count_retry(sl_stage_ctx *sc);
void sl_stage_count_error(sl_stage_ctx *sc);
/* Bytes read by a source (bytes_in) — records_in/out are counted for you. */
void sl_stage_count_bytes_in(sl_stage_ctx *sc, uint64_t n);

/*
 * Report circuit breaker b in this worker's metrics (state, times opened,
 * calls refused: `sluice metrics`, /metrics, /health). Call from init().
 * b must stay valid until the stage's destroy() is called; the engine
 * stops reading it just before. Reading its state may move an open
 * breaker whose cooldown has passed to half-open, and so call its
 * on_change on a metrics thread. A breaker the engine applies itself
 * (the `circuit_breaker` key of a stage that does not declare it) is
 * reported without this.
 */
void sl_stage_watch_breaker(sl_stage_ctx *sc, sl_breaker *b);

/*
 * A stage's own metrics, beside the ones every stage has: counters and
 * gauges it declares in init() and updates from any of its threads. They
 * appear under the stage in the JSON snapshot, in "extra" (a plain number,
 * or with a label an object keyed by the label's value:
 * "extra":{"requests":{"200":12,"429":3},"in_flight":0}), and in the
 * Prometheus text as the family sluice_<stage type>_<name> (counters with
 * _total appended) labelled {pipeline, stage[, label_key]}.
 *
 * sl_stage_metric_add: name is [a-z][a-z0-9_]* (at most 47 bytes);
 * label_key (NULL: none) likewise; label_value any text up to 47 bytes;
 * help one line, borrowed until destroy(). Several calls with the same
 * name and kind but other label values make one labelled family. Returns
 * 0 and *out, SL_EINVAL for a bad name or a name reused with another kind
 * or label key, or SL_ELIMIT past 32 metrics per worker. Thread: worker.
 *
 * sl_stage_metric_add_n adds n to a counter (or a gauge: n may be
 * negative); sl_stage_metric_set sets a gauge. Relaxed atomics: cheap, and
 * safe from any thread while the stage lives (until destroy() returns).
 */
typedef enum sl_metric_kind {
    SL_METRIC_COUNTER = 1,   /* only goes up */
    SL_METRIC_GAUGE = 2,     /* goes up and down */
} sl_metric_kind;

typedef struct sl_stage_metric sl_stage_metric;

int sl_stage_metric_add(sl_stage_ctx *sc, sl_metric_kind kind,
                        const char *name, const char *label_key,
                        const char *label_value, const char *help,
                        sl_stage_metric **out);
void sl_stage_metric_add_n(sl_stage_metric *m, int64_t n);
void sl_stage_metric_set(sl_stage_metric *m, int64_t v);

typedef enum sl_log_level {
    SL_LOG_ERROR = 0,
    SL_LOG_WARN,
    SL_LOG_INFO,
    SL_LOG_DEBUG,
} sl_log_level;

/* Log a line to stderr prefixed with time, level and stage. sc may be NULL
 * (no stage in the prefix). Thread: any. */
void sl_stage_log(const sl_stage_ctx *sc, sl_log_level level,
                  const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------ */
/* Delivery: saved positions (settings.state, docs/reliability.md)     */
/* ------------------------------------------------------------------ */

/* Where a source's previous run got to: the position of the last record
 * every store downstream had dealt with. Strings are borrowed until the
 * stage's destroy(). */
typedef struct sl_resume {
    const char *locator;    /* file path or URL; NULL for none */
    int64_t offset;         /* byte offset after that record, or -1 */
    int64_t seq;            /* its sequence number */
    uint64_t file_dev;      /* identity of the file at locator when it was */
    uint64_t file_ino;      /* read (sl_stage_source_file); 0 unknown */
} sl_resume;

/*
 * Sources: the saved point to resume after. Returns 0 with *out filled, or
 * SL_ENOTFOUND when there is none (no settings.state, a first run, or a
 * store that has nothing yet): start from the beginning. A source that
 * resumes must emit the same records in the same order after that point
 * as the previous run did. Call from run(), before emitting. Thread: worker.
 */
int sl_stage_resume_point(sl_stage_ctx *sc, sl_resume *out);

/*
 * Sources: the saved point could not be used (the file changed under it):
 * every store receives everything this source emits from now on, and
 * saved positions restart from here. Call before emitting. Thread: worker.
 */
void sl_stage_resume_reset(sl_stage_ctx *sc);

/*
 * Sources reading files: the file that records with locator path come
 * from has this identity (st_dev, st_ino); it is saved with positions so a
 * later run can tell a replaced file. 0 or SL_ENOMEM. Thread: worker.
 */
int sl_stage_source_file(sl_stage_ctx *sc, const char *path, uint64_t dev,
                         uint64_t ino);

/* The pipeline's settings.state file, or NULL. Thread: worker. */
const char *sl_stage_state_path(const sl_stage_ctx *sc);

/*
 * Stores writing to the settings.state SQLite file (exactly-once): inside
 * the open transaction that holds recs' rows, before COMMIT, call
 * sl_stage_acks_prepare(sc, db, recs, n) with the store's sqlite3
 * connection; it writes the positions those rows complete through db. Then
 * COMMIT and call sl_stage_acks_finish(sc, recs, n, committed) whatever
 * happened — between the two calls the stage must not emit, and recs
 * stay the store's to free as usual afterwards. Without settings.state (or
 * for a stage that is not a store) both do nothing and prepare returns 0.
 * Returns 0, SL_EIO (writing failed: roll back; finish has been called)
 * or SL_EINVAL. Thread: worker.
 */
/*
 * Stores writing to the settings.state file, before prepare: how many of
 * recs, from the first, may commit now — the longest run recs[0..k) whose
 * commit completes every source position it holds, the rest staying held
 * (the other elements of a split line still on their way, an earlier
 * record still in flight). Commit only those k (prepare/finish with k)
 * and keep recs[k..n) for a later transaction. At the end of input every
 * source record is complete, so k == n. Without settings.state: n.
 * Thread: worker.
 */
size_t sl_stage_acks_ready(sl_stage_ctx *sc, sl_record *const *recs,
                           size_t n);
int sl_stage_acks_prepare(sl_stage_ctx *sc, void *sqlite_db,
                          sl_record *const *recs, size_t n);
void sl_stage_acks_finish(sl_stage_ctx *sc, sl_record *const *recs, size_t n,
                          bool committed);

/* ------------------------------------------------------------------ */
/* The descriptor                                                      */
/* ------------------------------------------------------------------ */

typedef enum sl_stage_kind {
    SL_STAGE_SOURCE = 1,     /* no input; run() produces records */
    SL_STAGE_TRANSFORM = 2,  /* input and output; process() */
    SL_STAGE_SINK = 3,       /* input only; process() + flush() commit */
} sl_stage_kind;

typedef struct sl_stage_desc {
    /* --- ABI 1.0 --- */
    uint16_t abi_major;        /* SL_ABI_MAJOR the stage was built against */
    uint16_t abi_minor;        /* SL_ABI_MINOR the stage was built against */
    uint32_t struct_size;      /* sizeof(sl_stage_desc) when built */
    const char *name;          /* type name used in YAML: "json" */
    sl_stage_kind kind;
    const char *summary;       /* one line for `sluice stages` */
    const sl_option *options;  /* terminated by SL_OPTIONS_END; may be NULL */
    size_t state_size;         /* bytes of per-worker state (>= options' reach) */
    /* Callbacks (see the top of this file). NULL for an optional one means
     * "nothing to do". Each returns 0 or a negative SL_E* code after
     * sl_stage_error(); all run on the worker's thread. */
    int (*init)(void *state, sl_stage_ctx *sc);                    /* may be NULL */
    int (*run)(void *state, sl_stage_ctx *sc);                     /* sources */
    int (*process)(void *state, sl_stage_ctx *sc, sl_record *rec); /* others */
    int (*flush)(void *state, sl_stage_ctx *sc);                   /* may be NULL */
    void (*destroy)(void *state);                                  /* may be NULL */
    /* --- end of ABI 1.0; new fields go below, with the minor they came in --- */
} sl_stage_desc;

#ifdef __cplusplus
}
#endif
#pragma GCC visibility pop
#endif
