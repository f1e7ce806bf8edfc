/*
 * sample stage: exact keep patterns, reproducible random choices.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "engine/harness.h"
#include "sluice/plugin.h"

extern const sl_stage_desc sl_stage_sample;

static sl_harness *start(const char *yaml, int worker)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_sample, yaml, &h), 0, "%s",
                 h != NULL ? sl_harness_config_error(h) : "");
    sl_harness_set_worker(h, worker, worker + 1);
    cr_assert_eq(sl_harness_init(h), 0, "%s", sl_harness_last_error(h));
    return h;
}

static void feed(sl_harness *h, int n)
{
    char json[64];
    for (int i = 1; i <= n; i++) {
        snprintf(json, sizeof(json), "{\"i\": %d}", i);
        cr_assert_eq(sl_harness_process_json(h, json), 0);
    }
}

static int64_t kept_i(sl_harness *h, size_t k)
{
    return sl_value_get_int(sl_record_get(sl_harness_emitted(h, k), "i"));
}

Test(sample, describes_itself)
{
    cr_expect_str_eq(sl_stage_sample.name, "sample");
    cr_expect_not_null(sl_stage_sample.summary);
    for (const sl_option *o = sl_stage_sample.options; o->key != NULL; o++)
        cr_expect(o->description != NULL && o->description[0] != '\0', "%s", o->key);
}

Test(sample, needs_exactly_one_of_rate_and_every)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_sample, NULL, &h), 0);
    cr_expect_eq(sl_harness_init(h), SL_ECONFIG);
    cr_expect(strstr(sl_harness_last_error(h), "rate") != NULL);
    sl_harness_destroy(h);

    cr_assert_eq(sl_harness_create(&sl_stage_sample, "rate: 0.5\nevery: 2", &h), 0);
    cr_expect_eq(sl_harness_init(h), SL_ECONFIG);
    cr_expect(strstr(sl_harness_last_error(h), "not both") != NULL);
    sl_harness_destroy(h);

    static const char *bad[] = {"rate: 1.5", "rate: -0.1", "every: 0",
                                "rate: half", "every: 2\nseed: x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(sl_harness_create(&sl_stage_sample, bad[i], &h), SL_ECONFIG,
                     "%s", bad[i]);
        sl_harness_destroy(h);
    }
}

Test(sample, every_n_keeps_the_first_of_each_group)
{
    sl_harness *h = start("every: 3", 0);
    feed(h, 10);
    cr_assert_eq(sl_harness_emitted_count(h), 4);
    cr_expect_eq(kept_i(h, 0), 1);
    cr_expect_eq(kept_i(h, 1), 4);
    cr_expect_eq(kept_i(h, 2), 7);
    cr_expect_eq(kept_i(h, 3), 10);
    cr_expect_eq(sl_harness_dropped_count(h), 6);
    sl_harness_destroy(h);
}

Test(sample, every_one_keeps_everything)
{
    sl_harness *h = start("every: 1", 0);
    feed(h, 20);
    cr_expect_eq(sl_harness_emitted_count(h), 20);
    sl_harness_destroy(h);
}

Test(sample, rate_one_keeps_everything)
{
    sl_harness *h = start("rate: 1", 0);
    feed(h, 500);
    cr_expect_eq(sl_harness_emitted_count(h), 500);
    cr_expect_eq(sl_harness_dropped_count(h), 0);
    sl_harness_destroy(h);
}

Test(sample, rate_keeps_about_that_fraction)
{
    sl_harness *h = start("rate: 0.25\nseed: 42", 0);
    feed(h, 10000);
    size_t kept = sl_harness_emitted_count(h);
    cr_expect(kept > 2300 && kept < 2700, "kept %zu of 10000", kept);
    cr_expect_eq(kept + sl_harness_dropped_count(h), 10000);
    sl_harness_destroy(h);
}

/* The i of every kept record, as one comparable string. */
static void kept_list(const char *yaml, int worker, char *out, size_t cap)
{
    sl_harness *h = start(yaml, worker);
    feed(h, 300);
    size_t len = 0;
    out[0] = '\0';
    for (size_t k = 0; k < sl_harness_emitted_count(h); k++)
        len += (size_t)snprintf(out + len, cap - len, "%lld,",
                                (long long)kept_i(h, k));
    sl_harness_destroy(h);
}

Test(sample, same_seed_keeps_the_same_records)
{
    char a[4096], b[4096], c[4096], d[4096];
    kept_list("rate: 0.3\nseed: 7", 0, a, sizeof(a));
    kept_list("rate: 0.3\nseed: 7", 0, b, sizeof(b));
    kept_list("rate: 0.3\nseed: 8", 0, c, sizeof(c));
    kept_list("rate: 0.3\nseed: 7", 1, d, sizeof(d));
    cr_expect_str_eq(a, b);
    cr_expect_str_neq(a, c);
    cr_expect_str_neq(a, d);   /* workers draw different sequences */
}
