/*
 * Metrics snapshots of a run: summing each stage's worker counters,
 * latency percentiles from the histograms, channel figures, and writing the
 * JSON snapshot (DESIGN.md "Metrics — contract") atomically, as a history
 * line, or as the summary table `sluice run` prints at the end.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/registry.h"
#include "engine/run_internal.h"
#include "sluice/error.h"

/* Records a stage has worked through: emitted for a source, taken in for
 * everything else. What throughput_rps counts. */
static uint64_t stage_progress(const sl__stage_snapshot *s)
{
    return s->kind == SL_STAGE_SOURCE ? s->records_out : s->records_in;
}

int sl__run_snapshot_take(sl__run *run, const sl__run_snapshot *prev,
                          sl__run_snapshot *out)
{
    memset(out, 0, sizeof(*out));
    out->stages = calloc(run->n_stages > 0 ? run->n_stages : 1,
                         sizeof(*out->stages));
    if (out->stages == NULL)
        return SL_ENOMEM;
    sl__hist_sum *sum = malloc(sizeof(*sum));
    if (sum == NULL) {
        free(out->stages);
        out->stages = NULL;
        return SL_ENOMEM;
    }
    int64_t start = atomic_load(&run->start_ns);
    int64_t end = atomic_load(&run->end_ns);
    int64_t now = end > 0 ? end : sl__run_now();
    out->pipeline = run->pipeline;
    out->status = SL__RUN_RUNNING;
    out->elapsed_s = start > 0 ? (double)(now - start) / 1e9 : 0.0;
    out->cause = atomic_load(&run->cause_ready) ? run->cause : "";
    out->n_stages = run->n_stages;

    for (size_t i = 0; i < run->n_stages; i++) {
        run_stage *st = &run->stages[i];
        sl__stage_snapshot *s = &out->stages[i];
        s->name = st->conf->name;
        s->type = st->desc->name;
        s->kind = st->desc->kind;
        s->workers = st->n_workers;
        memset(sum, 0, sizeof(*sum));
        int64_t blocked = 0, idle = 0;
        for (int k = 0; k < st->n_workers; k++) {
            run_worker *w = &st->workers[k];
            const sl__stage_counters *c = &w->counters;
            s->records_in += sl__counter_get(&c->records_in);
            s->records_out += sl__counter_get(&c->records_out);
            s->errors += sl__counter_get(&c->errors);
            s->dropped += sl__counter_get(&c->dropped);
            s->retries += sl__counter_get(&c->retries);
            s->bytes_in += sl__counter_get(&c->bytes_in);
            s->bytes_out += sl__counter_get(&c->bytes_out);
            blocked += atomic_load_explicit(&w->blocked_send_ns,
                                            memory_order_relaxed);
            idle += atomic_load_explicit(&w->idle_recv_ns,
                                         memory_order_relaxed);
            sl__hist_accumulate(sum, &c->latency);
        }
        if (st->in != NULL) {
            sl_chan_stats cs;
            sl_chan_stats_get(st->in, &cs);
            s->queue_depth = cs.depth;
            s->queue_capacity = cs.capacity;
            s->queue_max_depth = cs.max_depth;
        }
        s->blocked_send_s = (double)blocked / 1e9;
        s->idle_recv_s = (double)idle / 1e9;
        s->latency_p50_us = (double)sl__hist_quantile(sum, 0.50) / 1e3;
        s->latency_p90_us = (double)sl__hist_quantile(sum, 0.90) / 1e3;
        s->latency_p99_us = (double)sl__hist_quantile(sum, 0.99) / 1e3;
        s->latency_max_us = (double)sum->max_ns / 1e3;

        double secs = out->elapsed_s;
        uint64_t done = stage_progress(s);
        if (prev != NULL && prev->n_stages == run->n_stages &&
            out->elapsed_s > prev->elapsed_s) {
            secs = out->elapsed_s - prev->elapsed_s;
            uint64_t before = stage_progress(&prev->stages[i]);
            done = done >= before ? done - before : 0;
        }
        s->throughput_rps = secs > 0 ? (double)done / secs : 0.0;
    }
    free(sum);
    return 0;
}

void sl__run_snapshot_fini(sl__run_snapshot *s)
{
    if (s == NULL)
        return;
    free(s->stages);
    s->stages = NULL;
    s->n_stages = 0;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

static int put(sl_buf *b, const char *s)
{
    return sl_buf_append(b, s, strlen(s));
}

static int putf(sl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int putf(sl_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return SL_EINVAL;
    return sl_buf_append(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n
                                                          : sizeof(tmp) - 1);
}

/* A JSON string literal. Control characters escaped; bytes >= 0x80 pass
 * through (names and causes are UTF-8 text). */
static int put_str(sl_buf *b, const char *s)
{
    int rc = sl_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++) {
        switch (*p) {
        case '"':
            rc = put(b, "\\\"");
            break;
        case '\\':
            rc = put(b, "\\\\");
            break;
        case '\n':
            rc = put(b, "\\n");
            break;
        case '\r':
            rc = put(b, "\\r");
            break;
        case '\t':
            rc = put(b, "\\t");
            break;
        default:
            if (*p < 0x20)
                rc = putf(b, "\\u%04x", *p);
            else
                rc = sl_buf_putc(b, (char)*p);
        }
    }
    if (rc == 0)
        rc = sl_buf_putc(b, '"');
    return rc;
}

/* A finite number with up to 3 decimals ("12", "0.5", "1234.568"). */
static int put_num(sl_buf *b, double v)
{
    if (v != v || v > 1e300 || v < -1e300)
        v = 0;
    char tmp[64];
    snprintf(tmp, sizeof(tmp), "%.3f", v);
    char *dot = strchr(tmp, '.');
    if (dot != NULL) {
        char *end = tmp + strlen(tmp) - 1;
        while (end > dot && *end == '0')
            *end-- = '\0';
        if (end == dot)
            *end = '\0';
    }
    return put(b, tmp);
}

int sl__run_snapshot_json(const sl__run_snapshot *s, sl_buf *b)
{
    int rc = 0;
    rc |= put(b, "{\"pipeline\":");
    rc |= put_str(b, s->pipeline);
    rc |= put(b, ",\"status\":");
    rc |= put_str(b, sl__run_status_name(s->status));
    rc |= put(b, ",\"elapsed_s\":");
    rc |= put_num(b, s->elapsed_s);
    if (s->cause != NULL && s->cause[0] != '\0') {
        rc |= put(b, ",\"cause\":");
        rc |= put_str(b, s->cause);
    }
    rc |= put(b, ",\"stages\":[");
    for (size_t i = 0; i < s->n_stages; i++) {
        const sl__stage_snapshot *t = &s->stages[i];
        if (i > 0)
            rc |= sl_buf_putc(b, ',');
        rc |= put(b, "{\"name\":");
        rc |= put_str(b, t->name);
        rc |= put(b, ",\"type\":");
        rc |= put_str(b, t->type);
        rc |= put(b, ",\"kind\":");
        rc |= put_str(b, sl__stage_kind_name(t->kind));
        rc |= putf(b, ",\"workers\":%d", t->workers);
        rc |= putf(b, ",\"records_in\":%llu,\"records_out\":%llu"
                      ",\"errors\":%llu,\"dropped\":%llu,\"retries\":%llu"
                      ",\"bytes_in\":%llu,\"bytes_out\":%llu",
                   (unsigned long long)t->records_in,
                   (unsigned long long)t->records_out,
                   (unsigned long long)t->errors,
                   (unsigned long long)t->dropped,
                   (unsigned long long)t->retries,
                   (unsigned long long)t->bytes_in,
                   (unsigned long long)t->bytes_out);
        rc |= putf(b, ",\"queue_depth\":%zu,\"queue_capacity\":%zu"
                      ",\"queue_max_depth\":%zu",
                   t->queue_depth, t->queue_capacity, t->queue_max_depth);
        rc |= put(b, ",\"blocked_send_s\":");
        rc |= put_num(b, t->blocked_send_s);
        rc |= put(b, ",\"idle_recv_s\":");
        rc |= put_num(b, t->idle_recv_s);
        rc |= put(b, ",\"latency_us\":{\"p50\":");
        rc |= put_num(b, t->latency_p50_us);
        rc |= put(b, ",\"p90\":");
        rc |= put_num(b, t->latency_p90_us);
        rc |= put(b, ",\"p99\":");
        rc |= put_num(b, t->latency_p99_us);
        rc |= put(b, ",\"max\":");
        rc |= put_num(b, t->latency_max_us);
        rc |= put(b, "},\"throughput_rps\":");
        rc |= put_num(b, t->throughput_rps);
        rc |= sl_buf_putc(b, '}');
    }
    rc |= put(b, "]}");
    return rc != 0 ? SL_ENOMEM : 0;
}

/* Write all of data to fd; false on error. */
static bool write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        data += n;
        len -= (size_t)n;
    }
    return true;
}

/*
 * Readers never see a half-written file: the snapshot goes to a temporary
 * file next to path, which then replaces path in one rename.
 */
int sl__run_snapshot_write(const sl__run_snapshot *s, const char *path)
{
    sl_buf b;
    sl_buf_init(&b);
    int rc = sl__run_snapshot_json(s, &b);
    if (rc == 0)
        rc = sl_buf_putc(&b, '\n');
    if (rc != 0)
        goto out;
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (tmp == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        rc = SL_EIO;
        goto out_free_tmp;
    }
    bool ok = write_all(fileno(f), b.data, b.len);
    if (fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, path) != 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        rc = SL_EIO;
    }
out_free_tmp:
    free(tmp);
out:
    sl_buf_fini(&b);
    return rc;
}

int sl__run_snapshot_append(const sl__run_snapshot *s, const char *path)
{
    sl_buf b;
    sl_buf_init(&b);
    int rc = sl__run_snapshot_json(s, &b);
    if (rc == 0)
        rc = sl_buf_putc(&b, '\n');
    if (rc != 0)
        goto out;
    FILE *f = fopen(path, "a");
    if (f == NULL) {
        rc = SL_EIO;
        goto out;
    }
    /* one write of the whole line: O_APPEND keeps lines whole */
    bool ok = write_all(fileno(f), b.data, b.len);
    if (fclose(f) != 0 || !ok)
        rc = SL_EIO;
out:
    sl_buf_fini(&b);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The summary table                                                   */
/* ------------------------------------------------------------------ */

/* 1234567 -> "1.23M", 12345 -> "12.3k", 999 -> "999". */
static void human(double v, char *buf, size_t size)
{
    if (v >= 1e9)
        snprintf(buf, size, "%.3gG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, size, "%.3gM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, size, "%.3gk", v / 1e3);
    else if (v >= 100 || v == (double)(long long)v)
        snprintf(buf, size, "%.0f", v);
    else
        snprintf(buf, size, "%.3g", v);
}

static void latency(double us, char *buf, size_t size)
{
    if (us >= 1e6)
        snprintf(buf, size, "%.3gs", us / 1e6);
    else if (us >= 1e3)
        snprintf(buf, size, "%.3gms", us / 1e3);
    else
        snprintf(buf, size, "%.3gus", us);
}

void sl__run_snapshot_print_table(const sl__run_snapshot *s, FILE *out)
{
    size_t w = 5;
    for (size_t i = 0; i < s->n_stages; i++) {
        size_t n = strlen(s->stages[i].name);
        if (n > w)
            w = n;
    }
    if (w > 32)
        w = 32;
    fprintf(out, "%-*s %-10s %9s %9s %7s %7s %9s %8s %8s %8s %8s\n", (int)w,
            "stage", "type", "in", "out", "errors", "dropped", "rec/s", "p50",
            "p99", "blocked", "idle");
    for (size_t i = 0; i < s->n_stages; i++) {
        const sl__stage_snapshot *t = &s->stages[i];
        char in[16], outs[16], err[16], drop[16], rps[16], p50[16], p99[16];
        human((double)t->records_in, in, sizeof(in));
        human((double)t->records_out, outs, sizeof(outs));
        human((double)t->errors, err, sizeof(err));
        human((double)t->dropped, drop, sizeof(drop));
        human(t->throughput_rps, rps, sizeof(rps));
        latency(t->latency_p50_us, p50, sizeof(p50));
        latency(t->latency_p99_us, p99, sizeof(p99));
        if (t->kind == SL_STAGE_SOURCE) {
            snprintf(in, sizeof(in), "-");
            snprintf(p50, sizeof(p50), "-");
            snprintf(p99, sizeof(p99), "-");
        }
        fprintf(out, "%-*.*s %-10.10s %9s %9s %7s %7s %9s %8s %8s %7.2fs %7.2fs\n",
                (int)w, (int)w, t->name, t->type, in, outs, err, drop, rps,
                p50, p99, t->blocked_send_s, t->idle_recv_s);
    }
    fprintf(out, "%s %s in %.2fs\n", s->pipeline,
            sl__run_status_name(s->status), s->elapsed_s);
}
