/*
 * What the pipeline benchmarks share: three stages that do nothing (a
 * source of one-byte records, a pass-through, a sink), wall, process and
 * thread CPU clocks, a median, one timed run of a pipeline, and the
 * "typical" pipeline the overhead benchmarks measure.
 *
 * Included by one bench_*.c each; everything is static and may go unused.
 */
#ifndef SLUICE_BENCH_COMMON_H
#define SLUICE_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "engine/cli.h"
#include "engine/diag.h"
#include "engine/run.h"
#include "sluice/plugin.h"

#define BENCH_FN static __attribute__((unused))

/* ------------------------------------------------------------------ */
/* The trivial stages                                                  */
/* ------------------------------------------------------------------ */

typedef struct bench_src_state {
    int64_t count;
} bench_src_state;

static const sl_option bench_src_options[] = {
    {SL_OPT_INT, "count", "1000000", 0, offsetof(bench_src_state, count), 0, 0,
     NULL, ""},
    SL_OPTIONS_END,
};

BENCH_FN int bench_src_run(void *state, sl_stage_ctx *sc)
{
    bench_src_state *st = state;
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

BENCH_FN int bench_pass_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    (void)state;
    return sl_emit(sc, rec);
}

BENCH_FN int bench_sink_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    (void)state;
    sl_record_stored(sc, rec);
    return 0;
}

static const sl_stage_desc src_desc __attribute__((unused)) = {
    SL_STAGE_DESC_HEADER, .name = "src", .kind = SL_STAGE_SOURCE,
    .options = bench_src_options, .state_size = sizeof(bench_src_state),
    .run = bench_src_run,
};
static const sl_stage_desc pass_desc __attribute__((unused)) = {
    SL_STAGE_DESC_HEADER, .name = "pass", .kind = SL_STAGE_TRANSFORM,
    .process = bench_pass_process,
};
static const sl_stage_desc sink_desc __attribute__((unused)) = {
    SL_STAGE_DESC_HEADER, .name = "sink", .kind = SL_STAGE_SINK,
    .process = bench_sink_process,
};

/* ------------------------------------------------------------------ */
/* Clocks and medians                                                  */
/* ------------------------------------------------------------------ */

BENCH_FN double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This thread's CPU time: what a loop costs, whatever else runs. */
BENCH_FN double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The whole process's CPU time, user and system. */
BENCH_FN double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

BENCH_FN int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v. */
BENCH_FN double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ------------------------------------------------------------------ */
/* One timed run                                                       */
/* ------------------------------------------------------------------ */

/* Run o to the end: wall and CPU seconds, and the records stage `last`
 * took in (to check the run did its work). Returns 0, or 1 after printing
 * why the run could not be made or did not succeed. */
BENCH_FN int timed_run(sl__run_opts *o, size_t last, double *wall, double *cpu,
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

/* ------------------------------------------------------------------ */
/* The typical pipeline                                                */
/* ------------------------------------------------------------------ */

/* generate (n records of three fields) -> filter (drops one in 10) -> map
 * -> null: built-in stages doing a little real work each. Loaded into l;
 * 0, or 1 if it could not be. */
BENCH_FN int load_typical(long n, sl__loaded *l)
{
    char path[] = "/tmp/sluice-bench-typical-XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    if (fd < 0)
        return 1;
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        unlink(path);
        return 1;
    }
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
    int rc = sl__cli_load(path, NULL, NULL, l);
    unlink(path);
    return rc != 0;
}

#endif
