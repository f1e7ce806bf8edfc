/*
 * Runtime hand-over cost: a source, two pass-through transforms and a sink
 * (all trivial, defined here) moving N records, with records handed
 * between threads one at a time versus in batches (the runtime's default).
 *
 *   bench_run [N] [runs]      default N = 1000000, runs = 3
 *
 * Prints records/s (wall) and CPU ns per record for each batch size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "engine/diag.h"
#include "engine/run.h"
#include "sluice/plugin.h"

#include "bench_common.h"

static int run_once(long n, size_t batch, double *wall, double *cpu)
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
                      .batch = batch};
    sl_diag *diag = sl__diag_create();
    sl__run *run = NULL;
    if (sl__run_create(&o, diag, &run) != 0) {
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
    uint64_t stored = SL__RUN_COUNTER(run, 3, stored);
    sl__run_destroy(run);
    sl__diag_destroy(diag);
    if (res.status != SL__RUN_SUCCEEDED || stored != (uint64_t)n) {
        fprintf(stderr, "run failed: %s (%llu stored)\n", res.cause,
                (unsigned long long)stored);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int runs = argc > 2 ? atoi(argv[2]) : 3;
    size_t batches[] = {1, 8, 64};
    printf("%ld records through src -> pass1 -> pass2 -> sink, best of %d\n",
           n, runs);
    for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
        double best_wall = 1e30, best_cpu = 1e30;
        for (int r = 0; r < runs; r++) {
            double wall, cpu;
            if (run_once(n, batches[b], &wall, &cpu) != 0)
                return 1;
            if (wall < best_wall)
                best_wall = wall;
            if (cpu < best_cpu)
                best_cpu = cpu;
        }
        printf("batch %2zu: %8.0f records/s  %6.0f ns CPU/record  (%.3fs)\n",
               batches[b], (double)n / best_wall, best_cpu * 1e9 / (double)n,
               best_wall);
    }
    return 0;
}
