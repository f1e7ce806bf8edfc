/*
 * Snapshots for people: the summary table `sluice run` prints at the end,
 * and the fuller report of `sluice metrics` (counts and rates, time use,
 * circuit breakers, the bottleneck).
 */
#include <stdio.h>
#include <string.h>

#include "metrics/snapshot.h"

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

static void percent(double f, char *buf, size_t size)
{
    snprintf(buf, size, "%.0f%%", f * 100);
}

/* Width of the stage name column: 5..32. */
static int name_width(const sl__run_snapshot *s)
{
    size_t w = 5;
    for (size_t i = 0; i < s->n_stages; i++) {
        size_t n = strlen(s->stages[i].name);
        if (n > w)
            w = n;
    }
    return (int)(w > 32 ? 32 : w);
}

void sl__run_snapshot_print_table(const sl__run_snapshot *s, FILE *out)
{
    int w = name_width(s);
    fprintf(out, "%-*s %-10s %9s %9s %7s %7s %9s %8s %8s %8s %8s\n", w,
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
                w, w, t->name, t->type, in, outs, err, drop, rps, p50, p99,
                t->blocked_send_s, t->idle_recv_s);
    }
    fprintf(out, "%s %s in %.2fs\n", s->pipeline,
            sl__run_status_name(s->status), s->elapsed_s);
}

/* ------------------------------------------------------------------ */
/* `sluice metrics`                                                    */
/* ------------------------------------------------------------------ */

static void print_counts(const sl__run_snapshot *s, FILE *out, int w)
{
    fprintf(out, "%-*s %-10s %-8s %8s %8s %7s %7s %7s %8s %8s %8s %8s\n", w,
            "stage", "type", "state", "in", "out", "errors", "dropped",
            "retries", "rec/s", "p50", "p99", "max");
    for (size_t i = 0; i < s->n_stages; i++) {
        const sl__stage_snapshot *t = &s->stages[i];
        char in[16], outs[16], err[16], drop[16], retr[16], rps[16];
        char p50[16], p99[16], max[16];
        human((double)t->records_in, in, sizeof(in));
        human((double)t->records_out, outs, sizeof(outs));
        human((double)t->errors, err, sizeof(err));
        human((double)t->dropped, drop, sizeof(drop));
        human((double)t->retries, retr, sizeof(retr));
        human(t->throughput_rps, rps, sizeof(rps));
        latency(t->latency_p50_us, p50, sizeof(p50));
        latency(t->latency_p99_us, p99, sizeof(p99));
        latency(t->latency_max_us, max, sizeof(max));
        if (t->kind == SL_STAGE_SOURCE) {
            snprintf(in, sizeof(in), "-");
            snprintf(p50, sizeof(p50), "-");
            snprintf(p99, sizeof(p99), "-");
            snprintf(max, sizeof(max), "-");
        }
        fprintf(out, "%-*.*s %-10.10s %-8.8s %8s %8s %7s %7s %7s %8s %8s %8s %8s\n",
                w, w, t->name, t->type,
                t->state != NULL && t->state[0] != '\0' ? t->state : "-", in,
                outs, err, drop, retr, rps, p50, p99, max);
    }
}

static void print_time_use(const sl__run_snapshot *s, FILE *out, int w)
{
    fprintf(out, "%-*s %7s %11s %10s %6s %8s %6s\n", w, "stage", "workers",
            "queue", "input full", "busy", "blocked", "idle");
    for (size_t i = 0; i < s->n_stages; i++) {
        const sl__stage_snapshot *t = &s->stages[i];
        sl__stage_load l;
        sl__stage_load_of(s, i, &l);
        char queue[32], full[16], busy[16], blocked[16], idle[16];
        percent(l.busy, busy, sizeof(busy));
        percent(l.blocked, blocked, sizeof(blocked));
        percent(l.idle, idle, sizeof(idle));
        if (t->kind == SL_STAGE_SOURCE) {
            snprintf(queue, sizeof(queue), "-");
            snprintf(full, sizeof(full), "-");
            snprintf(idle, sizeof(idle), "-");
        } else {
            snprintf(queue, sizeof(queue), "%zu/%zu", t->queue_depth,
                     t->queue_capacity);
            percent(l.input_full, full, sizeof(full));
        }
        fprintf(out, "%-*.*s %7d %11s %10s %6s %8s %6s\n", w, w, t->name,
                t->workers, queue, full, busy, blocked, idle);
    }
}

static void print_breakers(const sl__run_snapshot *s, FILE *out)
{
    for (size_t i = 0; i < s->n_stages; i++) {
        const sl__stage_snapshot *t = &s->stages[i];
        if (!t->has_breaker)
            continue;
        fprintf(out, "circuit breaker of %s: %s (opened %llu time%s, %llu "
                "call%s refused)\n", t->name, t->breaker_state,
                (unsigned long long)t->breaker_opens,
                t->breaker_opens == 1 ? "" : "s",
                (unsigned long long)t->breaker_rejections,
                t->breaker_rejections == 1 ? "" : "s");
    }
}

void sl__metrics_print_bottleneck(const sl__run_snapshot *s, FILE *out)
{
    long b = sl__metrics_bottleneck(s);
    if (b < 0) {
        fprintf(out, "bottleneck: none found (no stage was kept busy by a "
                "full input while its output flowed freely)\n");
        return;
    }
    const sl__stage_snapshot *t = &s->stages[b];
    sl__stage_load l;
    sl__stage_load_of(s, (size_t)b, &l);
    if (t->kind == SL_STAGE_SOURCE) {
        fprintf(out, "bottleneck: %s (%s), a source: busy %.0f%% of the time "
                "and its output waited %.0f%%; the stages after it keep up "
                "with what it produces\n", t->name, t->type, l.busy * 100,
                l.blocked * 100);
        return;
    }
    fprintf(out, "bottleneck: %s (%s): busy %.0f%% of the time with its "
            "input queue full %.0f%% of the time, while its output waited "
            "only %.0f%%\n", t->name, t->type, l.busy * 100,
            l.input_full * 100, l.blocked * 100);
}

void sl__metrics_print_report(const sl__run_snapshot *s, FILE *out)
{
    int w = name_width(s);
    fprintf(out, "pipeline %s: %s%s after %.2fs\n", s->pipeline,
            sl__run_status_name(s->status),
            s->status == SL__RUN_RUNNING ? " (snapshot)" : "", s->elapsed_s);
    if (s->cause != NULL && s->cause[0] != '\0')
        fprintf(out, "cause: %s\n", s->cause);
    fputc('\n', out);
    print_counts(s, out, w);
    fputc('\n', out);
    print_time_use(s, out, w);
    fputc('\n', out);
    print_breakers(s, out);
    sl__metrics_print_bottleneck(s, out);
}

/* ------------------------------------------------------------------ */
/* The live line                                                       */
/* ------------------------------------------------------------------ */

static void rate_text(double v, char *buf, size_t size)
{
    if (v >= 1e6)
        snprintf(buf, size, "%.1fM/s", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, size, "%.1fk/s", v / 1e3);
    else
        snprintf(buf, size, "%.0f/s", v);
}

void sl__metrics_progress_line(const sl__run_snapshot *w, double elapsed_s,
                               char *buf, size_t width)
{
    if (width == 0)
        return;
    long bottleneck = sl__metrics_bottleneck(w);
    size_t n = 0;
    buf[0] = '\0';
    char part[160];
    snprintf(part, sizeof(part), "%6.1fs ", elapsed_s);
    for (size_t i = 0; i <= w->n_stages; i++) {
        size_t len = strlen(part);
        if (n + len >= width) {
            buf[n] = '\0';
            if (width > 4 && n + 4 < width) {
                memcpy(buf + n, " ...", 4);
                buf[n + 4] = '\0';
            }
            return;
        }
        memcpy(buf + n, part, len + 1);
        n += len;
        if (i == w->n_stages)
            break;
        const sl__stage_snapshot *t = &w->stages[i];
        sl__stage_load l;
        sl__stage_load_of(w, i, &l);
        char rate[32], queue[32] = "";
        rate_text(t->throughput_rps, rate, sizeof(rate));
        if (t->kind != SL_STAGE_SOURCE && t->queue_capacity > 0)
            snprintf(queue, sizeof(queue), " q%.0f%%",
                     100.0 * (double)t->queue_depth / (double)t->queue_capacity);
        snprintf(part, sizeof(part), "%s%s%s %s%s b%.0f%%", i > 0 ? " | " : " ",
                 t->name, (long)i == bottleneck ? "*" : "", rate, queue,
                 l.blocked * 100);
    }
}
