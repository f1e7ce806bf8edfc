/*
 * What the activity trace (`sluice run --trace`) costs, and how big its
 * file gets.
 *
 *   bench_trace [N] [runs] [trivial|typical]
 *                         default N = 1000000, runs = 9, both pipelines
 *
 * The same pipeline runs with and without a trace, alternately, in this
 * one process; per mode the median and smallest wall time and process CPU
 * time per record, and the ratio traced / untraced of each. Every run
 * checks its record count. After the timed runs, the size of the last
 * trace file and its events, per million records.
 *
 * Then the trace's own work from its parts, which a shared machine does
 * not blur: the worker hook (one call per receive and per send of a
 * batch), and writing the file (per event), best of 5 in this thread's
 * CPU time; with the calls and events of the last traced run, what they
 * add per record.
 *
 * Pipelines:
 *   trivial   src -> pass -> pass -> sink, stages defined here that do
 *             nothing: the worst case, where the trace's work per batch
 *             is largest next to the pipeline's
 *   typical   generate (3 fields) -> filter -> map -> null, built-in
 *             stages
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/cli.h"
#include "engine/diag.h"
#include "engine/run.h"
#include "engine/trace.h"
#include "sluice/plugin.h"

#include "bench_common.h"

static int run_trivial(long n, const char *trace, double *wall, double *cpu)
{
    sl_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.file = "bench";
    cfg.name = "trivial";
    cfg.settings.channel_capacity = 1024;
    cfg.settings.shutdown_timeout_ns = 30 * SL_NS_PER_S;
    sl_stage_conf conf[4];
    memset(conf, 0, sizeof(conf));
    const sl_stage_desc *descs[4] = {&src_desc, &pass_desc, &pass_desc,
                                     &sink_desc};
    const char *names[4] = {"src", "pass1", "pass2", "sink"};
    size_t inputs[4] = {0, 0, 1, 2};
    sl__run_stage st[4];
    memset(st, 0, sizeof(st));
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
                      .trace_path = trace};
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

static int run_typical(const sl__loaded *l, long n, const char *trace,
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
                      .trace_path = trace};
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

/* Lines (events) in a trace file. */
static long count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long n = 0;
    int c;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/*
 * The hook and the writer timed alone: ns per hook call (a wait of each
 * kind after some processing, the pattern of a batch), ns per event
 * written.
 */
static void parts(const char *trace, double *hook_ns, double *write_ns)
{
    *hook_ns = *write_ns = 1e30;
    for (int r = 0; r < 5; r++) {
        sl__trace *tr = NULL;
        char err[256];
        if (sl__trace_create(trace, "parts", err, sizeof(err), &tr) != 0)
            return;
        sl__trace_worker *tw = sl__trace_add_worker(tr, "w", 0);
        sl__trace_start(tr, 0);
        sl__trace_worker_begin(tw, 0);
        const long calls = 2000000;
        int64_t t = 0;
        double c0 = thread_cpu_s();
        for (long i = 0; i < calls; i += 2) {
            /* 64 records of 50 ns, a send, a receive */
            sl__trace_wait(tw, SL__TRACE_BLOCKED, t + 3200, t + 3400);
            sl__trace_wait(tw, SL__TRACE_IDLE, t + 3400, t + 3500);
            t += 3500;
        }
        sl__trace_worker_end(tw, t);
        double c1 = thread_cpu_s();
        if (sl__trace_finish(tr, t, "succeeded", "") != 0)
            return;
        double c2 = thread_cpu_s();
        double h = (c1 - c0) * 1e9 / (double)calls;
        double w = (c2 - c1) * 1e9 / (double)sl__trace_events(tr);
        sl__trace_destroy(tr);
        if (h < *hook_ns)
            *hook_ns = h;
        if (w < *write_ns)
            *write_ns = w;
    }
}

static double smallest(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        if (v[i] < m)
            m = v[i];
    return m;
}

/* Alternate untraced and traced runs of one pipeline; print the figures. */
static int compare(const char *name, const sl__loaded *l, long n, int runs,
                   const char *trace)
{
    double wall[2][99], cpu[2][99];
    for (int r = 0; r < runs; r++) {
        for (int m = 0; m < 2; m++) {
            /* alternate which mode goes first, so neither always follows
             * the other's allocations */
            int mode = (r % 2 == 0) ? m : 1 - m;
            const char *path = mode == 1 ? trace : NULL;
            int rc = l == NULL ? run_trivial(n, path, &wall[mode][r],
                                             &cpu[mode][r])
                               : run_typical(l, n, path, &wall[mode][r],
                                             &cpu[mode][r]);
            if (rc != 0)
                return 1;
        }
    }
    struct stat sb;
    long long size = stat(trace, &sb) == 0 ? (long long)sb.st_size : -1;
    double per = 1e9 / (double)n;
    double w0m = median(wall[0], runs) * per, w1m = median(wall[1], runs) * per;
    double c0m = median(cpu[0], runs) * per, c1m = median(cpu[1], runs) * per;
    double w0s = smallest(wall[0], runs) * per, w1s = smallest(wall[1], runs) * per;
    double c0s = smallest(cpu[0], runs) * per, c1s = smallest(cpu[1], runs) * per;
    printf("%-8s %3d runs of %ld records\n", name, runs, n);
    printf("  wall ns/record  median: off %7.1f  trace %7.1f  ratio %.3f   "
           "min: off %7.1f  trace %7.1f  ratio %.3f\n",
           w0m, w1m, w1m / w0m, w0s, w1s, w1s / w0s);
    printf("  CPU  ns/record  median: off %7.1f  trace %7.1f  ratio %.3f   "
           "min: off %7.1f  trace %7.1f  ratio %.3f\n",
           c0m, c1m, c1m / c0m, c0s, c1s, c1s / c0s);
    long events = count_lines(trace);
    printf("  trace file: %lld bytes, %ld events (%.1f MB per million "
           "records)\n", size, events, (double)size / 1e6 / ((double)n / 1e6));
    double hook, wr;
    parts(trace, &hook, &wr);
    /* every non-source worker receives and sends each batch, the source
     * sends; SL__OUTBOX_BATCH records per batch at most */
    int workers = l == NULL ? 4 : (int)l->graph->n;
    double calls = (2.0 * workers - 1) * (double)n / SL__OUTBOX_BATCH;
    double per_rec = (calls * hook + (double)events * wr) / (double)n;
    printf("  parts: hook %.1f ns per call, writing %.0f ns per event; "
           "%.0f calls and %ld events add %.2f ns per record (%.2f%% of "
           "the untraced median CPU)\n", hook, wr, calls, events, per_rec,
           per_rec / c0m * 100);
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int runs = argc > 2 ? atoi(argv[2]) : 9;
    const char *only = argc > 3 ? argv[3] : NULL;
    if (n < 10 || runs < 1 || runs > 99) {
        fprintf(stderr, "usage: bench_trace [N >= 10] [runs 1..99] "
                        "[trivial|typical]\n");
        return 2;
    }
    char trace[] = "/tmp/sluice-bench-trace-XXXXXX.json";
    int tfd = mkstemps(trace, 5);
    if (tfd < 0)
        return 1;
    close(tfd);
    sl__loaded l;
    if (load_typical(n, &l) != 0)
        return 1;
    int rc = 0;
    if (only == NULL || strcmp(only, "trivial") == 0)
        rc |= compare("trivial", NULL, n, runs, trace);
    if (only == NULL || strcmp(only, "typical") == 0)
        rc |= compare("typical", &l, n, runs, trace);
    sl__cli_unload(&l);
    unlink(trace);
    return rc;
}
