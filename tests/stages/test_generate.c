/* The generate stage, driven through the stage harness. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/harness.h"
#include "sluice/error.h"
#include "sluice/plugin.h"

extern const sl_stage_desc sl_stage_generate;

static sl_harness *make(const char *yaml)
{
    sl_harness *h = NULL;
    int rc = sl_harness_create(&sl_stage_generate, yaml, &h);
    cr_assert_eq(rc, 0, "create: %d %s", rc, sl_harness_config_error(h));
    return h;
}

static char *fields_json(const sl_record *r)
{
    sl_buf b;
    sl_buf_init(&b);
    cr_assert_eq(sl_json_dump(sl_record_fields(r), &b), 0);
    char *s = strndup(b.data != NULL ? b.data : "", b.len);
    sl_buf_fini(&b);
    return s;
}

static void expect_fields(sl_harness *h, size_t i, const char *want)
{
    sl_record *r = sl_harness_emitted(h, i);
    cr_assert_not_null(r, "no record %zu", i);
    char *got = fields_json(r);
    cr_expect_str_eq(got, want, "record %zu", i);
    free(got);
}

Test(generate, count_without_fields)
{
    sl_harness *h = make("count: 3");
    cr_assert_eq(sl_harness_init(h), 0);
    cr_expect_eq(sl_harness_run(h), 0);
    cr_assert_eq(sl_harness_emitted_count(h), 3);
    for (size_t i = 0; i < 3; i++) {
        char want[32];
        snprintf(want, sizeof(want), "{\"seq\":%zu}", i + 1);
        expect_fields(h, i, want);
        const sl_position *p = sl_record_position(sl_harness_emitted(h, i));
        cr_expect_str_eq(p->source, "test");
        cr_expect_eq(p->seq, (int64_t)i + 1);
    }
    sl_harness_destroy(h);
}

Test(generate, fields_from_expressions)
{
    sl_harness *h = make(
        "count: 5\n"
        "fields:\n"
        "  id: seq()\n"
        "  user: '\"u\" + to_string(seq() % 100)'\n"
        "  status: 'seq() % 5 == 0 ? 503 : 200'\n"
        "  latency_ms: (seq() * 7919) % 1000 / 10.0\n"
        "  even: id % 2 == 0\n");
    cr_assert_eq(sl_harness_init(h), 0);
    cr_expect_eq(sl_harness_run(h), 0);
    cr_assert_eq(sl_harness_emitted_count(h), 5);
    expect_fields(h, 0, "{\"id\":1,\"user\":\"u1\",\"status\":200,"
                        "\"latency_ms\":91.9,\"even\":false}");
    expect_fields(h, 4, "{\"id\":5,\"user\":\"u5\",\"status\":503,"
                        "\"latency_ms\":59.5,\"even\":false}");
    sl_harness_destroy(h);
}

Test(generate, paced_by_rate_on_the_stage_clock)
{
    sl_fake_clock fc;
    sl_fake_clock_init(&fc, 1000);
    sl_harness *h = make("count: 10\nrate: 100/s");
    sl_harness_set_clock(h, &fc.clock);
    cr_assert_eq(sl_harness_init(h), 0);
    cr_expect_eq(sl_harness_run(h), 0);
    cr_expect_eq(sl_harness_emitted_count(h), 10);
    /* The first record at once, then one every 10 ms. */
    cr_expect_eq(atomic_load(&fc.slept), 90 * SL_NS_PER_MS);
    cr_expect_eq(atomic_load(&fc.now), 1000 + 90 * SL_NS_PER_MS);
    sl_harness_destroy(h);
}

Test(generate, pacing_does_not_drift)
{
    /* 3 per second: due times 0, 333333333, 666666666 ns — never
     * accumulating the rounding of each interval. */
    sl_fake_clock fc;
    sl_fake_clock_init(&fc, 0);
    sl_harness *h = make("count: 301\nrate: 3/s");
    sl_harness_set_clock(h, &fc.clock);
    cr_assert_eq(sl_harness_init(h), 0);
    cr_expect_eq(sl_harness_run(h), 0);
    cr_expect_eq(sl_harness_emitted_count(h), 301);
    cr_expect_eq(atomic_load(&fc.now), 100 * SL_NS_PER_S);
    sl_harness_destroy(h);
}

Test(generate, workers_share_numbers_and_rate)
{
    sl_fake_clock fc;
    sl_fake_clock_init(&fc, 0);
    sl_harness *h = make("count: 10\nrate: 100/s");
    sl_harness_set_clock(h, &fc.clock);
    sl_harness_set_worker(h, 1, 3);
    cr_assert_eq(sl_harness_init(h), 0);
    cr_expect_eq(sl_harness_run(h), 0);
    cr_assert_eq(sl_harness_emitted_count(h), 3);
    expect_fields(h, 0, "{\"seq\":2}");
    expect_fields(h, 1, "{\"seq\":5}");
    expect_fields(h, 2, "{\"seq\":8}");
    /* Each of 3 workers makes 100/3 per second: 30 ms apart. */
    cr_expect_eq(atomic_load(&fc.slept), 60 * SL_NS_PER_MS);
    sl_harness_destroy(h);
}

Test(generate, stop_before_start_makes_nothing)
{
    sl_harness *h = make("count: 0");
    cr_assert_eq(sl_harness_init(h), 0);
    sl_harness_stop(h);
    cr_expect_eq(sl_harness_run(h), 0);
    cr_expect_eq(sl_harness_emitted_count(h), 0);
    sl_harness_destroy(h);
}

static void *run_thread(void *arg)
{
    sl_harness *h = arg;
    return (void *)(intptr_t)sl_harness_run(h);
}

/* A stop request ends even a long wait between records at once. */
Test(generate, stop_wakes_the_wait_between_records, .timeout = 20)
{
    sl_harness *h = make("count: 0\nrate: 1/h");
    cr_assert_eq(sl_harness_init(h), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, run_thread, h), 0);
    sl_harness_stop(h);
    void *ret;
    cr_assert_eq(pthread_join(t, &ret), 0);
    cr_expect_eq((int)(intptr_t)ret, 0);
    cr_expect_leq(sl_harness_emitted_count(h), 1);
    sl_harness_destroy(h);
}

Test(generate, unbounded_until_stopped, .timeout = 20)
{
    sl_harness *h = make("count: 0\nfields: {n: seq()}");
    cr_assert_eq(sl_harness_init(h), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, run_thread, h), 0);
    sl_harness_stop(h);
    void *ret;
    cr_assert_eq(pthread_join(t, &ret), 0);
    cr_expect_eq((int)(intptr_t)ret, 0);
    /* Whatever was made is numbered 1..n without gaps. */
    size_t n = sl_harness_emitted_count(h);
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(sl_value_get_int(sl_record_get(sl_harness_emitted(h, i),
                                                    "n")), (int64_t)i + 1);
    sl_harness_destroy(h);
}

Test(generate, cancelled_run_returns_quietly)
{
    sl_harness *h = make("count: 5");
    cr_assert_eq(sl_harness_init(h), 0);
    sl_harness_cancel(h, "test over");
    cr_expect_eq(sl_harness_run(h), 0);
    cr_expect_eq(sl_harness_emitted_count(h), 0);
    sl_harness_destroy(h);
}

Test(generate, field_error_fails_the_run)
{
    sl_harness *h = make("count: 5\nfields: {x: '10 / (3 - seq())'}");
    cr_assert_eq(sl_harness_init(h), 0);
    cr_expect_eq(sl_harness_run(h), SL_ERANGE);
    cr_expect_eq(sl_harness_emitted_count(h), 2);
    cr_expect_str_eq(sl_harness_last_error(h),
                     "fields x: division by zero, at column 4 (record 3)");
    sl_harness_destroy(h);
}

Test(generate, config_errors)
{
    sl_harness *h = NULL;
    cr_expect_eq(sl_harness_create(&sl_stage_generate, "count: -1", &h),
                 SL_ECONFIG);
    sl_harness_destroy(h);
    cr_expect_eq(sl_harness_create(&sl_stage_generate, "rate: fast", &h),
                 SL_ECONFIG);
    sl_harness_destroy(h);
    cr_expect_eq(sl_harness_create(&sl_stage_generate,
                                   "fields: {a: 'sqe()'}", &h), SL_ECONFIG);
    cr_expect_neq(strstr(sl_harness_config_error(h), "did you mean 'seq'"),
                  NULL, "%s", sl_harness_config_error(h));
    sl_harness_destroy(h);
}

Test(generate, descriptor)
{
    cr_expect_str_eq(sl_stage_generate.name, "generate");
    cr_expect_eq(sl_stage_generate.kind, SL_STAGE_SOURCE);
    cr_expect_not_null(sl_stage_generate.run);
    cr_expect_null(sl_stage_generate.process);
    cr_expect_null(strchr(sl_stage_generate.summary, '\n'));
    for (const sl_option *o = sl_stage_generate.options; o->key != NULL; o++)
        cr_expect_null(strchr(o->description, '\n'));
}
