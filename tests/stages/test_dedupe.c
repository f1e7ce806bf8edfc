/*
 * dedupe stage: key equality, the FIFO window, null keys, errors.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "engine/harness.h"
#include "sluice/plugin.h"

extern const sl_stage_desc sl_stage_dedupe;

static sl_harness *start(const char *yaml)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_dedupe, yaml, &h), 0, "%s",
                 h != NULL ? sl_harness_config_error(h) : "");
    cr_assert_eq(sl_harness_init(h), 0, "%s", sl_harness_last_error(h));
    return h;
}

static void feed(sl_harness *h, const char *json)
{
    cr_assert_eq(sl_harness_process_json(h, json), 0, "%s: %s", json,
                 sl_harness_last_error(h));
}

static void feed_key(sl_harness *h, const char *key_json)
{
    char json[256];
    snprintf(json, sizeof(json), "{\"k\": %s, \"n\": %zu}", key_json,
             sl_harness_emitted_count(h) + sl_harness_dropped_count(h));
    feed(h, json);
}

Test(dedupe, describes_itself)
{
    cr_expect_str_eq(sl_stage_dedupe.name, "dedupe");
    cr_expect_not_null(sl_stage_dedupe.summary);
    for (const sl_option *o = sl_stage_dedupe.options; o->key != NULL; o++)
        cr_expect(o->description != NULL && o->description[0] != '\0', "%s", o->key);
}

Test(dedupe, key_is_required_and_compiled)
{
    sl_harness *h = NULL;
    cr_expect_eq(sl_harness_create(&sl_stage_dedupe, NULL, &h), SL_ECONFIG);
    cr_expect(strstr(sl_harness_config_error(h), "key") != NULL);
    sl_harness_destroy(h);
    cr_expect_eq(sl_harness_create(&sl_stage_dedupe, "key: a +", &h), SL_ECONFIG);
    sl_harness_destroy(h);
    cr_expect_eq(sl_harness_create(&sl_stage_dedupe, "key: a\nwindow: 0", &h),
                 SL_ECONFIG);
    sl_harness_destroy(h);
}

Test(dedupe, drops_repeated_keys)
{
    sl_harness *h = start("key: id");
    feed(h, "{\"id\": 1, \"v\": \"a\"}");
    feed(h, "{\"id\": 2, \"v\": \"b\"}");
    feed(h, "{\"id\": 1, \"v\": \"c\"}");
    feed(h, "{\"id\": 3, \"v\": \"d\"}");
    feed(h, "{\"id\": 2, \"v\": \"e\"}");
    cr_assert_eq(sl_harness_emitted_count(h), 3);
    cr_expect_eq(sl_harness_dropped_count(h), 2);
    const char *want[] = {"a", "b", "d"};
    for (size_t i = 0; i < 3; i++)
        cr_expect_str_eq(sl_value_get_string(
            sl_record_get(sl_harness_emitted(h, i), "v"), NULL), want[i]);
    sl_harness_destroy(h);
}

Test(dedupe, keys_compare_by_value)
{
    sl_harness *h = start("key: k");
    feed_key(h, "1");
    feed_key(h, "1.0");                        /* same as 1 */
    feed_key(h, "\"1\"");                      /* a string: different */
    feed_key(h, "1.5");
    feed_key(h, "1.5");
    feed_key(h, "true");
    feed_key(h, "false");
    feed_key(h, "[1, \"a\"]");
    feed_key(h, "[1.0, \"a\"]");               /* same */
    feed_key(h, "[\"a\", 1]");                 /* order matters in arrays */
    feed_key(h, "{\"a\": 1, \"b\": [2]}");
    feed_key(h, "{\"b\": [2], \"a\": 1}");     /* member order does not */
    feed_key(h, "{\"a\": 1}");
    feed_key(h, "\"a\\u0000b\"");
    feed_key(h, "\"a\\u0000c\"");              /* bytes after a NUL count */
    feed_key(h, "\"\"");
    feed_key(h, "[]");
    feed_key(h, "{}");
    cr_expect_eq(sl_harness_emitted_count(h), 14);
    cr_expect_eq(sl_harness_dropped_count(h), 4);
    sl_harness_destroy(h);
}

Test(dedupe, key_expressions)
{
    sl_harness *h = start("key: user + \":\" + to_string(day)");
    feed(h, "{\"user\": \"ann\", \"day\": 1}");
    feed(h, "{\"user\": \"ann\", \"day\": 2}");
    feed(h, "{\"user\": \"bob\", \"day\": 1}");
    feed(h, "{\"user\": \"ann\", \"day\": 1, \"extra\": true}");
    cr_expect_eq(sl_harness_emitted_count(h), 3);
    cr_expect_eq(sl_harness_dropped_count(h), 1);
    sl_harness_destroy(h);
}

Test(dedupe, null_keys_pass)
{
    sl_harness *h = start("key: id");
    feed(h, "{\"x\": 1}");
    feed(h, "{\"x\": 2}");
    feed(h, "{\"id\": null}");
    cr_expect_eq(sl_harness_emitted_count(h), 3);
    cr_expect_eq(sl_harness_dropped_count(h), 0);
    sl_harness_destroy(h);
}

Test(dedupe, window_forgets_oldest_first)
{
    sl_harness *h = start("key: k\nwindow: 2");
    feed_key(h, "\"a\"");
    feed_key(h, "\"b\"");
    feed_key(h, "\"a\"");          /* remembered: dropped */
    cr_expect_eq(sl_harness_dropped_count(h), 1);
    feed_key(h, "\"c\"");          /* forgets a */
    feed_key(h, "\"b\"");          /* still remembered */
    cr_expect_eq(sl_harness_dropped_count(h), 2);
    feed_key(h, "\"a\"");          /* forgotten: passes, forgets b */
    cr_expect_eq(sl_harness_emitted_count(h), 4);
    feed_key(h, "\"b\"");          /* passes */
    feed_key(h, "\"a\"");          /* dropped */
    cr_expect_eq(sl_harness_emitted_count(h), 5);
    cr_expect_eq(sl_harness_dropped_count(h), 3);
    sl_harness_destroy(h);
}

Test(dedupe, memory_is_bounded_by_the_window)
{
    sl_harness *h = start("key: k\nwindow: 1000");
    char key[32];
    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof(key), "%d", i);
        feed_key(h, key);
    }
    cr_expect_eq(sl_harness_emitted_count(h), 50000);
    feed_key(h, "49000");          /* within the last 1000: dropped */
    feed_key(h, "48999");          /* forgotten: passes */
    cr_expect_eq(sl_harness_dropped_count(h), 1);
    cr_expect_eq(sl_harness_emitted_count(h), 50001);
    sl_harness_destroy(h);
}

Test(dedupe, key_errors_leave_the_record_to_the_engine)
{
    sl_harness *h = start("key: name + 1");
    cr_expect_eq(sl_harness_process_json(h, "{\"name\": \"x\"}"), SL_ETYPE);
    cr_expect_eq(sl_harness_failed_count(h), 1);
    cr_expect(strstr(sl_harness_last_error(h), "name + 1") != NULL, "%s",
              sl_harness_last_error(h));
    feed(h, "{\"name\": 2}");
    cr_expect_eq(sl_harness_emitted_count(h), 1);
    sl_harness_destroy(h);
}

Test(dedupe, refuses_several_workers)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_dedupe, "key: id", &h), 0);
    sl_harness_set_worker(h, 0, 2);
    cr_expect_eq(sl_harness_init(h), SL_ECONFIG);
    cr_expect(strstr(sl_harness_last_error(h), "workers") != NULL);
    sl_harness_destroy(h);
}
