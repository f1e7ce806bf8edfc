/*
 * Stress for the trace and the watchdog (a plain program: ThreadSanitizer
 * checks it).
 *
 * A traced pipeline with a failing multi-worker stage under the engine's
 * circuit breaker (errors, breaker changes) and a watchdog that checks
 * every few milliseconds, while two threads dump every worker's state,
 * run the watchdog themselves and add notes to the trace. Several runs,
 * some stopped midway. At the end each trace file is valid JSON and the
 * counts are exact.
 *
 *     src ─> flaky (workers 3, skip, breaker) ─> sink (workers 2)
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/diag.h"
#include "engine/run.h"
#include "engine/trace.h"
#include "engine/watchdog.h"
#include "sluice/plugin.h"

#include "stress_common.h"

static int flaky_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    (void)state;
    int64_t n = sl_value_get_int(sl_record_get(rec, "n"));
    if (n % 7 == 0)
        return sl_stage_error(sc, SL_EPARSE, "bad record %lld", (long long)n);
    return sl_emit(sc, rec);
}

static const sl_stage_desc flaky_desc = {
    SL_STAGE_DESC_HEADER, .name = "flaky", .kind = SL_STAGE_TRANSFORM,
    .state_size = 1, .process = flaky_process,
};

static int sink_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    (void)state;
    sl_record_stored(sc, rec);
    return 0;
}

static const sl_stage_desc sink_desc = {
    SL_STAGE_DESC_HEADER, .name = "sink", .kind = SL_STAGE_SINK,
    .state_size = 1, .process = sink_process,
};

/* ------------------------------------------------------------------ */

static _Atomic bool stop_pokers;

static void *poker(void *arg)
{
    sl__run *run = arg;
    sl_buf b;
    sl_buf_init(&b);
    uint64_t i = 0;
    while (!atomic_load(&stop_pokers)) {
        sl_buf_reset(&b);
        CHECK(sl__run_describe(run, &b) == 0, "describe");
        sl__run_watchdog(run, NULL, 0);
        if (i++ % 64 == 0)
            sl__run_trace_note(run, "poke", "flaky", (int)(i % 3), "from a poker");
        sched_yield();   /* share the cores with the workers */
    }
    sl_buf_fini(&b);
    return NULL;
}

static bool valid_json_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    bool ok = buf != NULL && fread(buf, 1, (size_t)len, f) == (size_t)len;
    fclose(f);
    sl_value *v = NULL;
    ok = ok && sl_json_parse(buf, (size_t)len, NULL, &v, NULL) == 0 &&
         sl_array_len(sl_object_get(v, "traceEvents")) > 0;
    sl_value_unref(v);
    free(buf);
    return ok;
}

static void one_run(int round, const char *dir)
{
    bool stop_midway = round % 2 == 1;
    sl_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.file = "stress.yaml";
    cfg.name = "stress-trace";
    cfg.settings.channel_capacity = 32;
    cfg.settings.shutdown_timeout_ns = 30 * SL_NS_PER_S;
    cfg.settings.stall_timeout_ns = 4 * SL_NS_PER_MS;
    cfg.metrics.interval_ns = SL_NS_PER_S;

    sl_stage_conf c[3];
    memset(c, 0, sizeof(c));
    c[0] = (sl_stage_conf){.name = "src", .type = "src", .desc = &src_desc,
                           .workers = 1};
    c[1] = (sl_stage_conf){.name = "flaky", .type = "flaky",
                           .desc = &flaky_desc, .workers = 3,
                           .on_error = SL_ON_ERROR_SKIP};
    c[1].breaker.set = true;
    c[1].breaker.failures = 1;
    c[1].breaker.cooldown_ns = 0;
    c[2] = (sl_stage_conf){.name = "sink", .type = "sink", .desc = &sink_desc,
                           .workers = 2};
    size_t in1 = 0, in2 = 1;
    sl__run_stage st[3] = {
        {.conf = &c[0], .options_yaml = stop_midway ? "count: 0"
                                                    : "count: 20000"},
        {.conf = &c[1], .n_inputs = 1, .inputs = &in1},
        {.conf = &c[2], .n_inputs = 1, .inputs = &in2},
    };
    char path[256];
    snprintf(path, sizeof(path), "%s/trace-%d.json", dir, round);
    sl_diag *diag = sl__diag_create();
    sl__run_opts o = {.cfg = &cfg, .n_stages = 3, .stages = st,
                      .trace_path = path};
    sl__run *run = NULL;
    CHECK(sl__run_create(&o, diag, &run) == 0, "create");
    atomic_store(&stop_pokers, false);
    pthread_t t[2];
    CHECK(sl__run_start(run) == 0, "start");
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, poker, run) == 0, "thread");
    if (stop_midway) {
        while (SL__RUN_COUNTER(run, 2, records_in) < 5000)
            sched_yield();
        sl__run_stop(run, false);
    }
    sl__run_result res;
    CHECK(sl__run_wait(run, &res) == 0, "wait");
    atomic_store(&stop_pokers, true);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK(res.exit_code == 0, "exit %d: %s", res.exit_code, res.cause);
    uint64_t made = SL__RUN_COUNTER(run, 0, records_out);
    uint64_t in = SL__RUN_COUNTER(run, 1, records_in);
    uint64_t out = SL__RUN_COUNTER(run, 1, records_out);
    uint64_t errors = SL__RUN_COUNTER(run, 1, errors);
    uint64_t stored = SL__RUN_COUNTER(run, 2, stored);
    CHECK(stop_midway || made == 20000, "made %llu", (unsigned long long)made);
    CHECK(in == made, "flaky in %llu of %llu", (unsigned long long)in,
          (unsigned long long)made);
    CHECK(out + errors == in, "out %llu + errors %llu != %llu",
          (unsigned long long)out, (unsigned long long)errors,
          (unsigned long long)in);
    CHECK(stored == out, "stored %llu of %llu", (unsigned long long)stored,
          (unsigned long long)out);
    sl__run_destroy(run);
    sl__diag_destroy(diag);
    CHECK(valid_json_file(path), "trace %s is not valid JSON", path);
    unlink(path);
}

int main(void)
{
    char dir[] = "/tmp/sluice-stress-trace-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    FILE *devnull = fopen("/dev/null", "w");
    sl__log_set_stream(devnull);   /* the watchdog's reports */
    for (int round = 0; round < 4; round++)
        one_run(round, dir);
    sl__log_set_stream(NULL);
    fclose(devnull);
    rmdir(dir);
    puts("stress_trace: ok");
    return 0;
}
