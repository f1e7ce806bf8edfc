/*
 * The engine side of the stage API: sl_emit, sl_record_drop/stored, error
 * messages, identity and context accessors, counters (and a circuit
 * breaker the stage asks the engine to report), logging. Both the runtime
 * (engine/run.c) and the stage harness (engine/harness.c) use it, each
 * plugging in its own emit target. The latency histogram the counters
 * carry is metrics/histogram.c.
 */
#include "engine/stage_ctx.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine/record_internal.h"
#include "sluice/error.h"

const char *sl__worker_state_name(sl__worker_state s)
{
    switch (s) {
    case SL__WS_STARTING:
        return "starting";
    case SL__WS_RECEIVING:
        return "receiving";
    case SL__WS_PROCESSING:
        return "processing";
    case SL__WS_SENDING:
        return "sending";
    case SL__WS_FLUSHING:
        return "flushing";
    case SL__WS_ORDERING:
        return "ordering";
    case SL__WS_RETRYING:
        return "retrying";
    case SL__WS_THROTTLED:
        return "throttled";
    case SL__WS_DONE:
        return "done";
    }
    return "unknown";
}

/* ================================================================== */
/* Stage context                                                       */
/* ================================================================== */

void sl__stage_ctx_init(sl_stage_ctx *sc, const char *name, const char *type,
                        sl_stage_kind kind, int worker_index, int worker_count,
                        const sl_clock *clock, sl_ctx *ctx, sl_ctx *source_ctx,
                        sl__stage_counters *counters)
{
    memset(sc, 0, sizeof(*sc));
    sc->name = name;
    sc->type = type;
    sc->kind = kind;
    sc->worker_index = worker_index;
    sc->worker_count = worker_count;
    sc->clock = clock != NULL ? clock : sl_clock_real();
    sc->ctx = ctx;
    sc->source_ctx = source_ctx;
    sc->counters = counters;
}

void sl__stage_ctx_clear_error(sl_stage_ctx *sc)
{
    sc->err_code = 0;
    sc->err[0] = '\0';
}

const char *sl__stage_ctx_reason(const sl_stage_ctx *sc, int code)
{
    if (sc->err[0] != '\0')
        return sc->err;
    return sl_strerror(code);
}

uint64_t sl__record_bytes_measure(sl__size_est *est, const sl_record *rec)
{
    size_t size;
    if (!sl__record_size_known(rec, &size))
        size = sl_record_size(rec);   /* walks the fields, caches the size */
    est->last = size;
    est->skip = SL__SIZE_SAMPLE - 1;
    return size;
}

/*
 * Hands rec to the emit target. A stage without a target (a sink, or a stage
 * whose output nobody reads and the engine refused) gets SL_EINVAL and the
 * record is freed, per "takes ownership".
 */
int sl_emit(sl_stage_ctx *sc, sl_record *rec)
{
    if (rec == NULL)
        return SL_EINVAL;
    if (rec == sc->current)
        sc->current_consumed = true;
    if (sc->emit == NULL) {
        sl_record_free(rec);
        return SL_EINVAL;
    }
    uint64_t bytes = sc->sizes_off ? 0 : sl__record_bytes(&sc->size_out, rec);
    int rc = sc->emit(sc, rec);
    if (rc == 0) {
        sl__count(&sc->counters->records_out, 1);
        sl__count(&sc->counters->bytes_out, bytes);
    }
    return rc;
}

void sl_record_drop(sl_stage_ctx *sc, sl_record *rec)
{
    if (rec == NULL)
        return;
    if (rec == sc->current)
        sc->current_consumed = true;
    sl__count(&sc->counters->dropped, 1);
    sl_record_free(rec);
}

void sl_record_stored(sl_stage_ctx *sc, sl_record *rec)
{
    if (rec == NULL)
        return;
    if (rec == sc->current)
        sc->current_consumed = true;
    uint64_t bytes = sc->sizes_off ? 0 : sl__record_bytes(&sc->size_out, rec);
    sl_stage_count_stored(sc, 1, bytes);
    sl_record_free(rec);
}

void sl_stage_count_stored(sl_stage_ctx *sc, uint64_t n, uint64_t bytes)
{
    sl__count(&sc->counters->records_out, n);
    sl__count(&sc->counters->stored, n);
    sl__count(&sc->counters->bytes_out, bytes);
}

int sl_stage_error(sl_stage_ctx *sc, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sc->err, sizeof(sc->err), fmt, ap);
    va_end(ap);
    sc->err_code = code;
    return code;
}

/*
 * Counted in `errors` here, for every policy; the target (the runtime's,
 * the harness's) applies on_error. Without a target the record fails the
 * call, as under on_error: fail.
 */
int sl_record_reject(sl_stage_ctx *sc, sl_record *rec, int code,
                     const char *fmt, ...)
{
    if (rec == NULL)
        return SL_EINVAL;
    if (rec == sc->current)
        sc->current_consumed = true;
    if (code >= 0)
        code = SL_EINTERNAL;
    char reason[SL__STAGE_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    sl__count(&sc->counters->errors, 1);
    if (sc->reject == NULL) {
        sl_record_free(rec);
        return sl_stage_error(sc, code, "%s", reason);
    }
    return sc->reject(sc, rec, code, reason);
}

bool sl_stage_stopping(const sl_stage_ctx *sc)
{
    return (sc->source_ctx != NULL && sl_ctx_is_done(sc->source_ctx)) ||
           (sc->ctx != NULL && sl_ctx_is_done(sc->ctx));
}

sl_ctx *sl_stage_context(sl_stage_ctx *sc)
{
    return sc->ctx;
}

sl_ctx *sl_stage_source_context(sl_stage_ctx *sc)
{
    return sc->source_ctx != NULL ? sc->source_ctx : sc->ctx;
}

const char *sl_stage_name(const sl_stage_ctx *sc)
{
    return sc->name;
}

int sl_stage_worker_index(const sl_stage_ctx *sc)
{
    return sc->worker_index;
}

int sl_stage_worker_count(const sl_stage_ctx *sc)
{
    return sc->worker_count;
}

const sl_clock *sl_stage_clock(const sl_stage_ctx *sc)
{
    return sc->clock;
}

void sl_stage_count_retry(sl_stage_ctx *sc)
{
    sl__count(&sc->counters->retries, 1);
}

void sl_stage_count_error(sl_stage_ctx *sc)
{
    sl__count(&sc->counters->errors, 1);
}

void sl_stage_count_bytes_in(sl_stage_ctx *sc, uint64_t n)
{
    sl__count(&sc->counters->bytes_in, n);
}

void sl_stage_watch_breaker(sl_stage_ctx *sc, sl_breaker *b)
{
    atomic_store(&sc->counters->breaker, b);
}

static bool metric_name_ok(const char *s)
{
    if (s == NULL || s[0] < 'a' || s[0] > 'z' ||
        strlen(s) >= SL__METRIC_NAME_MAX)
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return false;
    return true;
}

/*
 * Entries are filled, then published by a release store of n_extra, so a
 * metrics thread that acquires n_extra reads whole entries only. Only the
 * worker's thread adds.
 */
int sl_stage_metric_add(sl_stage_ctx *sc, sl_metric_kind kind,
                        const char *name, const char *label_key,
                        const char *label_value, const char *help,
                        sl_stage_metric **out)
{
    sl__stage_counters *c = sc->counters;
    if ((kind != SL_METRIC_COUNTER && kind != SL_METRIC_GAUGE) ||
        !metric_name_ok(name) || help == NULL)
        return SL_EINVAL;
    if (label_key != NULL &&
        (!metric_name_ok(label_key) || label_value == NULL ||
         strlen(label_value) >= SL__METRIC_NAME_MAX))
        return SL_EINVAL;
    size_t n = atomic_load_explicit(&c->n_extra, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        const struct sl_stage_metric *m = &c->extra[i];
        if (strcmp(m->name, name) != 0)
            continue;
        if (m->kind != kind ||
            strcmp(m->label_key, label_key != NULL ? label_key : "") != 0)
            return SL_EINVAL;
        if (label_key == NULL || strcmp(m->label_value, label_value) == 0)
            return SL_EINVAL;   /* the same metric twice */
    }
    if (n >= SL__STAGE_METRICS_MAX)
        return SL_ELIMIT;
    struct sl_stage_metric *m = &c->extra[n];
    m->kind = kind;
    snprintf(m->name, sizeof(m->name), "%s", name);
    snprintf(m->label_key, sizeof(m->label_key), "%s",
             label_key != NULL ? label_key : "");
    snprintf(m->label_value, sizeof(m->label_value), "%s",
             label_key != NULL ? label_value : "");
    m->help = help;
    atomic_store_explicit(&m->value, 0, memory_order_relaxed);
    atomic_store_explicit(&c->n_extra, n + 1, memory_order_release);
    *out = m;
    return 0;
}

void sl_stage_metric_add_n(sl_stage_metric *m, int64_t n)
{
    atomic_fetch_add_explicit(&m->value, n, memory_order_relaxed);
}

void sl_stage_metric_set(sl_stage_metric *m, int64_t v)
{
    atomic_store_explicit(&m->value, v, memory_order_relaxed);
}

void sl_stage_log(const sl_stage_ctx *sc, sl_log_level level,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl__logv(level, sc != NULL ? sc->name : NULL, fmt, ap);
    va_end(ap);
}

/* ================================================================== */
/* Logging                                                             */
/* ================================================================== */

static _Atomic int log_level = SL_LOG_INFO;
static FILE *_Atomic log_stream;
static _Atomic bool log_clear_line;

void sl__log_set_clear_line(bool on)
{
    atomic_store(&log_clear_line, on);
}

void sl__log_set_level(sl_log_level level)
{
    atomic_store(&log_level, (int)level);
}

sl_log_level sl__log_get_level(void)
{
    return (sl_log_level)atomic_load(&log_level);
}

int sl__log_parse_level(const char *s, sl_log_level *out)
{
    static const struct {
        const char *name;
        sl_log_level level;
    } names[] = {
        {"error", SL_LOG_ERROR}, {"warn", SL_LOG_WARN},
        {"warning", SL_LOG_WARN}, {"info", SL_LOG_INFO},
        {"debug", SL_LOG_DEBUG},
    };
    if (s == NULL)
        return SL_EINVAL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return SL_EINVAL;
}

void sl__log_set_stream(FILE *f)
{
    atomic_store(&log_stream, f);
}

static const char *level_name(sl_log_level level)
{
    switch (level) {
    case SL_LOG_ERROR:
        return "ERROR";
    case SL_LOG_WARN:
        return "WARN ";
    case SL_LOG_INFO:
        return "INFO ";
    case SL_LOG_DEBUG:
        return "DEBUG";
    }
    return "?    ";
}

/*
 * Formats the whole line first and writes it with one call under the
 * stream's lock, so lines from different threads never interleave.
 */
void sl__logv(sl_log_level level, const char *stage, const char *fmt,
              va_list ap)
{
    if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    FILE *out = atomic_load(&log_stream);
    if (out == NULL)
        out = stderr;

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[40];
    size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", ts.tv_nsec / 1000000L);

    char prefix[160];
    if (stage != NULL)
        snprintf(prefix, sizeof(prefix), "%s %s [%s] ", stamp,
                 level_name(level), stage);
    else
        snprintf(prefix, sizeof(prefix), "%s %s ", stamp, level_name(level));

    /* The whole line in one buffer — "\r\033[K" when a live progress line
     * is on screen, prefix, text, newline — written with one call: stderr
     * is unbuffered, and other processes may append to the same file. */
    const char *clear = atomic_load_explicit(&log_clear_line, memory_order_relaxed)
                            ? "\r\033[K" : "";
    char small[1024];
    int hn = snprintf(small, sizeof(small), "%s%s", clear, prefix);
    if (hn < 0)
        hn = 0;
    va_list ap2;
    va_copy(ap2, ap);
    int tn = vsnprintf(small + hn, sizeof(small) - (size_t)hn - 1, fmt, ap2);
    va_end(ap2);
    if (tn < 0)
        tn = 0;
    char *line = small;
    size_t len = (size_t)hn + (size_t)tn;
    if (len + 2 > sizeof(small)) {
        line = malloc(len + 2);
        if (line != NULL) {
            memcpy(line, small, (size_t)hn);
            vsnprintf(line + hn, (size_t)tn + 1, fmt, ap);
        } else {
            line = small;   /* truncated is better than nothing */
            len = sizeof(small) - 2;
        }
    }
    line[len++] = '\n';
    flockfile(out);
    fwrite(line, 1, len, out);
    funlockfile(out);
    if (line != small)
        free(line);
}

void sl__log(sl_log_level level, const char *stage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl__logv(level, stage, fmt, ap);
    va_end(ap);
}
