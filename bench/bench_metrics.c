/*
 * What metrics cost. Three measurements:
 *
 *  1. The same pipelines with metrics on (the default) and off
 *     (SLUICE_METRICS=off: no latency timing, no record sizes), run
 *     alternately, medians compared. Record counts stay on in both (the
 *     runtime's own accounting).
 *  2. The record counters and record sizing alone, per record and stage.
 *  3. Latency timing from its parts (a clock read, a histogram update, the
 *     sampler's check) for stages of several speeds, with the period the
 *     sampler picks for each: steady figures where (1) is at the mercy of
 *     thread scheduling on a shared machine.
 *
 *   bench_metrics [N] [runs] [trivial|typical]
 *                                 default N = 1000000, runs = 9, both
 *
 * Pipelines:
 *   trivial   src -> pass -> pass -> sink, stages defined here that do
 *             nothing: the worst case, where timing is largest next to
 *             the work
 *   typical   generate (3 fields) -> filter -> map -> null, built-in
 *             stages
 *
 * Prints per pipeline and mode the median records/s (wall clock) and the
 * median and smallest process CPU time per record, and the overhead of
 * "on" over "off" in CPU per record. On a shared machine the minimum is
 * the run least disturbed by others.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "engine/cli.h"
#include "engine/diag.h"
#include "engine/run.h"
#include "sluice/plugin.h"

#include "bench_common.h"

static int run_trivial(long n, bool metrics_off, double *wall, double *cpu)
{
    sl_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.file = "bench";
    cfg.name = "bench";
    cfg.settings.channel_capacity = 1024;
    cfg.settings.shutdown_timeout_ns = 30 * SL_NS_PER_S;
    sl_stage_conf conf[4];
    memset(conf, 0, sizeof(conf));
    const sl_stage_desc *descs[4] = {&src_desc, &pass_desc, &pass_desc,
                                     &sink_desc};
    const char *names[4] = {"src", "pass1", "pass2", "sink"};
    size_t inputs[4] = {0, 0, 1, 2};
    sl__run_stage st[4];
    char opt[64];
    snprintf(opt, sizeof(opt), "count: %ld", n);
    for (int i = 0; i < 4; i++) {
        conf[i].name = (char *)names[i];
        conf[i].desc = descs[i];
        conf[i].workers = 1;
        st[i].conf = &conf[i];
        st[i].n_inputs = i == 0 ? 0 : 1;
        st[i].inputs = &inputs[i];
        st[i].options_yaml = i == 0 ? opt : NULL;
    }
    sl__run_opts o = {.cfg = &cfg, .n_stages = 4, .stages = st,
                      .metrics_off = metrics_off};
    uint64_t got = 0;
    if (timed_run(&o, 3, wall, cpu, &got) != 0)
        return 1;
    if (got != (uint64_t)n) {
        fprintf(stderr, "trivial: %llu of %ld records arrived\n",
                (unsigned long long)got, n);
        return 1;
    }
    return 0;
}

static int run_typical(const sl__loaded *l, long n, bool metrics_off,
                       double *wall, double *cpu)
{
    const sl_graph *g = l->graph;
    sl__run_stage st[8];
    if (g->n > 8)
        return 1;
    for (size_t i = 0; i < g->n; i++) {
        memset(&st[i], 0, sizeof(st[i]));
        st[i].conf = &l->cfg->stages[i];
        st[i].n_inputs = g->nodes[i].n_inputs;
        st[i].inputs = g->nodes[i].inputs;
    }
    sl__run_opts o = {.cfg = l->cfg, .n_stages = g->n, .stages = st,
                      .metrics_off = metrics_off};
    uint64_t got = 0;
    if (timed_run(&o, g->n - 1, wall, cpu, &got) != 0)
        return 1;
    if (got != (uint64_t)n * 9 / 10) {
        fprintf(stderr, "typical: %llu records reached the sink, expected "
                "%ld\n", (unsigned long long)got, n * 9 / 10);
        return 1;
    }
    return 0;
}

/* The counter updates and record sizing the runtime makes per record and
 * stage (records_in, bytes_in, records_out, bytes_out, the heartbeat),
 * timed alone. Returns ns per record per stage. */
static double counter_cost(void)
{
    static sl__stage_counters c;
    sl__size_est est = {0};
    sl_record *r = sl_record_new_payload("x", 1);
    const long n = 20000000;
    double t0 = thread_cpu_s();
    for (long i = 0; i < n; i++) {
        sl__count(&c.records_in, 1);
        sl__count(&c.bytes_in, sl__record_bytes(&est, r));
        sl__count(&c.records_out, 1);
        sl__count(&c.bytes_out, sl__record_bytes(&est, r));
        atomic_store_explicit(&c.heartbeat_ns, (int64_t)i,
                              memory_order_relaxed);
        __asm__ volatile("" ::: "memory");
    }
    double ns = (thread_cpu_s() - t0) * 1e9 / (double)n;
    sl_record_free(r);
    return ns;
}

/* The best of 5 runs of f, in this thread's CPU ns per call. */
static double best_ns(double (*f)(long), long calls)
{
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = thread_cpu_s();
        double sink = f(calls);
        double ns = (thread_cpu_s() - t0) * 1e9 / (double)calls;
        __asm__ volatile("" ::"g"(sink));
        if (ns < best)
            best = ns;
    }
    return best;
}

static double loop_clock(long calls)
{
    struct timespec ts;
    double sum = 0;
    for (long i = 0; i < calls; i++) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        sum += (double)ts.tv_nsec;
    }
    return sum;
}

static double loop_record(long calls)
{
    static sl__hist h;
    for (long i = 0; i < calls; i++)
        sl__hist_record_n(&h, 1000 + (i & 1023), 1);
    return (double)atomic_load(&h.count);
}

static double loop_begin(long calls)
{
    sl__lat_sampler s;
    memset(&s, 0, sizeof(s));
    s.off = true;
    double n = 0;
    for (long i = 0; i < calls; i++) {
        __asm__ volatile("" ::: "memory");
        n += sl__lat_begin(&s);
    }
    return n;
}

/*
 * What latency timing adds per record and stage, from its parts: a clock
 * read (C), a histogram update (H), the sampler's check (B, also paid when
 * off). A timed record after a timed one needs one read, after an untimed
 * one two; with period P: (C + H) per record for P = 1, (2C + H) / P
 * otherwise. The period follows the stage's mean latency (the sampler
 * itself is asked here).
 */
static void timing_table(void)
{
    double c = best_ns(loop_clock, 5000000);
    double h = best_ns(loop_record, 20000000);
    double b = best_ns(loop_begin, 50000000);
    printf("\nlatency timing from its parts (this thread's CPU, best of 5): "
           "clock read %.1f ns, histogram update %.1f ns, sampler check "
           "%.1f ns\n", c, h, b);
    printf("%12s %8s %16s %10s\n", "stage ns/rec", "period", "timing ns/rec",
           "overhead");
    const int64_t means[] = {50, 100, 300, 1000, 2000, 3900, 4000, 10000,
                             100000};
    for (size_t k = 0; k < sizeof(means) / sizeof(means[0]); k++) {
        static sl__hist scratch;
        sl__lat_sampler s;
        memset(&s, 0, sizeof(s));
        for (int i = 0; i < 200; i++)
            sl__lat_end(&s, &scratch, means[k]);
        double cost = s.period == 1 ? c + h : (2 * c + h) / s.period;
        printf("%12lld %8u %16.2f %9.2f%%\n", (long long)means[k], s.period,
               cost, cost / (double)means[k] * 100);
    }
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int runs = argc > 2 ? atoi(argv[2]) : 9;
    const char *only = argc > 3 ? argv[3] : NULL;
    if (n < 10 || runs < 1 || runs > 99) {
        fprintf(stderr, "usage: bench_metrics [N >= 10] [runs 1..99]\n");
        return 2;
    }
    sl__loaded l;
    if (load_typical(n, &l) != 0)
        return 1;

    printf("%ld records per run, %d runs per mode (alternating), medians\n",
           n, runs);
    printf("%-8s %-7s %12s %14s %14s\n", "pipeline", "metrics", "records/s",
           "CPU ns/rec med", "CPU ns/rec min");
    for (int p = 0; p < 2; p++) {
        if (only != NULL && strcmp(only, p == 0 ? "trivial" : "typical") != 0)
            continue;
        double wall[2][99], cpu[2][99];
        for (int r = 0; r < runs; r++) {
            for (int m = 0; m < 2; m++) {
                bool off = (r + m) % 2 == 1;   /* alternate who goes first */
                int mode = off ? 1 : 0;
                int err = p == 0 ? run_trivial(n, off, &wall[mode][r],
                                               &cpu[mode][r])
                                 : run_typical(&l, n, off, &wall[mode][r],
                                               &cpu[mode][r]);
                if (err != 0) {
                    sl__cli_unload(&l);
                    return 1;
                }
            }
        }
        double cpu_med[2], cpu_min[2];
        for (int m = 0; m < 2; m++) {
            double w = median(wall[m], runs);
            cpu_med[m] = median(cpu[m], runs) * 1e9 / (double)n;
            cpu_min[m] = cpu[m][0] * 1e9 / (double)n;   /* sorted by median() */
            printf("%-8s %-7s %12.0f %14.1f %14.1f\n",
                   p == 0 ? "trivial" : "typical", m == 0 ? "on" : "off",
                   (double)n / w, cpu_med[m], cpu_min[m]);
        }
        printf("%-8s metrics cost %+.1f%% CPU per record (medians), "
               "%+.1f%% (minima)\n", p == 0 ? "trivial" : "typical",
               (cpu_med[0] / cpu_med[1] - 1) * 100,
               (cpu_min[0] / cpu_min[1] - 1) * 100);
    }
    sl__cli_unload(&l);
    printf("\ncounters and record sizes alone: %.1f ns per record per stage\n",
           counter_cost());
    timing_table();
    return 0;
}
