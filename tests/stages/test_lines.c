/* The `lines` and `null` stages. */
#include "stages/stage_test.h"

extern const sl_stage_desc sl_stage_lines;
extern const sl_stage_desc sl_stage_null;

Test(lines, payload_becomes_a_field)
{
    sl_harness *h = st_harness(&sl_stage_lines, NULL);
    cr_assert_eq(sl_harness_process_text(h, "hello \"world\""), 0);
    cr_assert_eq(sl_harness_emitted_count(h), 1);
    cr_expect_str_eq(st_fields(h, 0), "{\"line\":\"hello \\\"world\\\"\"}");
    size_t len = 99;
    sl_record_payload(sl_harness_emitted(h, 0), &len);
    cr_expect_eq(len, 0, "payload cleared");
    sl_harness_destroy(h);
}

Test(lines, custom_field_keeps_other_fields)
{
    sl_harness *h = st_harness(&sl_stage_lines, "field: text");
    sl_record *r = st_record_json("{\"n\":1}");
    cr_assert_eq(sl_record_set_payload(r, "abc", 3), 0);
    cr_assert_eq(sl_harness_process(h, r), 0);
    cr_expect_str_eq(st_fields(h, 0), "{\"n\":1,\"text\":\"abc\"}");
    sl_harness_destroy(h);
}

Test(lines, empty_field_name_is_refused)
{
    sl_harness *h = NULL;
    cr_assert_eq(sl_harness_create(&sl_stage_lines, "field: ''", &h), 0);
    cr_expect_eq(sl_harness_init(h), SL_ECONFIG);
    sl_harness_destroy(h);
}

Test(null_sink, counts_and_discards)
{
    sl_harness *h = st_harness(&sl_stage_null, NULL);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(sl_harness_process_json(h, "{\"a\":1}"), 0);
    cr_expect_eq(sl_harness_flush(h), 0);
    cr_expect_eq(sl_harness_stored_count(h), 5);
    cr_expect_eq(sl_harness_emitted_count(h), 0);
    sl_harness_destroy(h);
}
