/*
 * rate_limit stage, on a fake clock: exact waits, no sleeping.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>

#include "engine/harness.h"
#include "sluice/plugin.h"

extern const sl_stage_desc sl_stage_rate_limit;

#define MS SL_NS_PER_MS
#define S SL_NS_PER_S

static sl_fake_clock fc;

static void setup(void)
{
    sl_fake_clock_init(&fc, 0);
}

TestSuite(rate_limit, .init = setup);

static sl_harness *start(const char *yaml, int worker, int workers)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_rate_limit, yaml, &h), 0, "%s",
                 h != NULL ? sl_harness_config_error(h) : "");
    sl_harness_set_clock(h, &fc.clock);
    sl_harness_set_worker(h, worker, workers);
    cr_assert_eq(sl_harness_init(h), 0, "%s", sl_harness_last_error(h));
    return h;
}

static void feed(sl_harness *h, int n)
{
    for (int i = 0; i < n; i++)
        cr_assert_eq(sl_harness_process_json(h, "{\"i\": 1}"), 0, "record %d: %s",
                     i, sl_harness_last_error(h));
}

static int64_t slept(void)
{
    return atomic_load(&fc.slept);
}

Test(rate_limit, describes_itself)
{
    cr_expect_str_eq(sl_stage_rate_limit.name, "rate_limit");
    cr_expect_eq(sl_stage_rate_limit.kind, SL_STAGE_TRANSFORM);
    cr_expect_eq(sl_stage_rate_limit.abi_major, SL_ABI_MAJOR);
    cr_expect_not_null(sl_stage_rate_limit.summary);
    for (const sl_option *o = sl_stage_rate_limit.options; o->key != NULL; o++)
        cr_expect(o->description != NULL && o->description[0] != '\0', "%s", o->key);
}

Test(rate_limit, rate_is_required)
{
    sl_harness *h = NULL;
    cr_expect_eq(sl_harness_create(&sl_stage_rate_limit, NULL, &h), SL_ECONFIG);
    cr_expect(strstr(sl_harness_config_error(h), "rate") != NULL, "%s",
              sl_harness_config_error(h));
    sl_harness_destroy(h);
}

Test(rate_limit, bad_options_are_config_errors)
{
    static const char *bad[] = {"rate: fast", "rate: 10/s\nburst: 0",
                                "rate: 0/s", "rate: 10/s\nbrust: 3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sl_harness *h = NULL;
        cr_expect_eq(sl_harness_create(&sl_stage_rate_limit, bad[i], &h),
                     SL_ECONFIG, "%s", bad[i]);
        sl_harness_destroy(h);
    }
}

Test(rate_limit, passes_records_at_the_rate)
{
    sl_harness *h = start("rate: 10/s\nburst: 2", 0, 1);
    feed(h, 5);
    cr_expect_eq(sl_harness_emitted_count(h), 5);
    /* Two from the burst, then 100 ms each. */
    cr_expect_eq(slept(), 300 * MS);
    cr_expect_eq(sl_clock_now(&fc.clock), 300 * MS);
    /* A pause refills the bucket, up to the burst. */
    sl_fake_clock_advance(&fc, 10 * S);
    feed(h, 3);
    cr_expect_eq(slept(), 400 * MS);
    cr_expect_eq(sl_harness_dropped_count(h), 0);
    sl_harness_destroy(h);
}

Test(rate_limit, default_burst_is_one_second)
{
    sl_harness *h = start("rate: 5/s", 0, 1);
    feed(h, 5);
    cr_expect_eq(slept(), 0);
    feed(h, 1);
    cr_expect_eq(slept(), 200 * MS);
    sl_harness_destroy(h);

    sl_fake_clock_init(&fc, 0);
    h = start("rate: 6000/m", 0, 1);         /* 100/s: burst 100 */
    feed(h, 100);
    cr_expect_eq(slept(), 0);
    feed(h, 1);
    cr_expect_eq(slept(), 10 * MS);
    sl_harness_destroy(h);
}

Test(rate_limit, slow_rates_have_a_burst_of_one)
{
    sl_harness *h = start("rate: 30/h", 0, 1);   /* one every 2 minutes */
    feed(h, 3);
    cr_expect_eq(slept(), 4 * 60 * S);
    sl_harness_destroy(h);
}

Test(rate_limit, workers_share_the_rate)
{
    /* Worker 1 of 4 at 100/s, burst 10: 25/s and a burst share of 3. */
    sl_harness *h = start("rate: 100/s\nburst: 10", 1, 4);
    feed(h, 3);
    cr_expect_eq(slept(), 0);
    feed(h, 2);
    cr_expect_eq(slept(), 80 * MS);
    sl_harness_destroy(h);

    /* Worker 3 of 4: a share of 2. */
    sl_fake_clock_init(&fc, 0);
    h = start("rate: 100/s\nburst: 10", 3, 4);
    feed(h, 3);
    cr_expect_eq(slept(), 40 * MS);
    sl_harness_destroy(h);
}

Test(rate_limit, cancelled_run_interrupts_the_wait)
{
    sl_harness *h = start("rate: 1/s\nburst: 1", 0, 1);
    feed(h, 1);
    sl_harness_cancel(h, "shutting down");
    cr_expect_eq(sl_harness_process_json(h, "{\"i\": 2}"), SL_ECANCELED);
    cr_expect_eq(sl_harness_emitted_count(h), 1);
    cr_expect_eq(sl_harness_failed_count(h), 1);
    cr_expect(strstr(sl_harness_last_error(h), "rate limit") != NULL, "%s",
              sl_harness_last_error(h));
    cr_expect_eq(slept(), 0);
    sl_harness_destroy(h);
}
