/*
 * batch stage: size, flush, timeout on a fake clock, carried position.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "engine/harness.h"
#include "sluice/plugin.h"

extern const sl_stage_desc sl_stage_batch;

#define MS SL_NS_PER_MS

static sl_fake_clock fc;

static void setup(void)
{
    sl_fake_clock_init(&fc, 0);
}

TestSuite(batch, .init = setup);

static sl_harness *start(const char *yaml)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_batch, yaml, &h), 0, "%s",
                 h != NULL ? sl_harness_config_error(h) : "");
    sl_harness_set_clock(h, &fc.clock);
    cr_assert_eq(sl_harness_init(h), 0, "%s", sl_harness_last_error(h));
    return h;
}

static void feed_i(sl_harness *h, int i)
{
    char json[64];
    snprintf(json, sizeof(json), "{\"i\": %d}", i);
    cr_assert_eq(sl_harness_process_json(h, json), 0);
}

/* The batch emitted k-th as compact JSON. */
static char *batch_json(sl_harness *h, size_t k)
{
    static char out[4096];
    sl_buf b;
    sl_buf_init(&b);
    cr_assert_eq(sl_json_dump(sl_record_fields(sl_harness_emitted(h, k)), &b), 0);
    snprintf(out, sizeof(out), "%s", b.data);
    sl_buf_fini(&b);
    return out;
}

Test(batch, describes_itself)
{
    cr_expect_str_eq(sl_stage_batch.name, "batch");
    cr_expect_not_null(sl_stage_batch.summary);
    cr_expect_not_null(sl_stage_batch.flush);
    for (const sl_option *o = sl_stage_batch.options; o->key != NULL; o++)
        cr_expect(o->description != NULL && o->description[0] != '\0', "%s", o->key);
}

Test(batch, bad_options_are_config_errors)
{
    static const char *bad[] = {"size: 0", "size: many", "timeout: soon",
                                "sise: 3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sl_harness *h = NULL;
        cr_expect_eq(sl_harness_create(&sl_stage_batch, bad[i], &h), SL_ECONFIG,
                     "%s", bad[i]);
        sl_harness_destroy(h);
    }
}

Test(batch, groups_by_size_and_flushes_the_rest)
{
    sl_harness *h = start("size: 3");
    for (int i = 1; i <= 7; i++)
        feed_i(h, i);
    cr_assert_eq(sl_harness_emitted_count(h), 2);
    cr_expect_str_eq(batch_json(h, 0),
                     "{\"records\":[{\"i\":1},{\"i\":2},{\"i\":3}],\"count\":3}");
    cr_expect_str_eq(batch_json(h, 1),
                     "{\"records\":[{\"i\":4},{\"i\":5},{\"i\":6}],\"count\":3}");
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_assert_eq(sl_harness_emitted_count(h), 3);
    cr_expect_str_eq(batch_json(h, 2), "{\"records\":[{\"i\":7}],\"count\":1}");
    /* Nothing pending: flush emits nothing. */
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_expect_eq(sl_harness_emitted_count(h), 3);
    cr_expect_eq(sl_harness_dropped_count(h), 0);
    sl_harness_destroy(h);
}

Test(batch, default_size_is_100)
{
    sl_harness *h = start(NULL);
    for (int i = 0; i < 250; i++)
        feed_i(h, i);
    cr_assert_eq(sl_harness_emitted_count(h), 2);
    cr_expect_eq(sl_value_get_int(sl_record_get(sl_harness_emitted(h, 1), "count")), 100);
    cr_expect_eq(sl_array_len(sl_record_get(sl_harness_emitted(h, 0), "records")), 100);
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_expect_eq(sl_value_get_int(sl_record_get(sl_harness_emitted(h, 2), "count")), 50);
    sl_harness_destroy(h);
}

Test(batch, batch_carries_the_last_records_position)
{
    sl_harness *h = start("size: 2");
    for (int i = 1; i <= 2; i++) {
        sl_record *r = sl_record_new();
        cr_assert_not_null(r);
        cr_assert_eq(sl_record_set(r, "i", sl_value_int(i)), 0);
        cr_assert_eq(sl_record_set_position(r, "src", "in.jsonl", 10 * i, i), 0);
        cr_assert_eq(sl_harness_process(h, r), 0);
    }
    cr_assert_eq(sl_harness_emitted_count(h), 1);
    const sl_position *pos = sl_record_position(sl_harness_emitted(h, 0));
    cr_expect_eq(pos->seq, 2);
    cr_expect_eq(pos->offset, 20);
    cr_expect_str_eq(pos->locator, "in.jsonl");
    sl_harness_destroy(h);
}

Test(batch, unparsed_records_contribute_their_payload)
{
    sl_harness *h = start("size: 2");
    cr_assert_eq(sl_harness_process_text(h, "line one"), 0);
    cr_assert_eq(sl_harness_process_text(h, "line two"), 0);
    cr_assert_eq(sl_harness_emitted_count(h), 1);
    cr_expect_str_eq(batch_json(h, 0),
                     "{\"records\":[\"line one\",\"line two\"],\"count\":2}");
    size_t len = 99;
    sl_record_payload(sl_harness_emitted(h, 0), &len);
    cr_expect_eq(len, 0);
    sl_harness_destroy(h);
}

Test(batch, timeout_sends_a_waiting_batch_when_the_next_record_comes)
{
    sl_harness *h = start("size: 10\ntimeout: 1s");
    feed_i(h, 1);
    sl_fake_clock_advance(&fc, 500 * MS);
    feed_i(h, 2);
    sl_fake_clock_advance(&fc, 499 * MS);
    feed_i(h, 3);                              /* 999 ms: not yet */
    cr_expect_eq(sl_harness_emitted_count(h), 0);
    sl_fake_clock_advance(&fc, 1 * MS);
    feed_i(h, 4);                              /* 1 s: 1..3 go, 4 starts anew */
    cr_assert_eq(sl_harness_emitted_count(h), 1);
    cr_expect_str_eq(batch_json(h, 0),
                     "{\"records\":[{\"i\":1},{\"i\":2},{\"i\":3}],\"count\":3}");
    sl_fake_clock_advance(&fc, 999 * MS);
    feed_i(h, 5);
    cr_expect_eq(sl_harness_emitted_count(h), 1);
    cr_assert_eq(sl_harness_flush(h), 0);
    cr_assert_eq(sl_harness_emitted_count(h), 2);
    cr_expect_str_eq(batch_json(h, 1),
                     "{\"records\":[{\"i\":4},{\"i\":5}],\"count\":2}");
    sl_harness_destroy(h);
}

Test(batch, size_one_passes_each_record_wrapped)
{
    sl_harness *h = start("size: 1");
    feed_i(h, 9);
    cr_assert_eq(sl_harness_emitted_count(h), 1);
    cr_expect_str_eq(batch_json(h, 0), "{\"records\":[{\"i\":9}],\"count\":1}");
    sl_harness_destroy(h);
}

Test(batch, pending_records_are_freed_on_destroy)
{
    sl_harness *h = start("size: 50");
    for (int i = 0; i < 20; i++)
        feed_i(h, i);
    cr_expect_eq(sl_harness_emitted_count(h), 0);
    sl_harness_destroy(h);   /* ASan checks nothing leaks */
}

Test(batch, emitted_batches_do_not_share_changes_with_inputs)
{
    sl_harness *h = start("size: 2");
    sl_record *a = sl_record_new();
    cr_assert_eq(sl_record_set(a, "i", sl_value_int(1)), 0);
    sl_record *keep = sl_record_copy(a);       /* shares a's fields */
    cr_assert_eq(sl_harness_process(h, a), 0);
    feed_i(h, 2);
    cr_assert_eq(sl_harness_emitted_count(h), 1);
    cr_assert_eq(sl_record_set(keep, "i", sl_value_int(100)), 0);
    cr_expect_str_eq(batch_json(h, 0),
                     "{\"records\":[{\"i\":1},{\"i\":2}],\"count\":2}");
    sl_record_free(keep);
    sl_harness_destroy(h);
}
