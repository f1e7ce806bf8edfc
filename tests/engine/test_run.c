/*
 * The runtime driven with stage descriptors defined here: a counting
 * source, gated and collecting sinks, failing and flaky transforms.
 * Synchronisation with the stages goes through a mutex and condition
 * variable (or a context the test cancels), never through sleeping.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/channel_internal.h"
#include "engine/diag.h"
#include "engine/options.h"
#include "engine/run.h"
#include "sluice/error.h"
#include "sluice/plugin.h"

/* ------------------------------------------------------------------ */
/* Shared test state (Criterion runs each test in its own process)     */
/* ------------------------------------------------------------------ */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static uint64_t stored_total;          /* guarded by mu */
static int64_t seen[20000];            /* guarded by mu: n values, in order */
static size_t n_seen;                  /* guarded by mu */
static int flushes;                    /* guarded by mu */
static int rolled_back;                /* guarded by mu */
static int destroyed;                  /* guarded by mu */
static int inited;                     /* guarded by mu: collect inits */
static sl_ctx *gate;                   /* the gated sink waits on it */

static void wait_stored(uint64_t n)
{
    pthread_mutex_lock(&mu);
    while (stored_total < n)
        pthread_cond_wait(&cond, &mu);
    pthread_mutex_unlock(&mu);
}

/* ------------------------------------------------------------------ */
/* Stages                                                              */
/* ------------------------------------------------------------------ */

typedef struct count_state {
    int64_t count;   /* 0: until asked to stop */
} count_state;

static const sl_option count_options[] = {
    {SL_OPT_INT, "count", "0", 0, offsetof(count_state, count), 0, 0, NULL,
     "records to emit; 0 = until stopped"},
    SL_OPTIONS_END,
};

static int count_run(void *state, sl_stage_ctx *sc)
{
    count_state *st = state;
    for (int64_t i = 1; st->count == 0 || i <= st->count; i++) {
        if (sl_stage_stopping(sc))
            return 0;
        sl_record *r = sl_record_new();
        cr_assert_not_null(r);
        sl_record_set_position(r, sl_stage_name(sc), "mem", i * 10, i);
        sl_record_set(r, "n", sl_value_int(i));
        int rc = sl_emit(sc, r);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const sl_stage_desc count_desc = {
    SL_STAGE_DESC_HEADER, .name = "count", .kind = SL_STAGE_SOURCE,
    .summary = "count", .options = count_options,
    .state_size = sizeof(count_state), .run = count_run,
};

/* Transform: fail on every n divisible by `every` (0 = never); `work`
 * spins a little, more for some records, to shuffle worker timing. */
typedef struct boom_state {
    int64_t every;
    int64_t flaky;    /* fail this many times per record before passing */
    bool work;
    int64_t tries_n;  /* record n being retried */
    int64_t tries;
} boom_state;

static const sl_option boom_options[] = {
    {SL_OPT_INT, "every", "0", 0, offsetof(boom_state, every), 0, 0, NULL, ""},
    {SL_OPT_INT, "flaky", "0", 0, offsetof(boom_state, flaky), 0, 0, NULL, ""},
    {SL_OPT_BOOL, "work", "false", 0, offsetof(boom_state, work), 0, 0, NULL,
     ""},
    SL_OPTIONS_END,
};

static int boom_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    boom_state *st = state;
    int64_t n = sl_value_get_int(sl_record_get(rec, "n"));
    if (st->flaky > 0) {
        if (st->tries_n != n) {
            st->tries_n = n;
            st->tries = 0;
        }
        if (st->tries++ < st->flaky)
            return sl_stage_error(sc, SL_EAGAIN, "flaky on %lld", (long long)n);
    }
    if (st->every > 0 && n % st->every == 0)
        return sl_stage_error(sc, SL_EPARSE, "bad record %lld", (long long)n);
    if (st->work) {
        volatile uint64_t x = 0;
        for (int64_t i = 0; i < (n % 7) * 2000; i++)
            x = x + (uint64_t)i;
        sl_record_set(rec, "work", sl_value_int((int64_t)x));
    }
    return sl_emit(sc, rec);
}

static const sl_stage_desc boom_desc = {
    SL_STAGE_DESC_HEADER, .name = "boom", .kind = SL_STAGE_TRANSFORM,
    .summary = "fails sometimes", .options = boom_options,
    .state_size = sizeof(boom_state), .process = boom_process,
};

/* Sink: keeps records until flush() commits them; destroy() rolls back
 * what was not committed. `gated` waits on the test's gate first;
 * `stuck` waits for the run's cancellation inside process(). `mark`
 * sets a field (to check tee copies are independent). */
typedef struct collect_state {
    bool gated;
    bool stuck;
    bool mark;
    bool check_unmarked;
    sl_record **held;
    size_t n, cap;
} collect_state;

static const sl_option collect_options[] = {
    {SL_OPT_BOOL, "gated", "false", 0, offsetof(collect_state, gated), 0, 0,
     NULL, ""},
    {SL_OPT_BOOL, "stuck", "false", 0, offsetof(collect_state, stuck), 0, 0,
     NULL, ""},
    {SL_OPT_BOOL, "mark", "false", 0, offsetof(collect_state, mark), 0, 0,
     NULL, ""},
    {SL_OPT_BOOL, "check_unmarked", "false", 0,
     offsetof(collect_state, check_unmarked), 0, 0, NULL, ""},
    SL_OPTIONS_END,
};

static int collect_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    collect_state *st = state;
    if (st->gated)
        sl_ctx_wait(gate, INT64_MAX);
    if (st->stuck) {
        sl_ctx_wait(sl_stage_context(sc), INT64_MAX);
        return sl_stage_error(sc, SL_ECANCELED, "stuck sink cancelled");
    }
    if (st->mark)
        sl_record_set(rec, "marked", sl_value_bool(true));
    if (st->check_unmarked && sl_record_get(rec, "marked") != NULL)
        return sl_stage_error(sc, SL_EINTERNAL, "saw another branch's change");
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 64;
        st->held = realloc(st->held, st->cap * sizeof(*st->held));
    }
    st->held[st->n++] = rec;
    return 0;
}

static int collect_flush(void *state, sl_stage_ctx *sc)
{
    collect_state *st = state;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < st->n; i++) {
        if (n_seen < sizeof(seen) / sizeof(seen[0]))
            seen[n_seen++] = sl_value_get_int(sl_record_get(st->held[i], "n"));
    }
    stored_total += st->n;
    flushes++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
    sl_stage_count_stored(sc, st->n, st->n * 8);
    for (size_t i = 0; i < st->n; i++)
        sl_record_free(st->held[i]);
    st->n = 0;
    return 0;
}

static int collect_init(void *state, sl_stage_ctx *sc)
{
    pthread_mutex_lock(&mu);
    inited++;
    pthread_mutex_unlock(&mu);
    return 0;
}

static void collect_destroy(void *state)
{
    collect_state *st = state;
    pthread_mutex_lock(&mu);
    rolled_back += (int)st->n;
    destroyed++;
    pthread_mutex_unlock(&mu);
    for (size_t i = 0; i < st->n; i++)
        sl_record_free(st->held[i]);
    free(st->held);
}

static const sl_stage_desc collect_desc = {
    SL_STAGE_DESC_HEADER, .name = "collect", .kind = SL_STAGE_SINK,
    .summary = "collect", .options = collect_options,
    .state_size = sizeof(collect_state), .process = collect_process,
    .init = collect_init, .flush = collect_flush, .destroy = collect_destroy,
};

/* A stage whose init fails. */
static int refuse_init(void *state, sl_stage_ctx *sc)
{
    return sl_stage_error(sc, SL_EIO, "cannot open the thing");
}

static const sl_stage_desc refuse_desc = {
    SL_STAGE_DESC_HEADER, .name = "refuse", .kind = SL_STAGE_SINK,
    .init = refuse_init, .process = collect_process,
    .state_size = sizeof(collect_state), .destroy = collect_destroy,
};

/* A sink that holds every record and, on flush, gives them all up with
 * sl_record_reject: the engine applies on_error to each. */
typedef struct giveup_state {
    sl_record **held;
    size_t n, cap;
} giveup_state;

static int giveup_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    giveup_state *st = state;
    (void)sc;
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 64;
        st->held = realloc(st->held, st->cap * sizeof(*st->held));
    }
    st->held[st->n++] = rec;
    return 0;
}

static int giveup_flush(void *state, sl_stage_ctx *sc)
{
    giveup_state *st = state;
    int first = 0;
    for (size_t i = 0; i < st->n; i++) {
        int64_t n = sl_value_get_int(sl_record_get(st->held[i], "n"));
        int rc = sl_record_reject(sc, st->held[i], SL_EIO, "held %lld", (long long)n);
        if (rc != 0 && first == 0)
            first = rc;
    }
    st->n = 0;
    return first;
}

static void giveup_destroy(void *state)
{
    giveup_state *st = state;
    for (size_t i = 0; i < st->n; i++)
        sl_record_free(st->held[i]);
    free(st->held);
}

static const sl_stage_desc giveup_desc = {
    SL_STAGE_DESC_HEADER, .name = "giveup", .kind = SL_STAGE_SINK,
    .summary = "giveup", .state_size = sizeof(giveup_state),
    .process = giveup_process, .flush = giveup_flush,
    .destroy = giveup_destroy,
};

/* A source that declares `workers` (runs its own concurrency): how many
 * times run() is called, and what it sees. */
static int own_runs;                   /* guarded by mu */
static int own_worker_count;           /* guarded by mu */
static int64_t own_workers_option;     /* guarded by mu */

typedef struct own_state {
    int64_t workers;
    int64_t count;
} own_state;

static const sl_option own_options[] = {
    {SL_OPT_INT, "workers", "1", 0, offsetof(own_state, workers), 1, 256, NULL, ""},
    {SL_OPT_INT, "count", "10", 0, offsetof(own_state, count), 0, 0, NULL, ""},
    SL_OPTIONS_END,
};

static int own_run(void *state, sl_stage_ctx *sc)
{
    own_state *st = state;
    pthread_mutex_lock(&mu);
    own_runs++;
    own_worker_count = sl_stage_worker_count(sc);
    own_workers_option = st->workers;
    pthread_mutex_unlock(&mu);
    for (int64_t i = 1; i <= st->count; i++) {
        sl_record *r = sl_record_new();
        sl_record_set(r, "n", sl_value_int(i));
        if (sl_emit(sc, r) != 0)
            return 0;
    }
    return 0;
}

static const sl_stage_desc own_desc = {
    SL_STAGE_DESC_HEADER, .name = "own", .kind = SL_STAGE_SOURCE,
    .summary = "own", .options = own_options,
    .state_size = sizeof(own_state), .run = own_run,
};

/* ------------------------------------------------------------------ */
/* Building pipelines                                                  */
/* ------------------------------------------------------------------ */

#define MAX_STAGES 8

static sl_config cfg;
static sl_stage_conf confs[MAX_STAGES];
static size_t ins[MAX_STAGES][4];
static sl__run_stage rstages[MAX_STAGES];
static size_t n_stages;
static sl_diag *diag;
static char tmpdir[64];

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    cfg.file = "test.yaml";
    cfg.name = "test";
    cfg.settings.channel_capacity = 16;
    cfg.settings.shutdown_timeout_ns = 30 * SL_NS_PER_S;
    cfg.metrics.interval_ns = SL_NS_PER_S;
    n_stages = 0;
    diag = sl__diag_create();
    cr_assert_not_null(sl_ctx_create(&gate) == 0 ? gate : NULL);
    strcpy(tmpdir, "/tmp/sluice-run-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
    sl__diag_destroy(diag);
    sl_ctx_destroy(gate);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
}

TestSuite(run, .init = setup, .fini = teardown, .timeout = 60);

/* Add a stage reading from the given stage indices (-1 ends the list). */
static size_t add(const char *name, const sl_stage_desc *desc,
                  const char *options, int in0, int in1)
{
    size_t i = n_stages++;
    cr_assert_leq(n_stages, MAX_STAGES);
    sl_stage_conf *c = &confs[i];
    memset(c, 0, sizeof(*c));
    c->name = (char *)name;
    c->type = (char *)desc->name;
    c->desc = desc;
    c->workers = 1;
    c->on_error = SL_ON_ERROR_FAIL;
    rstages[i].conf = c;
    rstages[i].options_yaml = options;
    rstages[i].n_inputs = 0;
    rstages[i].inputs = ins[i];
    if (in0 >= 0)
        ins[i][rstages[i].n_inputs++] = (size_t)in0;
    if (in1 >= 0)
        ins[i][rstages[i].n_inputs++] = (size_t)in1;
    return i;
}

static sl__run *create(void)
{
    sl__run_opts o = {.cfg = &cfg, .n_stages = n_stages, .stages = rstages};
    sl__run *run = NULL;
    int rc = sl__run_create(&o, diag, &run);
    if (rc != 0) {
        for (size_t i = 0; i < sl__diag_count(diag); i++)
            fprintf(stderr, "%s\n", sl__diag_message(diag, i));
    }
    cr_assert_eq(rc, 0);
    return run;
}

static sl__run_result run_to_end(sl__run *run)
{
    sl__run_result res;
    cr_assert_eq(sl__run_start(run), 0);
    cr_assert_eq(sl__run_wait(run, &res), 0);
    return res;
}

#define COUNTER(run, i, f) SL__RUN_COUNTER(run, i, f)

/* Wait until stage i has taken in at least n records (it is then inside
 * process() or past it). */
static void wait_records_in(sl__run *run, size_t i, uint64_t n)
{
    while (SL__RUN_COUNTER(run, i, records_in) < n)
        sched_yield();
}

/* ------------------------------------------------------------------ */

Test(run, linear_pipeline_counts_everything)
{
    char mf[128];
    snprintf(mf, sizeof(mf), "%s/metrics.json", tmpdir);
    cfg.metrics.file = mf;
    size_t a = add("src", &count_desc, "count: 1000", -1, -1);
    size_t b = add("pass", &boom_desc, NULL, (int)a, -1);
    size_t c = add("sink", &collect_desc, NULL, (int)b, -1);
    sl__run *run = create();
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.status, SL__RUN_SUCCEEDED);
    cr_expect_eq(res.exit_code, 0);
    cr_expect_str_eq(res.cause, "");
    cr_expect_eq(COUNTER(run, a, records_out), 1000);
    cr_expect_eq(COUNTER(run, b, records_in), 1000);
    cr_expect_eq(COUNTER(run, b, records_out), 1000);
    cr_expect_eq(COUNTER(run, c, records_in), 1000);
    cr_expect_eq(COUNTER(run, c, records_out), 1000);
    cr_expect_eq(COUNTER(run, c, stored), 1000);
    cr_expect_eq(stored_total, 1000);
    for (size_t i = 0; i < n_seen; i++)
        cr_assert_eq(seen[i], (int64_t)i + 1, "order kept with one worker");
    cr_expect_eq(destroyed, 1);
    cr_expect_eq(rolled_back, 0);

    /* the final snapshot */
    FILE *f = fopen(mf, "r");
    cr_assert_not_null(f);
    char buf[8192];
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';
    sl_value *v = NULL;
    cr_assert_eq(sl_json_parse(buf, len, NULL, &v, NULL), 0, "%s", buf);
    cr_expect_str_eq(sl_value_get_string(sl_object_get(v, "pipeline"), NULL),
                     "test");
    cr_expect_str_eq(sl_value_get_string(sl_object_get(v, "status"), NULL),
                     "succeeded");
    sl_value *stages = sl_object_get(v, "stages");
    cr_assert_eq(sl_array_len(stages), 3);
    sl_value *s1 = sl_array_get(stages, 1);
    cr_expect_str_eq(sl_value_get_string(sl_object_get(s1, "name"), NULL),
                     "pass");
    cr_expect_str_eq(sl_value_get_string(sl_object_get(s1, "type"), NULL),
                     "boom");
    const char *keys[] = {"workers", "records_in", "records_out", "errors",
                          "dropped", "retries", "bytes_in", "bytes_out",
                          "queue_depth", "queue_capacity", "blocked_send_s",
                          "idle_recv_s", "latency_us", "throughput_rps"};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        cr_expect_not_null(sl_object_get(s1, keys[k]), "missing %s", keys[k]);
    cr_expect_eq(sl_value_get_int(sl_object_get(s1, "records_in")), 1000);
    cr_expect_eq(sl_value_get_int(sl_object_get(s1, "queue_capacity")), 16);
    sl_value *lat = sl_object_get(s1, "latency_us");
    cr_expect_not_null(sl_object_get(lat, "p99"));
    cr_expect_gt(sl_value_get_double(sl_object_get(lat, "max")), 0);
    cr_expect_gt(sl_value_get_double(sl_object_get(s1, "throughput_rps")), 0);
    sl_value_unref(v);
    sl__run_destroy(run);
}

Test(run, backpressure_blocks_the_source)
{
    size_t a = add("src", &count_desc, "count: 2000", -1, -1);
    size_t b = add("slow", &collect_desc, "gated: true", (int)a, -1);
    confs[b].capacity = 4;
    sl__run *run = create();
    cr_assert_eq(sl__run_start(run), 0);
    sl_chan *in = sl__run_stage_input(run, b);
    /* the source ends up blocked on the full channel */
    while (sl__chan_blocked(in, true) == 0)
        sched_yield();
    sl_chan_stats cs;
    sl_chan_stats_get(in, &cs);
    cr_expect_leq(cs.max_depth, 4);
    cr_expect_eq(cs.capacity, 4);
    cr_expect_lt(COUNTER(run, a, records_out), 2000,
                 "the source did not run ahead");
    cr_expect_eq(stored_total, 0);

    sl_ctx_cancel(gate, SL_ECANCELED, "open");   /* open the gate */
    sl__run_result res;
    cr_assert_eq(sl__run_wait(run, &res), 0);
    cr_expect_eq(res.status, SL__RUN_SUCCEEDED);
    cr_expect_eq(stored_total, 2000);
    sl_chan_stats_get(in, &cs);
    cr_expect_leq(cs.max_depth, 4, "depth never above capacity");

    sl__run_snapshot snap;
    cr_assert_eq(sl__run_snapshot_take(run, NULL, &snap), 0);
    cr_expect_gt(snap.stages[a].blocked_send_s, 0.0);
    cr_expect_eq(snap.stages[b].queue_capacity, 4);
    sl__run_snapshot_fini(&snap);
    sl__run_destroy(run);
}

Test(run, failure_cancels_everything)
{
    size_t a = add("src", &count_desc, NULL, -1, -1);   /* endless */
    size_t b = add("boom", &boom_desc, "every: 50", (int)a, -1);
    size_t c = add("sink", &collect_desc, NULL, (int)b, -1);
    sl__run *run = create();
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.status, SL__RUN_FAILED);
    cr_expect_eq(res.exit_code, 1);
    cr_expect_str_eq(res.cause, "stage boom: bad record 50");
    cr_expect_eq(COUNTER(run, b, errors), 1);
    cr_expect_leq(COUNTER(run, c, stored), 49);
    /* A worker that starts after the failure skips init, and so destroy. */
    cr_expect_leq(inited, 1);
    cr_expect_eq(destroyed, inited, "the sink's destroy ran if its init did");
    cr_expect_str_eq(sl_ctx_cause(sl__run_context(run)),
                     "stage boom: bad record 50");
    sl__run_destroy(run);
}

Test(run, skip_counts_and_drops)
{
    size_t a = add("src", &count_desc, "count: 100", -1, -1);
    size_t b = add("boom", &boom_desc, "every: 10", (int)a, -1);
    confs[b].on_error = SL_ON_ERROR_SKIP;
    size_t c = add("sink", &collect_desc, NULL, (int)b, -1);
    sl__run *run = create();
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.status, SL__RUN_SUCCEEDED);
    cr_expect_eq(COUNTER(run, b, records_in), 100);
    cr_expect_eq(COUNTER(run, b, records_out), 90);
    cr_expect_eq(COUNTER(run, b, errors), 10);
    cr_expect_eq(COUNTER(run, b, records_in),
                 COUNTER(run, b, records_out) + COUNTER(run, b, dropped) +
                     COUNTER(run, b, errors));
    cr_expect_eq(COUNTER(run, c, stored), 90);
    sl__run_destroy(run);
}

Test(run, dead_letter_writes_json_lines)
{
    char dl[128];
    snprintf(dl, sizeof(dl), "%s/rejects.jsonl", tmpdir);
    cfg.dead_letter.path = dl;
    size_t a = add("src", &count_desc, "count: 30", -1, -1);
    size_t b = add("boom", &boom_desc, "every: 10", (int)a, -1);
    confs[b].on_error = SL_ON_ERROR_DEAD_LETTER;
    confs[b].workers = 3;   /* several writers, one line each */
    add("sink", &collect_desc, NULL, (int)b, -1);
    sl__run *run = create();
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.status, SL__RUN_SUCCEEDED);
    cr_expect_eq(COUNTER(run, b, errors), 3);
    sl__run_destroy(run);

    FILE *f = fopen(dl, "r");
    cr_assert_not_null(f);
    char line[1024];
    int lines = 0;
    int64_t sum = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lines++;
        sl_value *v = NULL;
        cr_assert_eq(sl_json_parse(line, strlen(line), NULL, &v, NULL), 0,
                     "%s", line);
        cr_expect_str_eq(sl_value_get_string(sl_object_get(v, "stage"), NULL),
                         "boom");
        int64_t n = sl_value_get_int(
            sl_object_get(sl_object_get(v, "record"), "n"));
        char want[64];
        snprintf(want, sizeof(want), "bad record %lld", (long long)n);
        cr_expect_str_eq(sl_value_get_string(sl_object_get(v, "error"), NULL),
                         want);
        sl_value *pos = sl_object_get(v, "position");
        cr_expect_str_eq(sl_value_get_string(sl_object_get(pos, "source"), NULL),
                         "src");
        cr_expect_eq(sl_value_get_int(sl_object_get(pos, "seq")), n);
        cr_expect_eq(sl_value_get_int(sl_object_get(pos, "offset")), n * 10);
        sum += n;
        sl_value_unref(v);
    }
    fclose(f);
    cr_expect_eq(lines, 3);
    cr_expect_eq(sum, 10 + 20 + 30);
}

Test(run, rejected_held_records_meet_on_error)
{
    char dl[128];
    snprintf(dl, sizeof(dl), "%s/held.jsonl", tmpdir);
    cfg.dead_letter.path = dl;
    size_t a = add("src", &count_desc, "count: 25", -1, -1);
    size_t b = add("hold", &giveup_desc, NULL, (int)a, -1);
    confs[b].on_error = SL_ON_ERROR_DEAD_LETTER;
    sl__run *run = create();
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.status, SL__RUN_SUCCEEDED, "%s", res.cause);
    cr_expect_eq(COUNTER(run, b, records_in), 25);
    cr_expect_eq(COUNTER(run, b, errors), 25);
    cr_expect_eq(COUNTER(run, b, records_out), 0);
    sl__run_destroy(run);

    FILE *f = fopen(dl, "r");
    cr_assert_not_null(f);
    char line[1024];
    int lines = 0;
    int64_t sum = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lines++;
        sl_value *v = NULL;
        cr_assert_eq(sl_json_parse(line, strlen(line), NULL, &v, NULL), 0, "%s", line);
        cr_expect_str_eq(sl_value_get_string(sl_object_get(v, "stage"), NULL), "hold");
        int64_t n = sl_value_get_int(sl_object_get(sl_object_get(v, "record"), "n"));
        char want[64];
        snprintf(want, sizeof(want), "held %lld", (long long)n);
        cr_expect_str_eq(sl_value_get_string(sl_object_get(v, "error"), NULL), want);
        sl_value *pos = sl_object_get(v, "position");
        cr_expect_eq(sl_value_get_int(sl_object_get(pos, "seq")), n);
        sum += n;
        sl_value_unref(v);
    }
    fclose(f);
    cr_expect_eq(lines, 25);
    cr_expect_eq(sum, 25 * 26 / 2);
}

Test(run, rejected_held_records_skip_and_fail)
{
    size_t a = add("src", &count_desc, "count: 7", -1, -1);
    size_t b = add("hold", &giveup_desc, NULL, (int)a, -1);
    confs[b].on_error = SL_ON_ERROR_SKIP;
    sl__run *run = create();
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.status, SL__RUN_SUCCEEDED, "%s", res.cause);
    cr_expect_eq(COUNTER(run, b, errors), 7);
    sl__run_destroy(run);

    n_stages = 0;
    a = add("src", &count_desc, "count: 7", -1, -1);
    b = add("hold", &giveup_desc, NULL, (int)a, -1);
    confs[b].on_error = SL_ON_ERROR_RETRY;   /* falls back to fail */
    run = create();
    res = run_to_end(run);
    cr_expect_eq(res.status, SL__RUN_FAILED);
    cr_expect_eq(res.exit_code, 1);
    cr_expect(strncmp(res.cause, "stage hold: held ", 17) == 0, "%s", res.cause);
    sl__run_destroy(run);
}

Test(run, a_stage_declaring_workers_gets_one_worker)
{
    char mf[128];
    snprintf(mf, sizeof(mf), "%s/own.json", tmpdir);
    cfg.metrics.file = mf;
    size_t a = add("src", &own_desc, "workers: 4\ncount: 50", -1, -1);
    confs[a].workers = 4;
    size_t b = add("sink", &collect_desc, NULL, (int)a, -1);
    sl__run *run = create();
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.status, SL__RUN_SUCCEEDED, "%s", res.cause);
    cr_expect_eq(own_runs, 1, "one worker runs the stage");
    cr_expect_eq(own_worker_count, 1);
    cr_expect_eq(own_workers_option, 4, "the stage gets the value");
    cr_expect_eq(COUNTER(run, b, stored), 50);
    sl__run_snapshot snap;
    cr_assert_eq(sl__run_snapshot_take(run, NULL, &snap), 0);
    cr_expect_eq(snap.stages[a].workers, 4, "metrics show the concurrency given");
    cr_expect_eq(snap.stages[b].workers, 1);
    sl__run_snapshot_fini(&snap);
    sl__run_destroy(run);
}

Test(run, retry_then_succeed)
{
    sl_fake_clock fc;
    sl_fake_clock_init(&fc, 0);
    size_t a = add("src", &count_desc, "count: 20", -1, -1);
    size_t b = add("flaky", &boom_desc, "flaky: 2", (int)a, -1);
    confs[b].on_error = SL_ON_ERROR_RETRY;
    confs[b].retry.set = true;
    confs[b].retry.attempts = 3;
    confs[b].retry.backoff_ns = 100 * SL_NS_PER_MS;
    add("sink", &collect_desc, NULL, (int)b, -1);
    sl__run_opts o = {.cfg = &cfg, .n_stages = n_stages, .stages = rstages,
                      .clock = &fc.clock};
    sl__run *run = NULL;
    cr_assert_eq(sl__run_create(&o, diag, &run), 0);
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.status, SL__RUN_SUCCEEDED, "%s", res.cause);
    cr_expect_eq(COUNTER(run, b, retries), 40);
    cr_expect_eq(COUNTER(run, b, errors), 0);
    cr_expect_eq(COUNTER(run, b, records_out), 20);
    cr_expect_gt(atomic_load(&fc.slept), 0, "backoff slept on the fake clock");
    sl__run_destroy(run);
}

Test(run, retry_exhausted_fails)
{
    sl_fake_clock fc;
    sl_fake_clock_init(&fc, 0);
    size_t a = add("src", &count_desc, "count: 20", -1, -1);
    size_t b = add("flaky", &boom_desc, "flaky: 5", (int)a, -1);
    confs[b].on_error = SL_ON_ERROR_RETRY;
    confs[b].retry.set = true;
    confs[b].retry.attempts = 3;
    add("sink", &collect_desc, NULL, (int)b, -1);
    sl__run_opts o = {.cfg = &cfg, .n_stages = n_stages, .stages = rstages,
                      .clock = &fc.clock};
    sl__run *run = NULL;
    cr_assert_eq(sl__run_create(&o, diag, &run), 0);
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.exit_code, 1);
    cr_expect_str_eq(res.cause, "stage flaky: flaky on 1");
    cr_expect_eq(COUNTER(run, b, retries), 2);
    cr_expect_eq(COUNTER(run, b, errors), 1);
    sl__run_destroy(run);
}

Test(run, tee_gives_every_reader_its_own_copy)
{
    size_t a = add("src", &count_desc, "count: 500", -1, -1);
    size_t b = add("marker", &collect_desc, "mark: true", (int)a, -1);
    size_t c = add("checker", &collect_desc, "check_unmarked: true", (int)a, -1);
    sl__run *run = create();
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.status, SL__RUN_SUCCEEDED, "%s", res.cause);
    cr_expect_eq(COUNTER(run, a, records_out), 500);
    cr_expect_eq(COUNTER(run, b, stored), 500);
    cr_expect_eq(COUNTER(run, c, stored), 500);
    cr_expect_eq(stored_total, 1000);
    sl__run_destroy(run);
}

Test(run, merge_reads_every_input)
{
    size_t a = add("a", &count_desc, "count: 300", -1, -1);
    size_t b = add("b", &count_desc, "count: 200", -1, -1);
    confs[b].workers = 2;   /* two producers from one stage */
    size_t c = add("sink", &collect_desc, NULL, (int)a, (int)b);
    sl__run *run = create();
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.status, SL__RUN_SUCCEEDED);
    cr_expect_eq(COUNTER(run, b, records_out), 400, "each worker ran");
    cr_expect_eq(COUNTER(run, c, stored), 700);
    sl__run_destroy(run);
}

Test(run, ordered_workers_keep_input_order)
{
    size_t a = add("src", &count_desc, "count: 5000", -1, -1);
    size_t b = add("work", &boom_desc, "work: true", (int)a, -1);
    confs[b].workers = 4;
    confs[b].ordered = true;
    size_t c = add("sink", &collect_desc, NULL, (int)b, -1);
    sl__run *run = create();
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.status, SL__RUN_SUCCEEDED);
    cr_assert_eq(COUNTER(run, c, stored), 5000);
    cr_assert_eq(n_seen, 5000);
    for (size_t i = 0; i < n_seen; i++)
        cr_assert_eq(seen[i], (int64_t)i + 1, "position %zu holds %lld", i,
                     (long long)seen[i]);
    sl__run_destroy(run);
}

Test(run, unordered_workers_process_everything_once)
{
    size_t a = add("src", &count_desc, "count: 5000", -1, -1);
    size_t b = add("work", &boom_desc, "work: true", (int)a, -1);
    confs[b].workers = 4;
    add("sink", &collect_desc, NULL, (int)b, -1);
    sl__run *run = create();
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.status, SL__RUN_SUCCEEDED);
    cr_assert_eq(n_seen, 5000);
    static bool hit[5001];
    for (size_t i = 0; i < n_seen; i++) {
        cr_assert(seen[i] >= 1 && seen[i] <= 5000);
        cr_assert_not(hit[seen[i]], "%lld twice", (long long)seen[i]);
        hit[seen[i]] = true;
    }
    sl__run_destroy(run);
}

Test(run, graceful_stop_drains_everything)
{
    size_t a = add("src", &count_desc, NULL, -1, -1);   /* endless */
    size_t b = add("pass", &boom_desc, NULL, (int)a, -1);
    size_t c = add("sink", &collect_desc, NULL, (int)b, -1);
    sl__run *run = create();
    cr_assert_eq(sl__run_start(run), 0);
    wait_stored(1000);
    sl__run_stop(run, false);
    cr_expect(sl__run_stopping(run));
    sl__run_result res;
    cr_assert_eq(sl__run_wait(run, &res), 0);
    cr_expect_eq(res.status, SL__RUN_INTERRUPTED);
    cr_expect_eq(res.exit_code, 0);
    cr_expect_not(res.forced);
    uint64_t produced = COUNTER(run, a, records_out);
    cr_expect_geq(produced, 1000);
    cr_expect_eq(COUNTER(run, b, records_in), produced, "nothing lost");
    cr_expect_eq(COUNTER(run, c, stored), produced, "everything stored");
    cr_expect_eq(stored_total, produced);
    cr_expect_eq(rolled_back, 0);
    cr_expect_eq(sl_chan_len(sl__run_stage_input(run, b)), 0);
    cr_expect_eq(sl_chan_len(sl__run_stage_input(run, c)), 0);
    sl__run_destroy(run);
}

Test(run, forced_stop_cancels_and_rolls_back)
{
    size_t a = add("src", &count_desc, NULL, -1, -1);
    size_t b = add("sink", &collect_desc, "stuck: true", (int)a, -1);
    sl__run *run = create();
    cr_assert_eq(sl__run_start(run), 0);
    wait_records_in(run, b, 1);
    sl__run_stop(run, false);
    sl__run_stop(run, true);
    sl__run_result res;
    cr_assert_eq(sl__run_wait(run, &res), 0);
    cr_expect_eq(res.status, SL__RUN_INTERRUPTED);
    cr_expect(res.forced);
    cr_expect_eq(res.exit_code, 3);
    cr_expect_str_eq(res.cause, "forced stop");
    cr_expect_eq(stored_total, 0);
    cr_expect_eq(destroyed, 1);
    sl__run_destroy(run);
}

Test(run, shutdown_timeout_forces_the_stop)
{
    cfg.settings.shutdown_timeout_ns = 20 * SL_NS_PER_MS;
    size_t a = add("src", &count_desc, NULL, -1, -1);
    size_t b = add("sink", &collect_desc, "stuck: true", (int)a, -1);
    sl__run *run = create();
    cr_assert_eq(sl__run_start(run), 0);
    wait_records_in(run, b, 1);
    sl__run_stop(run, false);
    sl__run_result res;
    cr_assert_eq(sl__run_wait(run, &res), 0);
    cr_expect_eq(res.exit_code, 3);
    cr_expect(res.forced);
    cr_expect_str_eq(res.cause, "shutdown timeout (20ms) exceeded");
    sl__run_destroy(run);
}

Test(run, deadline_fails_the_run)
{
    cfg.settings.deadline_ns = 30 * SL_NS_PER_MS;
    size_t a = add("src", &count_desc, NULL, -1, -1);
    add("sink", &collect_desc, "stuck: true", (int)a, -1);
    sl__run *run = create();
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.status, SL__RUN_FAILED);
    cr_expect_eq(res.exit_code, 1);
    cr_expect_str_eq(res.cause, "deadline exceeded (30ms)");
    cr_expect_eq(sl_ctx_err(sl__run_context(run)), SL_EDEADLINE);
    sl__run_destroy(run);
}

Test(run, stall_watch_fails_a_stuck_stage)
{
    cfg.settings.stall_timeout_ns = 40 * SL_NS_PER_MS;
    cfg.settings.on_stall = SL_ON_STALL_FAIL;
    size_t a = add("src", &count_desc, "count: 10", -1, -1);
    add("sink", &collect_desc, "stuck: true", (int)a, -1);
    sl__run *run = create();
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.exit_code, 1);
    cr_expect(strncmp(res.cause, "stage sink: stalled in process() for ", 37) == 0,
              "%s", res.cause);
    sl__run_destroy(run);
}

Test(run, init_failure_fails_the_run)
{
    size_t a = add("src", &count_desc, NULL, -1, -1);
    add("bad", &refuse_desc, NULL, (int)a, -1);
    sl__run *run = create();
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.exit_code, 1);
    cr_expect_str_eq(res.cause, "stage bad: cannot open the thing");
    cr_expect_eq(destroyed, 1, "destroy runs after a failed init");
    sl__run_destroy(run);
}

Test(run, wiring_errors)
{
    size_t a = add("src", &count_desc, NULL, -1, -1);
    size_t b = add("sink", &collect_desc, NULL, (int)a, -1);
    size_t c = add("after_sink", &boom_desc, NULL, (int)b, -1);
    size_t d = add("orphan", &collect_desc, NULL, -1, -1);
    add("src2", &count_desc, NULL, (int)a, -1);
    confs[c].on_error = SL_ON_ERROR_DEAD_LETTER;
    (void)d;
    sl__run_opts o = {.cfg = &cfg, .n_stages = n_stages, .stages = rstages};
    sl__run *run = NULL;
    cr_expect_eq(sl__run_create(&o, diag, &run), SL_ECONFIG);
    cr_expect_null(run);
    const char *want[] = {
        "stage after_sink: cannot read from sink, a sink",
        "stage after_sink: on_error: dead_letter needs dead_letter.path",
        "stage orphan: a collect stage needs an input",
        "stage src2: a count stage takes no input",
    };
    for (size_t k = 0; k < 4; k++) {
        bool found = false;
        for (size_t i = 0; i < sl__diag_count(diag); i++)
            if (strstr(sl__diag_message(diag, i), want[k]) != NULL)
                found = true;
        cr_expect(found, "missing: %s", want[k]);
    }
}

Test(run, cycles_are_refused)
{
    size_t a = add("x", &boom_desc, NULL, 1, -1);
    add("y", &boom_desc, NULL, (int)a, -1);
    sl__run_opts o = {.cfg = &cfg, .n_stages = n_stages, .stages = rstages};
    sl__run *run = NULL;
    cr_expect_eq(sl__run_create(&o, diag, &run), SL_ECONFIG);
    cr_expect_eq(sl__diag_count(diag), 1);
    cr_expect(strstr(sl__diag_message(diag, 0), "form a cycle") != NULL);
}

Test(run, bad_options_are_config_errors)
{
    size_t a = add("src", &count_desc, "cuont: 5", -1, -1);
    add("sink", &collect_desc, NULL, (int)a, -1);
    sl__run_opts o = {.cfg = &cfg, .n_stages = n_stages, .stages = rstages};
    sl__run *run = NULL;
    cr_expect_eq(sl__run_create(&o, diag, &run), SL_ECONFIG);
    cr_expect_geq(sl__diag_count(diag), 1);
    cr_expect(strstr(sl__diag_message(diag, 0), "cuont") != NULL, "%s",
              sl__diag_message(diag, 0));
}

Test(run, snapshot_json_and_dump)
{
    size_t a = add("src", &count_desc, "count: 10", -1, -1);
    add("sink", &collect_desc, NULL, (int)a, -1);
    sl__run *run = create();
    sl__run_result res = run_to_end(run);
    cr_expect_eq(res.status, SL__RUN_SUCCEEDED);
    sl__run_snapshot snap;
    cr_assert_eq(sl__run_snapshot_take(run, NULL, &snap), 0);
    snap.status = res.status;
    sl_buf b;
    sl_buf_init(&b);
    cr_assert_eq(sl__run_snapshot_json(&snap, &b), 0);
    cr_expect(strncmp(b.data, "{\"pipeline\":\"test\",\"status\":\"succeeded\","
                      "\"elapsed_s\":", 52) == 0, "%s", b.data);
    sl_buf_fini(&b);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    sl__run_snapshot_print_table(&snap, f);
    sl__run_dump(run, f);
    fclose(f);
    cr_expect(strstr(text, "src ") != NULL);
    cr_expect(strstr(text, "test succeeded in") != NULL, "%s", text);
    cr_expect(strstr(text, "stage sink (collect, sink) queue 0/16 closed") != NULL,
              "%s", text);
    cr_expect(strstr(text, "worker 0: done") != NULL, "%s", text);
    free(text);
    sl__run_snapshot_fini(&snap);
    sl__run_destroy(run);
}

Test(run, format_duration)
{
    char b[32];
    sl__format_duration(10 * 60 * SL_NS_PER_S, b, sizeof(b));
    cr_expect_str_eq(b, "10m");
    sl__format_duration(1500 * SL_NS_PER_MS, b, sizeof(b));
    cr_expect_str_eq(b, "1.5s");
    sl__format_duration(250 * SL_NS_PER_MS, b, sizeof(b));
    cr_expect_str_eq(b, "250ms");
    sl__format_duration(3600 * SL_NS_PER_S, b, sizeof(b));
    cr_expect_str_eq(b, "1h");
    sl__format_duration(0, b, sizeof(b));
    cr_expect_str_eq(b, "0s");
}
