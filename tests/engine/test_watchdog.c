/*
 * The stuck-stage watchdog, the stage dump and the leak check, driven on a
 * fake clock: a stage blocks inside process() on a context the test
 * controls, the test moves the clock past the stall timeout and asks the
 * watchdog. Synchronisation with the stages goes through a mutex and
 * condition variable, never through sleeping.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/diag.h"
#include "engine/run.h"
#include "engine/watchdog.h"
#include "sluice/error.h"
#include "sluice/plugin.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool holding;          /* guarded by mu: hold is inside process() */
static sl_ctx *gate;          /* hold waits on it (warn mode) */

/* ------------------------------------------------------------------ */
/* Stages                                                              */
/* ------------------------------------------------------------------ */

typedef struct src_state {
    int64_t count;
} src_state;

static const sl_option src_options[] = {
    {SL_OPT_INT, "count", "10", 0, offsetof(src_state, count), 0, 0, NULL, ""},
    SL_OPTIONS_END,
};

static int src_run(void *state, sl_stage_ctx *sc)
{
    src_state *st = state;
    for (int64_t i = 1; i <= st->count; i++) {
        sl_record *r = sl_record_new();
        sl_record_set_position(r, sl_stage_name(sc), "mem", i * 10, i);
        sl_record_set(r, "n", sl_value_int(i));
        int rc = sl_emit(sc, r);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const sl_stage_desc src_desc = {
    SL_STAGE_DESC_HEADER, .name = "src", .kind = SL_STAGE_SOURCE,
    .options = src_options, .state_size = sizeof(src_state), .run = src_run,
};

/* Blocks on record `at`: on the gate, or (until: run) on the run's
 * cancellation. */
typedef struct hold_state {
    int64_t at;
    bool until_cancel;
} hold_state;

static const sl_option hold_options[] = {
    {SL_OPT_INT, "at", "3", 0, offsetof(hold_state, at), 0, 0, NULL, ""},
    {SL_OPT_BOOL, "until_cancel", "false", 0,
     offsetof(hold_state, until_cancel), 0, 0, NULL, ""},
    SL_OPTIONS_END,
};

static int hold_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    hold_state *st = state;
    if (sl_value_get_int(sl_record_get(rec, "n")) == st->at) {
        pthread_mutex_lock(&mu);
        holding = true;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&mu);
        if (st->until_cancel) {
            sl_ctx_wait(sl_stage_context(sc), INT64_MAX);
            return sl_stage_error(sc, SL_ECANCELED, "cancelled");
        }
        sl_ctx_wait(gate, INT64_MAX);
    }
    return sl_emit(sc, rec);
}

static const sl_stage_desc hold_desc = {
    SL_STAGE_DESC_HEADER, .name = "hold", .kind = SL_STAGE_TRANSFORM,
    .options = hold_options, .state_size = sizeof(hold_state),
    .process = hold_process,
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
/* A three-stage run on a fake clock                                    */
/* ------------------------------------------------------------------ */

static sl_config cfg;
static sl_stage_conf confs[3];
static size_t inputs[3];
static sl__run_stage rstages[3];
static sl_fake_clock fc;
static sl_diag *diag;
static FILE *log_file;

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    cfg.file = "test.yaml";
    cfg.name = "wd";
    cfg.settings.channel_capacity = 16;
    cfg.settings.shutdown_timeout_ns = 30 * SL_NS_PER_S;
    cfg.settings.stall_timeout_ns = 10 * SL_NS_PER_S;
    cfg.metrics.interval_ns = SL_NS_PER_S;
    sl_fake_clock_init(&fc, 1000 * SL_NS_PER_S);
    diag = sl__diag_create();
    cr_assert_eq(sl_ctx_create(&gate), 0);
    log_file = tmpfile();
    cr_assert_not_null(log_file);
    sl__log_set_stream(log_file);
}

static void teardown(void)
{
    sl__log_set_stream(NULL);
    fclose(log_file);
    sl__diag_destroy(diag);
    sl_ctx_destroy(gate);
}

TestSuite(watchdog, .init = setup, .fini = teardown, .timeout = 60);

static void add(size_t i, const char *name, const sl_stage_desc *desc,
                const char *options)
{
    sl_stage_conf *c = &confs[i];
    memset(c, 0, sizeof(*c));
    c->name = (char *)name;
    c->type = (char *)desc->name;
    c->desc = desc;
    c->workers = 1;
    c->on_error = SL_ON_ERROR_FAIL;
    rstages[i].conf = c;
    rstages[i].options_yaml = options;
    rstages[i].inputs = &inputs[i];
    rstages[i].n_inputs = i > 0 ? 1 : 0;
    inputs[i] = i > 0 ? i - 1 : 0;
}

static sl__run *create(const char *hold_options_yaml)
{
    add(0, "src", &src_desc, "count: 10");
    add(1, "hold", &hold_desc, hold_options_yaml);
    add(2, "sink", &sink_desc, NULL);
    sl__run_opts o = {.cfg = &cfg, .n_stages = 3, .stages = rstages,
                      .clock = &fc.clock};
    sl__run *run = NULL;
    cr_assert_eq(sl__run_create(&o, diag, &run), 0);
    return run;
}

static void wait_holding(void)
{
    pthread_mutex_lock(&mu);
    while (!holding)
        pthread_cond_wait(&cond, &mu);
    pthread_mutex_unlock(&mu);
}

/* Everything logged so far. */
static char *log_text(void)
{
    fflush(log_file);
    long len = ftell(log_file);
    char *text = calloc(1, (size_t)len + 1);
    cr_assert_not_null(text);
    rewind(log_file);
    cr_assert_eq(fread(text, 1, (size_t)len, log_file), (size_t)len);
    fseek(log_file, 0, SEEK_END);
    return text;
}

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p != NULL;
         p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ------------------------------------------------------------------ */

Test(watchdog, reports_a_silent_worker_once_after_the_timeout)
{
    sl__run *run = create("at: 3");
    cr_assert_eq(sl__run_start(run), 0);
    wait_holding();

    /* Not yet: the clock has not moved. */
    cr_expect_eq(sl__run_watchdog(run, NULL, 0), 0);
    cr_expect_not(sl__run_worker_stuck(run, 1, 0, sl__run_clock_now(run)));
    sl_fake_clock_advance(&fc, 10 * SL_NS_PER_S - 1);
    cr_expect_eq(sl__run_watchdog(run, NULL, 0), 0);
    cr_expect_not(sl__run_worker_stuck(run, 1, 0, sl__run_clock_now(run)));

    /* Past it: reported once (by us or the monitor, never both). */
    sl_fake_clock_advance(&fc, 2);
    cr_expect(sl__run_worker_stuck(run, 1, 0, sl__run_clock_now(run)));
    char cause[512] = "";
    int first = sl__run_watchdog(run, cause, sizeof(cause));
    cr_expect_leq(first, 1);
    if (first == 1)
        cr_expect(strncmp(cause, "stage hold: stalled in process() for 10s "
                                 "(worker 0, holding record seq 3 of src "
                                 "(offset 30); input ", 89) == 0,
                  "%s", cause);
    cr_expect_eq(sl__run_watchdog(run, NULL, 0), 0, "reported once");
    sl_fake_clock_advance(&fc, 60 * SL_NS_PER_S);
    cr_expect_eq(sl__run_watchdog(run, NULL, 0), 0,
                 "the same stall is not reported again");

    /* The dump shows the stuck worker and the record it holds. */
    sl_buf b;
    sl_buf_init(&b);
    cr_assert_eq(sl__run_describe(run, &b), 0);
    cr_assert_eq(sl_buf_putc(&b, '\0'), 0);
    cr_expect(strstr(b.data, "stage hold (hold, transform)") != NULL, "%s",
              b.data);
    cr_expect(strstr(b.data, "worker 0: processing, last heartbeat 70.000s "
                             "ago, holding record seq 3 of src (offset 30)") !=
                  NULL, "%s", b.data);
    cr_expect(strstr(b.data, "STUCK") != NULL, "%s", b.data);
    cr_expect(strstr(b.data, "stage sink (sink, sink) queue") != NULL);
    sl_buf_fini(&b);

    /* Released: the run ends normally, nothing leaked. */
    sl_ctx_cancel(gate, SL_ECANCELED, "go");
    sl__run_result res;
    cr_assert_eq(sl__run_wait(run, &res), 0);
    cr_expect_eq(res.exit_code, 0);
    char *text = log_text();
    cr_expect_eq(count_of(text, "stuck"), 1, "%s", text);
    cr_expect(strstr(text, "[hold] worker 0 stuck: no heartbeat for 10s in "
                           "process(), holding record seq 3 of src (offset "
                           "30); input ") != NULL, "%s", text);
    cr_expect(strstr(text, "output to sink ") != NULL, "%s", text);
    cr_expect_eq(count_of(text, "leak"), 0, "%s", text);
    free(text);
    sl__run_destroy(run);
}

Test(watchdog, a_worker_waiting_for_input_is_not_stuck)
{
    sl__run *run = create("at: 10");
    cr_assert_eq(sl__run_start(run), 0);
    wait_holding();
    /* src is done, hold holds the last record, sink waits on an empty
     * input: only hold counts. */
    sl_fake_clock_advance(&fc, 3600 * SL_NS_PER_S);
    int64_t now = sl__run_clock_now(run);
    cr_expect(sl__run_worker_stuck(run, 1, 0, now));
    cr_expect_not(sl__run_worker_stuck(run, 2, 0, now), "sink is idle");
    cr_expect_not(sl__run_worker_stuck(run, 0, 0, now), "sources never are");
    cr_expect_not(sl__run_worker_stuck(run, 7, 0, now));
    cr_expect_not(sl__run_worker_stuck(run, 1, 3, now));
    sl_ctx_cancel(gate, SL_ECANCELED, "go");
    sl__run_result res;
    cr_assert_eq(sl__run_wait(run, &res), 0);
    cr_expect_eq(res.exit_code, 0);
    sl__run_destroy(run);
}

Test(watchdog, on_stall_fail_fails_the_run_naming_stage_and_record)
{
    cfg.settings.on_stall = SL_ON_STALL_FAIL;
    sl__run *run = create("{at: 2, until_cancel: true}");
    cr_assert_eq(sl__run_start(run), 0);
    wait_holding();
    sl_fake_clock_advance(&fc, 11 * SL_NS_PER_S);
    /* The monitor checks within a second of real time and fails the
     * run; the held stage returns on the cancellation. */
    sl__run_result res;
    cr_assert_eq(sl__run_wait(run, &res), 0);
    cr_expect_eq(res.status, SL__RUN_FAILED);
    cr_expect_eq(res.exit_code, 1);
    cr_expect(strncmp(res.cause, "stage hold: stalled in process() for 11s "
                                 "(worker 0, holding record seq 2 of src "
                                 "(offset 20); input ", 89) == 0,
              "%s", res.cause);
    sl__run_destroy(run);
}

Test(watchdog, zero_timeout_never_reports)
{
    cfg.settings.stall_timeout_ns = 0;
    sl__run *run = create("at: 3");
    cr_assert_eq(sl__run_start(run), 0);
    wait_holding();
    sl_fake_clock_advance(&fc, 3600 * SL_NS_PER_S);
    cr_expect_eq(sl__run_watchdog(run, NULL, 0), 0);
    cr_expect_not(sl__run_worker_stuck(run, 1, 0, sl__run_clock_now(run)));
    sl_ctx_cancel(gate, SL_ECANCELED, "go");
    sl__run_result res;
    cr_assert_eq(sl__run_wait(run, &res), 0);
    cr_expect_eq(res.exit_code, 0);
    sl__run_destroy(run);
}

Test(watchdog, thread_count_is_known)
{
    int n = sl__thread_count();
    cr_expect_geq(n, 1);
}
