/*
 * The stage harness and the engine side of the stage API (stage_ctx.c),
 * driven with small stage descriptors defined here.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "engine/harness.h"
#include "engine/stage_ctx.h"
#include "sluice/error.h"
#include "sluice/plugin.h"

/* ------------------------------------------------------------------ */
/* A transform: "tag" sets field `tag` to its option and drops records  */
/* whose payload is "drop"; payload "fail" fails.                       */
/* ------------------------------------------------------------------ */

typedef struct tag_state {
    char *tag;
    int64_t limit;
    bool loud;
    int inits;
} tag_state;

static const sl_option tag_options[] = {
    {SL_OPT_STRING, "tag", NULL, SL_OPT_REQUIRED, offsetof(tag_state, tag),
     0, 0, NULL, "value for the tag field"},
    {SL_OPT_INT, "limit", "10", 0, offsetof(tag_state, limit), 1, 100, NULL,
     "records before failing"},
    {SL_OPT_BOOL, "loud", "false", 0, offsetof(tag_state, loud), 0, 0, NULL,
     "log each record"},
    SL_OPTIONS_END,
};

static _Atomic int tag_destroyed;

static int tag_init(void *state, sl_stage_ctx *sc)
{
    tag_state *st = state;
    st->inits++;
    if (strcmp(st->tag, "refuse") == 0)
        return sl_stage_error(sc, SL_ECONFIG, "tag 'refuse' is refused");
    return 0;
}

static int tag_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    tag_state *st = state;
    size_t len;
    const char *p = sl_record_payload(rec, &len);
    if (len == 4 && memcmp(p, "drop", 4) == 0) {
        sl_record_drop(sc, rec);
        return 0;
    }
    if (len == 4 && memcmp(p, "fail", 4) == 0)
        return sl_stage_error(sc, SL_EPARSE, "cannot handle '%.*s'", (int)len,
                              p);
    if (len == 5 && memcmp(p, "quiet", 5) == 0)
        return SL_EIO;   /* no message: the engine uses sl_strerror */
    if (st->loud)
        sl_stage_log(sc, SL_LOG_DEBUG, "record %.*s", (int)len, p);
    int rc = sl_record_set(rec, "tag", sl_value_cstring(st->tag));
    if (rc != 0) {
        sl_record_free(rec);
        return 0;
    }
    return sl_emit(sc, rec);
}

static void tag_destroy(void *state)
{
    (void)state;
    atomic_fetch_add(&tag_destroyed, 1);
}

static const sl_stage_desc tag_desc = {
    SL_STAGE_DESC_HEADER,
    .name = "tag",
    .kind = SL_STAGE_TRANSFORM,
    .summary = "set a tag field",
    .options = tag_options,
    .state_size = sizeof(tag_state),
    .init = tag_init,
    .process = tag_process,
    .destroy = tag_destroy,
};

/* ------------------------------------------------------------------ */
/* A sink that holds records until flush() commits them.               */
/* ------------------------------------------------------------------ */

typedef struct hold_state {
    sl_record *held[16];
    int n;
    int flushes;
} hold_state;

static int hold_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    hold_state *st = state;
    if (st->n == 16)
        return sl_stage_error(sc, SL_ELIMIT, "batch full");
    st->held[st->n++] = rec;
    return 0;
}

static int hold_flush(void *state, sl_stage_ctx *sc)
{
    hold_state *st = state;
    st->flushes++;
    for (int i = 0; i < st->n; i++)
        sl_record_stored(sc, st->held[i]);
    st->n = 0;
    return 0;
}

static void hold_destroy(void *state)
{
    hold_state *st = state;
    for (int i = 0; i < st->n; i++)
        sl_record_free(st->held[i]);
}

static const sl_stage_desc hold_desc = {
    SL_STAGE_DESC_HEADER,
    .name = "hold",
    .kind = SL_STAGE_SINK,
    .summary = "store on flush",
    .state_size = sizeof(hold_state),
    .process = hold_process,
    .flush = hold_flush,
    .destroy = hold_destroy,
};

/* A sink that (wrongly) emits. */
static int emitting_sink_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    return sl_emit(sc, rec);
}

static const sl_stage_desc emitting_sink_desc = {
    SL_STAGE_DESC_HEADER,
    .name = "emitting_sink",
    .kind = SL_STAGE_SINK,
    .state_size = 0,
    .process = emitting_sink_process,
};

/* ------------------------------------------------------------------ */
/* Sources                                                             */
/* ------------------------------------------------------------------ */

typedef struct count_state {
    int64_t count;   /* 0: until stopped, then wait for the stop */
    int emitted;
    int last_rc;
} count_state;

static const sl_option count_options[] = {
    {SL_OPT_INT, "count", "3", 0, offsetof(count_state, count), 0, 0, NULL,
     "records to emit"},
    SL_OPTIONS_END,
};

static int count_run(void *state, sl_stage_ctx *sc)
{
    count_state *st = state;
    if (st->count == 0) {
        /* Wait until asked to stop: no polling, the context wakes us. */
        sl_ctx_wait(sl_stage_source_context(sc), INT64_MAX);
        return sl_stage_stopping(sc) ? 0 : SL_EINTERNAL;
    }
    for (int64_t i = 1; i <= st->count && !sl_stage_stopping(sc); i++) {
        sl_record *r = sl_record_new();
        sl_record_set_position(r, sl_stage_name(sc), NULL, -1, i);
        sl_record_set(r, "n", sl_value_int(i));
        sl_stage_count_bytes_in(sc, 8);
        st->last_rc = sl_emit(sc, r);
        if (st->last_rc != 0)
            return st->last_rc;
        st->emitted++;
    }
    return 0;
}

static const sl_stage_desc count_desc = {
    SL_STAGE_DESC_HEADER,
    .name = "count",
    .kind = SL_STAGE_SOURCE,
    .summary = "count",
    .options = count_options,
    .state_size = sizeof(count_state),
    .run = count_run,
};

/* ------------------------------------------------------------------ */

static const char *payload_of(sl_record *r)
{
    static char buf[64];
    size_t len;
    const char *p = sl_record_payload(r, &len);
    snprintf(buf, sizeof(buf), "%.*s", (int)len, p ? p : "");
    return buf;
}

Test(harness, transform_emits_drops_and_fails)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&tag_desc, "tag: blue", &h), 0);
    cr_assert_str_eq(sl_harness_config_error(h), "");
    cr_assert_eq(sl_harness_init(h), 0);
    tag_state *st = sl_harness_state(h);
    cr_expect_str_eq(st->tag, "blue");
    cr_expect_eq(st->limit, 10, "default applied");
    cr_expect_eq(st->inits, 1);

    cr_assert_eq(sl_harness_process_text(h, "a"), 0);
    cr_assert_eq(sl_harness_process_text(h, "drop"), 0);
    cr_assert_eq(sl_harness_process_text(h, "fail"), SL_EPARSE);
    cr_expect_str_eq(sl_harness_last_error(h), "cannot handle 'fail'");
    cr_assert_eq(sl_harness_process_text(h, "quiet"), SL_EIO);
    cr_expect_str_eq(sl_harness_last_error(h), sl_strerror(SL_EIO));
    cr_assert_eq(sl_harness_process_text(h, "b"), 0);

    cr_assert_eq(sl_harness_emitted_count(h), 2);
    sl_record *r = sl_harness_emitted(h, 1);
    cr_expect_str_eq(payload_of(r), "b");
    cr_expect_str_eq(sl_value_get_string(sl_record_get(r, "tag"), NULL), "blue");
    cr_expect_null(sl_harness_emitted(h, 2));
    cr_expect_eq(sl_harness_dropped_count(h), 1);
    cr_expect_eq(sl_harness_error_count(h), 2);
    cr_assert_eq(sl_harness_failed_count(h), 2);
    cr_expect_str_eq(payload_of(sl_harness_failed(h, 0)), "fail");
    cr_expect_eq(sl_harness_stored_count(h), 0);
    cr_expect_eq(sl_harness_flush(h), 0, "no flush callback is fine");
    sl_harness_destroy(h);
}

Test(harness, process_json_sets_fields)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&tag_desc, "{tag: x, limit: 5}", &h), 0);
    cr_assert_eq(sl_harness_init(h), 0);
    cr_assert_eq(sl_harness_process_json(h, "{\"a\": 1, \"b\": \"two\"}"), 0);
    cr_assert_eq(sl_harness_emitted_count(h), 1);
    sl_record *r = sl_harness_emitted(h, 0);
    cr_expect_eq(sl_value_get_int(sl_record_get(r, "a")), 1);
    cr_expect_str_eq(sl_value_get_string(sl_record_get(r, "tag"), NULL), "x");
    cr_expect_eq(sl_harness_process_json(h, "{not json"), SL_EPARSE);
    cr_expect_eq(sl_harness_emitted_count(h), 1);
    sl_harness_destroy(h);
}

Test(harness, config_errors)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&tag_desc, "tga: blue", &h), SL_ECONFIG);
    cr_assert_not_null(h, "harness still returned for the message");
    cr_expect_not_null(strstr(sl_harness_config_error(h), "tga"),
                       "message names the key: %s", sl_harness_config_error(h));
    cr_expect_eq(sl_harness_init(h), SL_EINVAL);
    sl_harness_destroy(h);

    h = NULL;
    cr_assert_eq(sl_harness_create(&tag_desc, NULL, &h), SL_ECONFIG,
                 "missing required option");
    cr_expect_not_null(strstr(sl_harness_config_error(h), "tag"));
    sl_harness_destroy(h);

    h = NULL;
    cr_assert_eq(sl_harness_create(&tag_desc, "{tag: a, limit: 1000}", &h),
                 SL_ECONFIG, "out of range");
    sl_harness_destroy(h);

    h = NULL;
    cr_assert_eq(sl_harness_create(&hold_desc, "x: 1", &h), SL_ECONFIG,
                 "a stage without options takes none");
    cr_expect_str_eq(sl_harness_config_error(h),
                     "<options>: stage takes no options");
    sl_harness_destroy(h);

    cr_expect_eq(sl_harness_create(NULL, NULL, &h), SL_EINVAL);
}

Test(harness, destroy_runs_even_after_failed_init)
{
    atomic_store(&tag_destroyed, 0);
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&tag_desc, "tag: refuse", &h), 0);
    cr_expect_eq(sl_harness_init(h), SL_ECONFIG);
    cr_expect_str_eq(sl_harness_last_error(h), "tag 'refuse' is refused");
    cr_expect_eq(sl_harness_process_text(h, "a"), SL_EINVAL);
    cr_expect_eq(sl_harness_init(h), SL_EINVAL, "init runs once");
    sl_harness_destroy(h);
    cr_expect_eq(atomic_load(&tag_destroyed), 1);

    /* Never initialised: destroy() is not owed. */
    atomic_store(&tag_destroyed, 0);
    cr_assert_eq(sl_harness_create(&tag_desc, "tag: a", &h), 0);
    sl_harness_destroy(h);
    cr_expect_eq(atomic_load(&tag_destroyed), 0);
    sl_harness_destroy(NULL);
}

Test(harness, sink_stores_on_flush)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&hold_desc, NULL, &h), 0);
    cr_assert_eq(sl_harness_init(h), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sl_harness_process_text(h, "row"), 0);
    cr_expect_eq(sl_harness_stored_count(h), 0);
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_expect_eq(sl_harness_stored_count(h), 3);
    cr_expect_eq(sl_harness_emitted_count(h), 0);
    /* held but never flushed: destroy() frees them (ASan checks) */
    cr_assert_eq(sl_harness_process_text(h, "row"), 0);
    sl_harness_destroy(h);
}

Test(harness, sink_may_not_emit)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&emitting_sink_desc, NULL, &h), 0);
    cr_assert_eq(sl_harness_init(h), 0);
    cr_expect_eq(sl_harness_process_text(h, "x"), SL_EINVAL);
    /* sl_emit took the record even though it refused it: the failure is
     * counted, but the record is not kept (it is gone) */
    cr_expect_eq(sl_harness_emitted_count(h), 0);
    cr_expect_eq(sl_harness_error_count(h), 1);
    cr_expect_eq(sl_harness_failed_count(h), 0);
    sl_harness_destroy(h);
}

Test(harness, source_runs_to_count)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&count_desc, "count: 5", &h), 0);
    cr_assert_eq(sl_harness_init(h), 0);
    cr_expect_eq(sl_harness_process_text(h, "x"), SL_EINVAL,
                 "a source has no process()");
    cr_assert_eq(sl_harness_run(h), 0);
    cr_assert_eq(sl_harness_emitted_count(h), 5);
    const sl_position *pos = sl_record_position(sl_harness_emitted(h, 4));
    cr_expect_str_eq(pos->source, "test");
    cr_expect_eq(pos->seq, 5);
    cr_expect_eq(sl_harness_bytes_in(h), 40);
    sl_harness_destroy(h);
}

static void *run_thread(void *arg)
{
    sl_harness *h = arg;
    return (void *)(intptr_t)sl_harness_run(h);
}

Test(harness, stop_wakes_a_waiting_source)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&count_desc, "count: 0", &h), 0);
    cr_assert_eq(sl_harness_init(h), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, run_thread, h), 0);
    sl_harness_stop(h);
    void *res;
    pthread_join(t, &res);
    cr_expect_eq((int)(intptr_t)res, 0);
    cr_expect_eq(sl_ctx_is_done(sl_harness_context(h)), false,
                 "stopping sources leaves the run context alive");
    sl_harness_destroy(h);
}

Test(harness, cancel_makes_emit_fail)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&count_desc, "count: 5", &h), 0);
    cr_assert_eq(sl_harness_init(h), 0);
    sl_harness_cancel(h, "test over");
    cr_expect_eq(sl_harness_run(h), 0, "a stopping source returns 0");
    cr_expect_eq(sl_harness_emitted_count(h), 0);
    cr_expect_str_eq(sl_ctx_cause(sl_harness_context(h)), "test over");
    sl_harness_destroy(h);
}

/* A source that ignores sl_stage_stopping sees SL_ECANCELED from emit. */
static int stubborn_run(void *state, sl_stage_ctx *sc)
{
    return sl_emit(sc, sl_record_new());
}

static const sl_stage_desc stubborn_desc = {
    SL_STAGE_DESC_HEADER,
    .name = "stubborn",
    .kind = SL_STAGE_SOURCE,
    .run = stubborn_run,
};

Test(harness, emit_after_cancel_is_canceled)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&stubborn_desc, NULL, &h), 0);
    cr_assert_eq(sl_harness_init(h), 0);
    sl_harness_cancel(h, NULL);
    cr_expect_eq(sl_harness_run(h), SL_ECANCELED);
    cr_expect_eq(sl_harness_emitted_count(h), 0);
    sl_harness_destroy(h);
}

/* ------------------------------------------------------------------ */
/* stage_ctx pieces: histogram, log levels                             */
/* ------------------------------------------------------------------ */

Test(stage_ctx, histogram_buckets_cover_the_range)
{
    for (int i = 0; i < SL__HIST_BUCKETS - 1; i++) {
        cr_assert_eq(sl__hist_bucket_high(i) + 1, sl__hist_bucket_low(i + 1),
                     "bucket %d adjoins the next", i);
        cr_assert_eq(sl__hist_bucket(sl__hist_bucket_low(i)), i);
        cr_assert_eq(sl__hist_bucket(sl__hist_bucket_high(i)), i);
    }
    cr_expect_eq(sl__hist_bucket(-5), 0);
    cr_expect_eq(sl__hist_bucket(INT64_MAX), SL__HIST_BUCKETS - 1);
    cr_expect_eq(sl__hist_bucket_high(SL__HIST_BUCKETS - 1), INT64_MAX);
}

Test(stage_ctx, histogram_quantiles)
{
    static sl__hist h;  /* zeroed */
    for (int i = 1; i <= 1000; i++)
        sl__hist_record(&h, (int64_t)i * 1000);   /* 1us .. 1ms */
    static sl__hist_sum sum;
    sl__hist_accumulate(&sum, &h);
    cr_expect_eq(sum.count, 1000);
    cr_expect_eq(sum.max_ns, 1000000);
    int64_t p50 = sl__hist_quantile(&sum, 0.5);
    int64_t p99 = sl__hist_quantile(&sum, 0.99);
    cr_expect(p50 >= 500000 && p50 <= 500000 * 1.125, "p50 %ld", (long)p50);
    cr_expect(p99 >= 990000 && p99 <= 1000000, "p99 %ld", (long)p99);
    cr_expect_eq(sl__hist_quantile(&sum, 1.0), 1000000);

    static sl__hist_sum empty;
    cr_expect_eq(sl__hist_quantile(&empty, 0.5), 0);
}

Test(stage_ctx, log_levels)
{
    sl_log_level l;
    cr_expect_eq(sl__log_parse_level("debug", &l), 0);
    cr_expect_eq(l, SL_LOG_DEBUG);
    cr_expect_eq(sl__log_parse_level("WARN", &l), 0);
    cr_expect_eq(l, SL_LOG_WARN);
    cr_expect_eq(sl__log_parse_level("loud", &l), SL_EINVAL);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    sl__log_set_stream(f);
    sl__log_set_level(SL_LOG_WARN);
    sl__log(SL_LOG_INFO, "s1", "hidden %d", 1);
    sl__log(SL_LOG_ERROR, "s1", "shown %d", 2);
    sl__log_set_stream(NULL);
    sl__log_set_level(SL_LOG_INFO);
    fclose(f);
    cr_expect_null(strstr(buf, "hidden"));
    cr_expect_not_null(strstr(buf, "ERROR [s1] shown 2\n"), "got: %s", buf);
    free(buf);
}

/* A line is written whole, in one write, however long: a 3,000-byte
 * message is not cut, and with the live progress line on it starts by
 * clearing the terminal line. */
Test(stage_ctx, log_lines_whole)
{
    char long_text[3001];
    memset(long_text, 'x', 3000);
    long_text[3000] = '\0';
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    sl__log_set_stream(f);
    sl__log(SL_LOG_WARN, "s2", "long %s end", long_text);
    sl__log_set_clear_line(true);
    sl__log(SL_LOG_INFO, NULL, "short");
    sl__log_set_clear_line(false);
    sl__log_set_stream(NULL);
    fclose(f);
    char *first = strstr(buf, "WARN  [s2] long xxx");
    cr_assert_not_null(first, "got: %.80s", buf);
    char *nl = strchr(first, '\n');
    cr_assert_not_null(nl);
    cr_expect_eq(nl - first, (long)strlen("WARN  [s2] long ") + 3000 + 4);
    cr_expect_eq(memcmp(nl - 4, " end", 4), 0);
    cr_expect_eq(memcmp(nl + 1, "\r\033[K", 4), 0);
    cr_expect_not_null(strstr(nl + 1, "INFO  short\n"));
    free(buf);
}

/* ------------------------------------------------------------------ */
/* A stage's own metrics                                               */
/* ------------------------------------------------------------------ */

static sl_stage_metric *m_hits_200, *m_hits_404, *m_depth;

static int metrics_init(void *state, sl_stage_ctx *sc)
{
    (void)state;
    sl_stage_metric *m = NULL;
    cr_assert_eq(sl_stage_metric_add(sc, SL_METRIC_COUNTER, "hits", "code", "200",
                                     "Hits.", &m_hits_200), 0);
    cr_assert_eq(sl_stage_metric_add(sc, SL_METRIC_COUNTER, "hits", "code", "404",
                                     "Hits.", &m_hits_404), 0);
    cr_assert_eq(sl_stage_metric_add(sc, SL_METRIC_GAUGE, "depth", NULL, NULL,
                                     "Depth.", &m_depth), 0);
    /* bad names, kinds, labels; the same metric twice; a kind clash */
    cr_assert_eq(sl_stage_metric_add(sc, SL_METRIC_GAUGE, "Depth", NULL, NULL, "x", &m),
                 SL_EINVAL);
    cr_assert_eq(sl_stage_metric_add(sc, SL_METRIC_GAUGE, "a-b", NULL, NULL, "x", &m),
                 SL_EINVAL);
    cr_assert_eq(sl_stage_metric_add(sc, SL_METRIC_GAUGE, "", NULL, NULL, "x", &m),
                 SL_EINVAL);
    cr_assert_eq(sl_stage_metric_add(sc, (sl_metric_kind)7, "k", NULL, NULL, "x", &m),
                 SL_EINVAL);
    cr_assert_eq(sl_stage_metric_add(sc, SL_METRIC_GAUGE, "k", "Bad", "v", "x", &m),
                 SL_EINVAL);
    cr_assert_eq(sl_stage_metric_add(sc, SL_METRIC_GAUGE, "k", "l", NULL, "x", &m),
                 SL_EINVAL);
    cr_assert_eq(sl_stage_metric_add(sc, SL_METRIC_GAUGE, "depth", NULL, NULL, "x", &m),
                 SL_EINVAL);
    cr_assert_eq(sl_stage_metric_add(sc, SL_METRIC_COUNTER, "hits", "code", "200",
                                     "Hits.", &m), SL_EINVAL);
    cr_assert_eq(sl_stage_metric_add(sc, SL_METRIC_GAUGE, "hits", "code", "500",
                                     "Hits.", &m), SL_EINVAL);
    cr_assert_eq(sl_stage_metric_add(sc, SL_METRIC_COUNTER, "hits", "path", "/",
                                     "Hits.", &m), SL_EINVAL);
    /* 32 per worker */
    int rc = 0;
    int added = 3;
    for (int i = 0; rc == 0; i++) {
        char name[16];
        snprintf(name, sizeof(name), "m%d", i);
        rc = sl_stage_metric_add(sc, SL_METRIC_GAUGE, name, NULL, NULL, "x", &m);
        added += rc == 0;
    }
    cr_assert_eq(rc, SL_ELIMIT);
    cr_assert_eq(added, 32);
    return 0;
}

static int metrics_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    (void)state;
    sl_stage_metric_add_n(m_hits_200, 2);
    sl_stage_metric_add_n(m_hits_404, 1);
    sl_stage_metric_set(m_depth, 7);
    sl_stage_metric_add_n(m_depth, -3);
    return sl_emit(sc, rec);
}

static const sl_stage_desc metrics_desc = {
    SL_STAGE_DESC_HEADER, .name = "withmetrics", .kind = SL_STAGE_TRANSFORM,
    .summary = "own metrics", .init = metrics_init, .process = metrics_process,
};

Test(harness, stage_metrics_declared_and_updated)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&metrics_desc, NULL, &h), 0);
    cr_assert_eq(sl_harness_init(h), 0);
    cr_assert_eq(sl_harness_metric(h, "hits", "200"), 0);
    cr_assert_eq(sl_harness_process_text(h, "x"), 0);
    cr_assert_eq(sl_harness_process_text(h, "y"), 0);
    cr_assert_eq(sl_harness_metric(h, "hits", "200"), 4);
    cr_assert_eq(sl_harness_metric(h, "hits", "404"), 2);
    cr_assert_eq(sl_harness_metric(h, "depth", NULL), 4);
    cr_assert_eq(sl_harness_metric(h, "nothing", NULL), -1);
    sl_harness_destroy(h);
}
