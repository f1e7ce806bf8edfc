/*
 * Stress for the runtime (a plain program: ThreadSanitizer checks it).
 *
 * A pipeline with a tee, a merge and a multi-worker stage (ordered and
 * unordered in turn) runs many times; some runs end on their own, some are
 * stopped gracefully midway, some forced, some fail in a stage. src is
 * read by both a (4 workers) and b: a tee; a and b merge into sink.
 *
 *     src ──┬─> a (workers 4, ordered or not) ─┐
 *           └─> b ─────────────────────────────┴─> sink
 *
 * Graceful stop: sink stores exactly 2 × what src emitted. Natural end:
 * the same with src's full count. Forced or failed: nothing is counted
 * twice, and every thread is joined (the run returns at all).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>

#include "engine/diag.h"
#include "engine/run.h"
#include "sluice/plugin.h"

#include "stress_common.h"

typedef struct work_state {
    int64_t fail_at;  /* 0: never */
} work_state;

static const sl_option work_options[] = {
    {SL_OPT_INT, "fail_at", "0", 0, offsetof(work_state, fail_at), 0, 0, NULL,
     ""},
    SL_OPTIONS_END,
};

static int work_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    work_state *st = state;
    int64_t n = sl_value_get_int(sl_record_get(rec, "n"));
    if (st->fail_at > 0 && n == st->fail_at)
        return sl_stage_error(sc, SL_EPARSE, "record %lld", (long long)n);
    if (n % 3 == 0)
        sl_record_set(rec, "w", sl_value_int(sl_stage_worker_index(sc)));
    if (n % 11 == 0 && sl_stage_worker_index(sc) == 0)
        sched_yield();
    return sl_emit(sc, rec);
}

typedef struct sink_state {
    int64_t held;
} sink_state;

static int sink_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    sink_state *st = state;
    st->held++;
    sl_record_stored(sc, rec);
    return 0;
}

static int sink_flush(void *state, sl_stage_ctx *sc)
{
    sink_state *st = state;
    st->held = 0;
    return 0;
}

static const sl_stage_desc work_desc = {
    SL_STAGE_DESC_HEADER, .name = "work", .kind = SL_STAGE_TRANSFORM,
    .options = work_options, .state_size = sizeof(work_state),
    .process = work_process,
};
static const sl_stage_desc sink_desc = {
    SL_STAGE_DESC_HEADER, .name = "sink", .kind = SL_STAGE_SINK,
    .state_size = sizeof(sink_state), .process = sink_process,
    .flush = sink_flush,
};

enum mode { NATURAL, GRACEFUL, FORCED, FAILING, MODES };

static void one_run(int iter, enum mode mode, bool ordered)
{
    sl_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.file = "stress";
    cfg.name = "stress";
    cfg.settings.channel_capacity = 8 + (iter % 5) * 7;
    cfg.settings.shutdown_timeout_ns = 30 * SL_NS_PER_S;
    sl_stage_conf conf[4];
    memset(conf, 0, sizeof(conf));
    const sl_stage_desc *descs[4] = {&src_desc, &work_desc, &work_desc,
                                     &sink_desc};
    const char *names[4] = {"src", "a", "b", "sink"};
    size_t in_a[1] = {0}, in_b[1] = {0}, in_sink[2] = {1, 2};
    sl__run_stage st[4];
    memset(st, 0, sizeof(st));
    char src_opt[64], a_opt[64];
    snprintf(src_opt, sizeof(src_opt), "count: %d",
             mode == NATURAL || mode == FAILING ? 3000 + iter * 17 : 0);
    snprintf(a_opt, sizeof(a_opt), "fail_at: %d",
             mode == FAILING ? 500 + iter * 13 : 0);
    for (int i = 0; i < 4; i++) {
        conf[i].name = (char *)names[i];
        conf[i].desc = descs[i];
        conf[i].workers = 1;
        st[i].conf = &conf[i];
    }
    conf[1].workers = 4;
    conf[1].ordered = ordered;
    st[0].options_yaml = src_opt;
    st[1].options_yaml = a_opt;
    st[1].n_inputs = 1;
    st[1].inputs = in_a;
    st[2].n_inputs = 1;
    st[2].inputs = in_b;
    st[3].n_inputs = 2;
    st[3].inputs = in_sink;

    sl__run_opts o = {.cfg = &cfg, .n_stages = 4, .stages = st,
                      .batch = (size_t)(1 + iter % 64)};
    sl_diag *diag = sl__diag_create();
    sl__run *run = NULL;
    int rc = sl__run_create(&o, diag, &run);
    if (rc != 0)
        sl__diag_print(diag, stderr);
    CHECK(rc == 0, "create: %d", rc);
    CHECK(sl__run_start(run) == 0, "start");

    if (mode == GRACEFUL || mode == FORCED) {
        /* let some records reach the sink first */
        uint64_t want = 200 + (uint64_t)iter * 10;
        while (SL__RUN_COUNTER(run, 3, stored) < want &&
               !sl_ctx_is_done(sl__run_context(run)))
            sched_yield();
        sl__run_stop(run, false);
        if (mode == FORCED)
            sl__run_stop(run, true);
    }
    sl__run_result res;
    sl__run_wait(run, &res);

    uint64_t emitted = SL__RUN_COUNTER(run, 0, records_out);
    uint64_t a_in = SL__RUN_COUNTER(run, 1, records_in);
    uint64_t a_out = SL__RUN_COUNTER(run, 1, records_out);
    uint64_t a_err = SL__RUN_COUNTER(run, 1, errors);
    uint64_t b_out = SL__RUN_COUNTER(run, 2, records_out);
    uint64_t stored = SL__RUN_COUNTER(run, 3, stored);
    switch (mode) {
    case NATURAL:
    case GRACEFUL:
        CHECK(res.exit_code == 0, "iter %d mode %d: exit %d (%s)", iter, mode,
              res.exit_code, res.cause);
        if (mode == NATURAL)
            CHECK(emitted == (uint64_t)(3000 + iter * 17), "iter %d: emitted %llu",
                  iter, (unsigned long long)emitted);
        CHECK(a_in == emitted && a_out == emitted && b_out == emitted,
              "iter %d mode %d: emitted %llu, a %llu/%llu, b %llu", iter, mode,
              (unsigned long long)emitted, (unsigned long long)a_in,
              (unsigned long long)a_out, (unsigned long long)b_out);
        CHECK(stored == 2 * emitted, "iter %d mode %d: stored %llu of %llu",
              iter, mode, (unsigned long long)stored,
              (unsigned long long)(2 * emitted));
        break;
    case FORCED:
        CHECK(res.exit_code == 3, "iter %d: forced exit %d", iter,
              res.exit_code);
        CHECK(stored <= 2 * emitted, "iter %d: stored more than emitted", iter);
        break;
    case FAILING:
        CHECK(res.exit_code == 1, "iter %d: failing exit %d", iter,
              res.exit_code);
        CHECK(a_err == 1, "iter %d: %llu errors", iter,
              (unsigned long long)a_err);
        CHECK(strncmp(res.cause, "stage a: record ", 16) == 0, "cause %s",
              res.cause);
        CHECK(stored <= 2 * emitted, "iter %d: stored more than emitted", iter);
        break;
    default:
        break;
    }
    sl__run_destroy(run);
    sl__diag_destroy(diag);
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 24;
    for (int i = 0; i < iters; i++)
        one_run(i, (enum mode)(i % MODES), (i / MODES) % 2 == 1);
    printf("stress_run: %d runs ok\n", iters);
    return 0;
}
