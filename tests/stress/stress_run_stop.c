/*
 * Stress for stopping a run while the monitor is busy (a plain program:
 * ThreadSanitizer checks it).
 *
 * A source that emits until asked to stop feeds a sink. A progress callback
 * with a 1 ns interval keeps the monitor looping, so it is awake whenever
 * sl__run_stop() runs. A graceful stop must end the run "interrupted" with
 * exit code 0: the monitor must never see the stop without its time, which
 * would put the shutdown timeout in the past and force the stop.
 *
 * Second check: a source that emits one record and then goes quiet (waits
 * on its source context) must see that record reach the sink soon, with no
 * stall watch, metrics or deadline to wake the monitor for it.
 *
 * Third check: a transform waiting for its rate_limit is not stalled in
 * process(), even with a stall timeout shorter than the wait.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#include "engine/diag.h"
#include "engine/run.h"
#include "engine/run_internal.h"
#include "sluice/plugin.h"

#include "stress_common.h"

typedef struct quiet_src_state {
    int64_t quiet;   /* 1: emit one record, then wait for the stop */
    int64_t count;   /* 0: until stopped */
} quiet_src_state;

static const sl_option quiet_src_options[] = {
    {SL_OPT_INT, "quiet", "0", 0, offsetof(quiet_src_state, quiet), 0, 0, NULL, ""},
    {SL_OPT_INT, "count", "0", 0, offsetof(quiet_src_state, count), 0, 0, NULL, ""},
    SL_OPTIONS_END,
};

/* Cancelled by main once the monitor is in its long sleep. */
static sl_ctx *go;

static int quiet_src_run(void *state, sl_stage_ctx *sc)
{
    quiet_src_state *st = state;
    if (st->quiet)
        sl_ctx_wait(go, INT64_MAX);
    for (int64_t i = 1; st->count == 0 || i <= st->count; i++) {
        if (sl_stage_stopping(sc))
            return 0;
        sl_record *r = sl_record_new();
        if (r == NULL)
            return SL_ENOMEM;
        sl_record_set(r, "n", sl_value_int(i));
        int rc = sl_emit(sc, r);
        if (rc != 0)
            return rc;
        if (st->quiet) {
            sl_ctx_wait(sl_stage_source_context(sc), INT64_MAX);
            return 0;
        }
    }
    return 0;
}

static int pass_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    (void)state;
    return sl_emit(sc, rec);
}

static int sink_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    (void)state;
    sl_record_stored(sc, rec);
    return 0;
}

static const sl_stage_desc quiet_src_desc = {
    SL_STAGE_DESC_HEADER, .name = "src", .kind = SL_STAGE_SOURCE,
    .options = quiet_src_options, .state_size = sizeof(quiet_src_state), .run = quiet_src_run,
};
static const sl_stage_desc pass_desc = {
    SL_STAGE_DESC_HEADER, .name = "pass", .kind = SL_STAGE_TRANSFORM,
    .state_size = 1, .process = pass_process,
};
static const sl_stage_desc sink_desc = {
    SL_STAGE_DESC_HEADER, .name = "sink", .kind = SL_STAGE_SINK,
    .state_size = 1, .process = sink_process,
};

static void busy_progress(void *arg, sl__run *run)
{
    (void)arg;
    (void)run;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SL_NS_PER_S + ts.tv_nsec;
}

static sl__run *make_run(sl_config *cfg, sl_stage_conf conf[2],
                         sl__run_stage st[2], const char *src_opt,
                         bool busy_monitor, sl_diag **diag)
{
    static const size_t in_sink[1] = {0};
    memset(cfg, 0, sizeof(*cfg));
    cfg->file = "stress";
    cfg->name = "stress";
    cfg->settings.channel_capacity = 16;
    cfg->settings.shutdown_timeout_ns = 30 * SL_NS_PER_S;
    memset(conf, 0, 2 * sizeof(*conf));
    memset(st, 0, 2 * sizeof(*st));
    conf[0].name = "src";
    conf[0].desc = &quiet_src_desc;
    conf[1].name = "sink";
    conf[1].desc = &sink_desc;
    for (int i = 0; i < 2; i++) {
        conf[i].workers = 1;
        st[i].conf = &conf[i];
    }
    st[0].options_yaml = src_opt;
    st[1].n_inputs = 1;
    st[1].inputs = in_sink;
    sl__run_opts o = {.cfg = cfg, .n_stages = 2, .stages = st};
    if (busy_monitor) {
        o.progress = busy_progress;
        o.progress_interval_ns = 1;
    }
    *diag = sl__diag_create();
    sl__run *run = NULL;
    int rc = sl__run_create(&o, *diag, &run);
    if (rc != 0)
        sl__diag_print(*diag, stderr);
    CHECK(rc == 0, "create: %d", rc);
    CHECK(sl__run_start(run) == 0, "start");
    return run;
}

/* Graceful stop against a monitor that is always awake. */
static void stop_run(int iter)
{
    sl_config cfg;
    sl_stage_conf conf[2];
    sl__run_stage st[2];
    sl_diag *diag;
    sl__run *run = make_run(&cfg, conf, st, "quiet: 0", true, &diag);
    while (SL__RUN_COUNTER(run, 1, stored) < 10 &&
           !sl_ctx_is_done(sl__run_context(run)))
        sched_yield();
    sl__run_stop(run, false);
    sl__run_result res;
    sl__run_wait(run, &res);
    CHECK(res.exit_code == 0 && !res.forced,
          "iter %d: graceful stop ended with exit %d (%s)", iter,
          res.exit_code, res.cause);
    sl__run_destroy(run);
    sl__diag_destroy(diag);
}

/* A quiet source's last record must not wait for an unrelated wake-up. */
static void quiet_source(void)
{
    sl_config cfg;
    sl_stage_conf conf[2];
    sl__run_stage st[2];
    sl_diag *diag;
    CHECK(sl_ctx_create(&go) == 0, "go");
    sl__run *run = make_run(&cfg, conf, st, "quiet: 1", false, &diag);
    /* Let the monitor settle into its sleep with nothing owed. */
    while (!atomic_load(&run->monitor_sleeping))
        sched_yield();
    sl_ctx_cancel(go, SL_ECANCELED, NULL);
    int64_t t0 = now_ns();
    int64_t limit = t0 + 2 * SL_NS_PER_S;
    while (SL__RUN_COUNTER(run, 1, stored) < 1 && now_ns() < limit)
        sched_yield();
    int64_t waited = now_ns() - t0;
    uint64_t stored = SL__RUN_COUNTER(run, 1, stored);
    sl__run_stop(run, false);
    sl__run_result res;
    sl__run_wait(run, &res);
    CHECK(stored == 1, "a quiet source's record was not delivered in %.3fs",
          (double)waited / 1e9);
    CHECK(res.exit_code == 0, "quiet: exit %d (%s)", res.exit_code, res.cause);
    sl__run_destroy(run);
    sl__diag_destroy(diag);
    sl_ctx_destroy(go);
}

/* src -> pass (rate_limit 20/s) -> sink, stall timeout 20 ms, on_stall: fail. */
static void throttled(void)
{
    static const size_t in_pass[1] = {0}, in_sink[1] = {1};
    sl_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.file = "stress";
    cfg.name = "stress";
    cfg.settings.channel_capacity = 16;
    cfg.settings.shutdown_timeout_ns = 30 * SL_NS_PER_S;
    cfg.settings.stall_timeout_ns = 20 * SL_NS_PER_MS;
    cfg.settings.on_stall = SL_ON_STALL_FAIL;
    sl_stage_conf conf[3];
    sl__run_stage st[3];
    memset(conf, 0, sizeof(conf));
    memset(st, 0, sizeof(st));
    const sl_stage_desc *descs[3] = {&quiet_src_desc, &pass_desc, &sink_desc};
    const char *names[3] = {"src", "pass", "sink"};
    for (int i = 0; i < 3; i++) {
        conf[i].name = (char *)names[i];
        conf[i].desc = descs[i];
        conf[i].workers = 1;
        st[i].conf = &conf[i];
    }
    conf[1].rate_limit.set = true;
    conf[1].rate_limit.rate = 20;
    conf[1].rate_limit.burst = 1;
    st[0].options_yaml = "count: 5";
    st[1].n_inputs = 1;
    st[1].inputs = in_pass;
    st[2].n_inputs = 1;
    st[2].inputs = in_sink;
    sl__run_opts o = {.cfg = &cfg, .n_stages = 3, .stages = st};
    sl_diag *diag = sl__diag_create();
    sl__run *run = NULL;
    int rc = sl__run_create(&o, diag, &run);
    if (rc != 0)
        sl__diag_print(diag, stderr);
    CHECK(rc == 0, "create: %d", rc);
    CHECK(sl__run_start(run) == 0, "start");
    sl__run_result res;
    sl__run_wait(run, &res);
    CHECK(res.exit_code == 0, "throttled: exit %d (%s)", res.exit_code,
          res.cause);
    CHECK(SL__RUN_COUNTER(run, 2, stored) == 5, "throttled: stored %llu",
          (unsigned long long)SL__RUN_COUNTER(run, 2, stored));
    sl__run_destroy(run);
    sl__diag_destroy(diag);
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 300;
    if (argc <= 2) {
        quiet_source();
        throttled();
    }
    for (int i = 0; i < runs; i++)
        stop_run(i);
    printf("stress_run_stop: %d runs ok\n", runs);
    return 0;
}
