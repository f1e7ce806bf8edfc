/*
 * What metrics cost: the same pipelines run with per-record latency timing
 * on (the default) and off (SLUICE_METRICS_LATENCY=off), alternately, and
 * the medians compared. Record counters stay on in both (the runtime's own
 * accounting); their cost is measured on its own at the end.
 *
 *   bench_metrics [N] [runs]      default N = 1000000, runs = 9
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

/* ------------------------------------------------------------------ */
/* The trivial stages                                                  */
/* ------------------------------------------------------------------ */

typedef struct src_state {
    int64_t count;
} src_state;

static const sl_option src_options[] = {
    {SL_OPT_INT, "count", "1000000", 0, offsetof(src_state, count), 0, 0, NULL,
     ""},
    SL_OPTIONS_END,
};

static int src_run(void *state, sl_stage_ctx *sc)
{
    src_state *st = state;
    for (int64_t i = 1; i <= st->count; i++) {
        sl_record *r = sl_record_new_payload("x", 1);
        if (r == NULL)
            return SL_ENOMEM;
        int rc = sl_emit(sc, r);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int pass_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    return sl_emit(sc, rec);
}

static int sink_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    sl_record_stored(sc, rec);
    return 0;
}

static const sl_stage_desc src_desc = {
    SL_STAGE_DESC_HEADER, .name = "src", .kind = SL_STAGE_SOURCE,
    .options = src_options, .state_size = sizeof(src_state), .run = src_run,
};
static const sl_stage_desc pass_desc = {
    SL_STAGE_DESC_HEADER, .name = "pass", .kind = SL_STAGE_TRANSFORM,
    .process = pass_process,
};
static const sl_stage_desc sink_desc = {
    SL_STAGE_DESC_HEADER, .name = "sink", .kind = SL_STAGE_SINK,
    .process = sink_process,
};

/* ------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This thread's CPU time: what a loop costs, whatever else runs. */
static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Run opts to the end; wall and CPU seconds, and the records the last
 * stage took in (to check the run did its work). */
static int timed_run(sl__run_opts *o, size_t last, double *wall, double *cpu,
                     uint64_t *last_in)
{
    sl_diag *diag = sl__diag_create();
    sl__run *run = NULL;
    if (sl__run_create(o, diag, &run) != 0) {
        sl__diag_print(diag, stderr);
        sl__diag_destroy(diag);
        return 1;
    }
    double c0 = cpu_s(), t0 = now_s();
    sl__run_result res;
    sl__run_start(run);
    sl__run_wait(run, &res);
    *wall = now_s() - t0;
    *cpu = cpu_s() - c0;
    *last_in = SL__RUN_COUNTER(run, last, records_in);
    sl__run_destroy(run);
    sl__diag_destroy(diag);
    if (res.status != SL__RUN_SUCCEEDED) {
        fprintf(stderr, "run failed: %s\n", res.cause);
        return 1;
    }
    return 0;
}

static int run_trivial(long n, bool latency_off, double *wall, double *cpu)
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
                      .latency_off = latency_off};
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

static int run_typical(const sl__loaded *l, long n, bool latency_off,
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
                      .latency_off = latency_off};
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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The counter updates the runtime makes per record and stage, timed
 * alone. Returns ns per record per stage. */
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

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int runs = argc > 2 ? atoi(argv[2]) : 9;
    if (n < 10 || runs < 1 || runs > 99) {
        fprintf(stderr, "usage: bench_metrics [N >= 10] [runs 1..99]\n");
        return 2;
    }
    char path[] = "/tmp/sluice-bench-metrics-XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    if (fd < 0)
        return 1;
    FILE *f = fdopen(fd, "w");
    fprintf(f,
            "name: typical\n"
            "stages:\n"
            "  - name: gen\n"
            "    type: generate\n"
            "    count: %ld\n"
            "    fields: {id: seq(), user: '\"u\" + to_string(seq() %% 100)',"
            " status: 'seq() %% 10 == 0 ? 500 : 200'}\n"
            "  - {name: ok, type: filter, where: status < 500}\n"
            "  - {name: tag, type: map, set: {kind: '\"ok\"'}, "
            "delete: [user]}\n"
            "  - {name: out, type: null}\n",
            n);
    fclose(f);
    sl__loaded l;
    int rc = sl__cli_load(path, NULL, NULL, &l);
    unlink(path);
    if (rc != 0)
        return 1;

    printf("%ld records per run, %d runs per mode (alternating), medians\n",
           n, runs);
    printf("%-8s %-4s %12s %14s %14s\n", "pipeline", "lat", "records/s",
           "CPU ns/rec med", "CPU ns/rec min");
    for (int p = 0; p < 2; p++) {
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
            printf("%-8s %-4s %12.0f %14.1f %14.1f\n",
                   p == 0 ? "trivial" : "typical", m == 0 ? "on" : "off",
                   (double)n / w, cpu_med[m], cpu_min[m]);
        }
        printf("%-8s latency timing costs %+.1f%% CPU per record (medians), "
               "%+.1f%% (minima)\n", p == 0 ? "trivial" : "typical",
               (cpu_med[0] / cpu_med[1] - 1) * 100,
               (cpu_min[0] / cpu_min[1] - 1) * 100);
    }
    sl__cli_unload(&l);
    printf("record counters alone: %.1f ns per record per stage\n",
           counter_cost());
    return 0;
}
