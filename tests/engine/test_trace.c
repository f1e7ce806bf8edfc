/*
 * The activity trace: span merging and the resolution bound on hand-made
 * timelines (the worker hooks take times as arguments, so no clock is
 * involved), the JSON the file holds, and a traced run end to end.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/diag.h"
#include "engine/run.h"
#include "engine/trace.h"
#include "sluice/error.h"
#include "sluice/plugin.h"

static char dir[64];
static char path[128];

static void setup(void)
{
    strcpy(dir, "/tmp/sluice-trace-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/trace.json", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

TestSuite(trace, .init = setup, .fini = teardown, .timeout = 60);

/* The file parsed, or a failed test. */
static sl_value *load(void)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    sl_value *v = NULL;
    cr_assert_eq(sl_json_parse(buf, (size_t)len, NULL, &v, NULL), 0,
                 "not JSON: %.400s", buf);
    free(buf);
    return v;
}

static const char *str(const sl_value *o, const char *key)
{
    const char *s = sl_value_get_string(sl_object_get(o, key), NULL);
    return s != NULL ? s : "";
}

static double num(const sl_value *o, const char *key)
{
    return sl_value_get_double(sl_object_get(o, key));
}

#define US (SL_NS_PER_US)

/* ------------------------------------------------------------------ */

Test(trace, long_waits_are_spans_of_their_own_short_ones_merge)
{
    sl__trace *tr = NULL;
    char err[256];
    cr_assert_eq(sl__trace_create(path, "p\"q", err, sizeof(err), &tr), 0);
    sl__trace_worker *tw = sl__trace_add_worker(tr, "map", 0);
    cr_assert_not_null(tw);
    sl__trace_start(tr, 1000 * US);
    sl__trace_worker_begin(tw, 1000 * US);
    /* busy 1000..1500, blocked 1500..3500: both long enough */
    sl__trace_wait(tw, SL__TRACE_BLOCKED, 1500 * US, 3500 * US);
    /* many short busy/idle pieces: 10 x (10 us busy + 20 us idle) */
    int64_t t = 3500 * US;
    for (int i = 0; i < 10; i++) {
        sl__trace_wait(tw, SL__TRACE_IDLE, t + 10 * US, t + 30 * US);
        t += 30 * US;
    }
    /* idle for a long time */
    sl__trace_wait(tw, SL__TRACE_IDLE, t, t + 5000 * US);
    sl__trace_worker_end(tw, t + 5100 * US);
    cr_assert_eq(sl__trace_finish(tr, t + 5100 * US, "succeeded", ""), 0);
    sl__trace_destroy(tr);

    sl_value *v = load();
    cr_expect_str_eq(str(sl_object_get(v, "otherData"), "pipeline"), "p\"q");
    sl_value *evs = sl_object_get(v, "traceEvents");
    size_t n = sl_array_len(evs);
    double spans[8][2];
    const char *names[8];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        sl_value *e = sl_array_get(evs, i);
        if (strcmp(str(e, "ph"), "X") != 0)
            continue;
        cr_assert_lt(k, 8);
        cr_expect_eq(num(e, "tid"), 1);
        names[k] = str(e, "name");
        spans[k][0] = num(e, "ts");
        spans[k][1] = num(e, "dur");
        k++;
    }
    /* busy [0,500), blocked [500,2500), then the short pieces: the first
     * seven (210 us) fill a window, the other three (90 us) are folded
     * into the long idle that follows; the last busy 100 us */
    cr_assert_eq(k, 5, "%zu spans", k);
    cr_expect_str_eq(names[0], "busy");
    cr_expect_float_eq(spans[0][0], 0.0, 1e-6);
    cr_expect_float_eq(spans[0][1], 500.0, 1e-6);
    cr_expect_str_eq(names[1], "blocked");
    cr_expect_float_eq(spans[1][0], 500.0, 1e-6);
    cr_expect_float_eq(spans[1][1], 2000.0, 1e-6);
    cr_expect_str_eq(names[2], "idle");
    cr_expect_float_eq(spans[2][0], 2500.0, 1e-6);
    cr_expect_float_eq(spans[2][1], 210.0, 1e-6);
    cr_expect_str_eq(names[3], "idle");
    cr_expect_float_eq(spans[3][0], 2710.0, 1e-6);
    cr_expect_float_eq(spans[3][1], 5090.0, 1e-6);
    cr_expect_str_eq(names[4], "busy");
    cr_expect_float_eq(spans[4][0], 7800.0, 1e-6);
    cr_expect_float_eq(spans[4][1], 100.0, 1e-6);
    /* the merged window says what it holds */
    for (size_t i = 0; i < n; i++) {
        sl_value *e = sl_array_get(evs, i);
        if (strcmp(str(e, "ph"), "X") == 0 && num(e, "ts") == 2500.0) {
            sl_value *args = sl_object_get(e, "args");
            cr_expect(sl_value_get_bool(sl_object_get(args, "merged")));
            cr_expect_float_eq(num(args, "busy_us"), 70.0, 1e-6);
            cr_expect_float_eq(num(args, "idle_us"), 140.0, 1e-6);
        }
    }
    /* the track is named, the end instant carries the status */
    bool named = false, ended = false;
    for (size_t i = 0; i < n; i++) {
        sl_value *e = sl_array_get(evs, i);
        if (strcmp(str(e, "name"), "thread_name") == 0)
            named = strcmp(str(sl_object_get(e, "args"), "name"), "map #0") == 0;
        if (strcmp(str(e, "name"), "end") == 0)
            ended = strcmp(str(sl_object_get(e, "args"), "status"),
                           "succeeded") == 0;
    }
    cr_expect(named);
    cr_expect(ended);
    sl_value_unref(v);
}

Test(trace, spans_cover_the_timeline_and_the_resolution_doubles)
{
    sl__trace *tr = NULL;
    char err[256];
    cr_assert_eq(sl__trace_create(path, "bound", err, sizeof(err), &tr), 0);
    sl__trace_worker *tw = sl__trace_add_worker(tr, "s", 0);
    sl__trace_start(tr, 0);
    sl__trace_worker_begin(tw, 0);
    /* 4 million batches of 1 us busy, 1 us blocked, 1 us idle: 12 s of
     * activity, 8 million short pieces */
    int64_t t = 0;
    const int batches = 4 * 1000 * 1000;
    for (int i = 0; i < batches; i++) {
        sl__trace_wait(tw, SL__TRACE_BLOCKED, t + 1 * US, t + 2 * US);
        sl__trace_wait(tw, SL__TRACE_IDLE, t + 2 * US, t + 3 * US);
        t += 3 * US;
    }
    sl__trace_worker_end(tw, t);
    cr_assert_eq(sl__trace_finish(tr, t, "succeeded", ""), 0);
    uint64_t events = sl__trace_events(tr);
    sl__trace_destroy(tr);
    /* 12 s at 200 us doubling every 8192 spans: levels of 1.6 s, 3.3 s,
     * 6.6 s, 13 s, so 4 levels cover it: at most 4 x 8192 spans, where
     * one span per piece would be 8 million. */
    cr_expect_leq(events, 4 * SL__TRACE_LEVEL_SPANS, "%llu events",
                  (unsigned long long)events);
    cr_expect_geq(events, 3 * SL__TRACE_LEVEL_SPANS);

    sl_value *v = load();
    sl_value *evs = sl_object_get(v, "traceEvents");
    double end = 0, covered = 0;
    for (size_t i = 0; i < sl_array_len(evs); i++) {
        sl_value *e = sl_array_get(evs, i);
        if (strcmp(str(e, "ph"), "X") != 0)
            continue;
        cr_assert_float_eq(num(e, "ts"), end, 1e-3, "spans are contiguous");
        end = num(e, "ts") + num(e, "dur");
        covered += num(e, "dur");
    }
    cr_expect_float_eq(covered, (double)t / 1000.0, 1e-3);
    sl_value_unref(v);
}

Test(trace, errors_are_rate_limited_and_counted)
{
    sl__trace *tr = NULL;
    char err[256];
    cr_assert_eq(sl__trace_create(path, "e", err, sizeof(err), &tr), 0);
    sl__trace_worker *tw = sl__trace_add_worker(tr, "parse", 0);
    sl__trace_start(tr, 0);
    sl__trace_worker_begin(tw, 0);
    for (int i = 0; i < 100; i++)   /* 100 errors within 100 us */
        sl__trace_error(tw, (i + 1) * US, "bad JSON");
    sl__trace_error(tw, 1000 * US, "bad \"quote\"\n");
    sl__trace_worker_end(tw, 2000 * US);
    cr_assert_eq(sl__trace_finish(tr, 2000 * US, "failed", "stage parse: x"),
                 0);
    sl__trace_destroy(tr);
    sl_value *v = load();
    sl_value *evs = sl_object_get(v, "traceEvents");
    int errors = 0;
    double counted = 0;
    for (size_t i = 0; i < sl_array_len(evs); i++) {
        sl_value *e = sl_array_get(evs, i);
        if (strcmp(str(e, "name"), "error") != 0)
            continue;
        errors++;
        counted += num(sl_object_get(e, "args"), "count");
        if (errors == 2)
            cr_expect_str_eq(str(sl_object_get(e, "args"), "detail"),
                             "bad \"quote\"\n");
    }
    cr_expect_eq(errors, 2);
    cr_expect_float_eq(counted, 101.0, 1e-9, "the skipped ones are counted");
    sl_value_unref(v);
}

Test(trace, an_unwritable_path_is_an_error)
{
    sl__trace *tr = NULL;
    char err[256] = "";
    cr_expect_eq(sl__trace_create("/nonexistent/dir/t.json", "x", err,
                                  sizeof(err), &tr), SL_EIO);
    cr_expect_null(tr);
    cr_expect(strstr(err, "cannot open trace file /nonexistent/dir/t.json") !=
              NULL, "%s", err);
    sl__trace_destroy(NULL);
}

/* ------------------------------------------------------------------ */
/* A traced run                                                        */
/* ------------------------------------------------------------------ */

static int gen_run(void *state, sl_stage_ctx *sc)
{
    (void)state;
    for (int64_t i = 1; i <= 5000; i++) {
        sl_record *r = sl_record_new();
        sl_record_set(r, "n", sl_value_int(i));
        int rc = sl_emit(sc, r);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const sl_stage_desc gen_desc = {
    SL_STAGE_DESC_HEADER, .name = "gen", .kind = SL_STAGE_SOURCE,
    .state_size = 1, .run = gen_run,
};

static int drop_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    (void)state;
    sl_record_stored(sc, rec);
    return 0;
}

static const sl_stage_desc drop_desc = {
    SL_STAGE_DESC_HEADER, .name = "drop", .kind = SL_STAGE_SINK,
    .state_size = 1, .process = drop_process,
};

Test(trace, a_run_writes_tracks_counters_and_the_end)
{
    sl_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.file = "t.yaml";
    cfg.name = "traced";
    cfg.settings.channel_capacity = 8;
    cfg.settings.shutdown_timeout_ns = 30 * SL_NS_PER_S;
    cfg.metrics.interval_ns = SL_NS_PER_S;
    sl_stage_conf confs[2];
    memset(confs, 0, sizeof(confs));
    confs[0] = (sl_stage_conf){.name = "gen", .type = "gen", .desc = &gen_desc,
                               .workers = 1};
    confs[1] = (sl_stage_conf){.name = "out", .type = "drop",
                               .desc = &drop_desc, .workers = 2};
    size_t in1 = 0;
    sl__run_stage st[2] = {{.conf = &confs[0]},
                           {.conf = &confs[1], .n_inputs = 1, .inputs = &in1}};
    sl_diag *diag = sl__diag_create();
    sl__run_opts o = {.cfg = &cfg, .n_stages = 2, .stages = st,
                      .trace_path = path};
    sl__run *run = NULL;
    cr_assert_eq(sl__run_create(&o, diag, &run), 0);
    sl__run_result res;
    cr_assert_eq(sl__run_start(run), 0);
    cr_assert_eq(sl__run_wait(run, &res), 0);
    cr_expect_eq(res.exit_code, 0);
    sl__run_destroy(run);
    sl__diag_destroy(diag);

    sl_value *v = load();
    sl_value *evs = sl_object_get(v, "traceEvents");
    int tracks = 0, counters = 0, spans = 0;
    bool end = false;
    for (size_t i = 0; i < sl_array_len(evs); i++) {
        sl_value *e = sl_array_get(evs, i);
        const char *ph = str(e, "ph");
        if (strcmp(str(e, "name"), "thread_name") == 0)
            tracks++;
        if (strcmp(ph, "C") == 0) {
            cr_expect_str_eq(str(e, "name"), "queue out");
            cr_expect_not_null(sl_object_get(sl_object_get(e, "args"), "depth"));
            counters++;
        }
        if (strcmp(ph, "X") == 0)
            spans++;
        if (strcmp(str(e, "name"), "end") == 0)
            end = true;
    }
    cr_expect_eq(tracks, 3, "gen #0, out #0, out #1");
    cr_expect_geq(counters, 1);
    cr_expect_geq(spans, 3);
    cr_expect(end);
    sl_value_unref(v);
}

Test(trace, a_bad_trace_path_fails_the_run_set_up)
{
    sl_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.file = "t.yaml";
    cfg.name = "traced";
    sl_stage_conf c = {.name = "gen", .type = "gen", .desc = &gen_desc,
                       .workers = 1};
    sl_stage_conf c2 = {.name = "out", .type = "drop", .desc = &drop_desc,
                        .workers = 1};
    size_t in1 = 0;
    sl__run_stage st[2] = {{.conf = &c},
                           {.conf = &c2, .n_inputs = 1, .inputs = &in1}};
    sl_diag *diag = sl__diag_create();
    sl__run_opts o = {.cfg = &cfg, .n_stages = 2, .stages = st,
                      .trace_path = "/nonexistent/dir/t.json"};
    sl__run *run = NULL;
    cr_expect_eq(sl__run_create(&o, diag, &run), SL_EIO);
    cr_expect_null(run);
    cr_assert_eq(sl__diag_count(diag), 1);
    cr_expect(strstr(sl__diag_message(diag, 0), "--trace: cannot open trace "
                                                "file /nonexistent/dir/t.json")
                  != NULL, "%s", sl__diag_message(diag, 0));
    sl__diag_destroy(diag);
}
