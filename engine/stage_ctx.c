/*
 * The engine side of the stage API: sl_emit, sl_record_drop/stored, error
 * messages, identity and context accessors, counters, logging, and the
 * latency histogram the counters carry. Both the runtime (engine/run.c) and
 * the stage harness (engine/harness.c) use it, each plugging in its own
 * emit target.
 */
#include "engine/stage_ctx.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sluice/error.h"

/* ================================================================== */
/* Histogram                                                           */
/* ================================================================== */

/* Bucket of ns: 0..7 exact, then 8 sub-buckets per power of two. */
int sl__hist_bucket(int64_t ns)
{
    if (ns < SL__HIST_SUB)
        return ns < 0 ? 0 : (int)ns;
    uint64_t v = (uint64_t)ns;
    int e = 63 - __builtin_clzll(v);          /* 3..62 */
    int mant = (int)((v >> (e - 3)) & 7u);
    return SL__HIST_SUB + (e - 3) * SL__HIST_SUB + mant;
}

int64_t sl__hist_bucket_low(int i)
{
    if (i < SL__HIST_SUB)
        return i;
    int k = i - SL__HIST_SUB;
    int e = k / SL__HIST_SUB + 3;
    uint64_t mant = (uint64_t)(k % SL__HIST_SUB);
    return (int64_t)((8u + mant) << (e - 3));
}

int64_t sl__hist_bucket_high(int i)
{
    if (i < SL__HIST_SUB)
        return i;
    if (i >= SL__HIST_BUCKETS - 1)
        return INT64_MAX;
    return sl__hist_bucket_low(i + 1) - 1;
}

void sl__hist_record(sl__hist *h, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    sl__count(&h->buckets[sl__hist_bucket(ns)], 1);
    sl__count(&h->count, 1);
    if (ns > atomic_load_explicit(&h->max_ns, memory_order_relaxed))
        atomic_store_explicit(&h->max_ns, ns, memory_order_relaxed);
}

void sl__hist_accumulate(sl__hist_sum *sum, const sl__hist *h)
{
    for (int i = 0; i < SL__HIST_BUCKETS; i++)
        sum->buckets[i] += atomic_load_explicit(&h->buckets[i],
                                                memory_order_relaxed);
    sum->count += atomic_load_explicit(&h->count, memory_order_relaxed);
    int64_t m = atomic_load_explicit(&h->max_ns, memory_order_relaxed);
    if (m > sum->max_ns)
        sum->max_ns = m;
}

/*
 * The count is recomputed from the buckets: a snapshot taken while a worker
 * records may see the bucket and the total out of step, and the buckets are
 * what the answer is read from.
 */
int64_t sl__hist_quantile(const sl__hist_sum *sum, double q)
{
    uint64_t total = 0;
    for (int i = 0; i < SL__HIST_BUCKETS; i++)
        total += sum->buckets[i];
    if (total == 0)
        return 0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    /* rank of the wanted value, 1-based */
    uint64_t rank = (uint64_t)(q * (double)total + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > total)
        rank = total;
    uint64_t seen = 0;
    for (int i = 0; i < SL__HIST_BUCKETS; i++) {
        seen += sum->buckets[i];
        if (seen >= rank) {
            int64_t v = sl__hist_bucket_high(i);
            return (sum->max_ns > 0 && v > sum->max_ns) ? sum->max_ns : v;
        }
    }
    return sum->max_ns;
}

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

uint64_t sl__record_bytes(sl__size_est *est, const sl_record *rec)
{
    size_t plen = 0;
    sl_record_payload(rec, &plen);
    if (sl_object_len(sl_record_fields(rec)) == 0)
        return plen;
    if (est->seen++ % SL__SIZE_SAMPLE == 0)
        est->last = sl_record_size(rec);
    return est->last;
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
    uint64_t bytes = sl__record_bytes(&sc->size_out, rec);
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
    uint64_t bytes = sl__record_bytes(&sc->size_out, rec);
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

    char small[512];
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    char *text = small;
    if (len >= (int)sizeof(small)) {
        text = malloc((size_t)len + 1);
        if (text != NULL)
            vsnprintf(text, (size_t)len + 1, fmt, ap);
        else
            text = small;   /* truncated is better than nothing */
    }
    flockfile(out);
    if (atomic_load_explicit(&log_clear_line, memory_order_relaxed))
        fputs("\r\033[K", out);
    fputs(prefix, out);
    fputs(text, out);
    fputc('\n', out);
    funlockfile(out);
    if (text != small)
        free(text);
}

void sl__log(sl_log_level level, const char *stage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl__logv(level, stage, fmt, ap);
    va_end(ap);
}
