/* The `json` parse stage. */
#include "stages/stage_test.h"

extern const sl_stage_desc sl_stage_json;

Test(json_stage, object_becomes_the_fields)
{
    sl_harness *h = st_harness(&sl_stage_json, NULL);
    cr_assert_eq(sl_harness_process(h, st_record_at("{\"id\":1,\"a\":{\"b\":[true,null]}}",
                                                    "in.jsonl", 3)), 0);
    cr_assert_eq(sl_harness_emitted_count(h), 1);
    cr_expect_str_eq(st_fields(h, 0), "{\"id\":1,\"a\":{\"b\":[true,null]}}");
    size_t len = 99;
    sl_record_payload(sl_harness_emitted(h, 0), &len);
    cr_expect_eq(len, 0, "payload cleared");
    cr_expect_eq(sl_record_position(sl_harness_emitted(h, 0))->seq, 3);
    sl_harness_destroy(h);
}

Test(json_stage, other_values_go_under_value)
{
    sl_harness *h = st_harness(&sl_stage_json, NULL);
    cr_assert_eq(sl_harness_process_text(h, "42"), 0);
    cr_assert_eq(sl_harness_process_text(h, "\"s\""), 0);
    cr_assert_eq(sl_harness_process_text(h, "[1,2]"), 0, "no split: one record");
    cr_expect_str_eq(st_fields(h, 0), "{\"value\":42}");
    cr_expect_str_eq(st_fields(h, 1), "{\"value\":\"s\"}");
    cr_expect_str_eq(st_fields(h, 2), "{\"value\":[1,2]}");
    sl_harness_destroy(h);
}

Test(json_stage, split_makes_one_record_per_element)
{
    sl_harness *h = st_harness(&sl_stage_json, "split: true");
    cr_assert_eq(sl_harness_process(h, st_record_at("[{\"a\":1},{\"a\":2},3]", "page.json", 7)), 0);
    cr_assert_eq(sl_harness_emitted_count(h), 3);
    cr_expect_str_eq(st_fields(h, 0), "{\"a\":1}");
    cr_expect_str_eq(st_fields(h, 1), "{\"a\":2}");
    cr_expect_str_eq(st_fields(h, 2), "{\"value\":3}");
    for (size_t i = 0; i < 3; i++) {
        const sl_position *p = sl_record_position(sl_harness_emitted(h, i));
        cr_expect_str_eq(p->locator, "page.json");
        cr_expect_eq(p->seq, 7);
        size_t len = 99;
        sl_record_payload(sl_harness_emitted(h, i), &len);
        cr_expect_eq(len, 0);
    }
    /* An object is not split; an empty array drops the record. */
    cr_assert_eq(sl_harness_process_text(h, "{\"x\":[1]}"), 0);
    cr_expect_str_eq(st_fields(h, 3), "{\"x\":[1]}");
    cr_assert_eq(sl_harness_process_text(h, "[]"), 0);
    cr_expect_eq(sl_harness_emitted_count(h), 4);
    cr_expect_eq(sl_harness_dropped_count(h), 1);
    sl_harness_destroy(h);
}

Test(json_stage, split_copies_are_independent)
{
    sl_harness *h = st_harness(&sl_stage_json, "split: true");
    cr_assert_eq(sl_harness_process_text(h, "[{\"a\":1},{\"a\":2}]"), 0);
    cr_assert_eq(sl_record_set(sl_harness_emitted(h, 0), "a", sl_value_int(10)), 0);
    cr_expect_str_eq(st_fields(h, 1), "{\"a\":2}");
    sl_harness_destroy(h);
}

Test(json_stage, parse_error_names_the_position)
{
    sl_harness *h = st_harness(&sl_stage_json, NULL);
    sl_record *r = st_record_at("{\"id\": 25, \"status\": 500,", "out/in.jsonl", 25);
    cr_assert_eq(sl_harness_process(h, r), SL_EPARSE);
    const char *msg = sl_harness_last_error(h);
    cr_expect(strncmp(msg, "out/in.jsonl line 25: ", 22) == 0, "message: %s", msg);
    cr_expect_not_null(strstr(msg, " at column "), "message: %s", msg);
    cr_assert_eq(sl_harness_failed_count(h), 1, "the record stays with the engine");
    size_t len = 0;
    sl_record_payload(sl_harness_failed(h, 0), &len);
    cr_expect_gt(len, 0, "payload kept for the dead-letter file");
    sl_harness_destroy(h);
}

Test(json_stage, parse_error_without_a_locator)
{
    sl_harness *h = st_harness(&sl_stage_json, NULL);
    cr_assert_eq(sl_harness_process(h, st_record_at("nope", NULL, 4)), SL_EPARSE);
    cr_expect(strncmp(sl_harness_last_error(h), "line 4: ", 8) == 0, "%s", sl_harness_last_error(h));
    cr_assert_eq(sl_harness_process_text(h, ""), SL_EPARSE);
    cr_expect(strncmp(sl_harness_last_error(h), "record: ", 8) == 0, "%s", sl_harness_last_error(h));
    sl_harness_destroy(h);
}

Test(json_stage, multi_line_document_error_gives_its_line)
{
    sl_harness *h = st_harness(&sl_stage_json, NULL);
    cr_assert_eq(sl_harness_process(h, st_record_at("{\n\"a\": 1,\n\"b\": }", "http://x/y", 0)),
                 SL_EPARSE);
    const char *msg = sl_harness_last_error(h);
    cr_expect(strncmp(msg, "http://x/y: ", 12) == 0, "message: %s", msg);
    cr_expect_not_null(strstr(msg, " at line 3 column "), "message: %s", msg);
    sl_harness_destroy(h);
}

Test(json_stage, depth_limit)
{
    sl_harness *h = st_harness(&sl_stage_json, "max_depth: 3");
    cr_expect_eq(sl_harness_process_text(h, "[[[1]]]"), 0);
    cr_expect_eq(sl_harness_process_text(h, "[[[[1]]]]"), SL_ELIMIT);
    cr_expect_not_null(strstr(sl_harness_last_error(h), "limit"), "%s", sl_harness_last_error(h));
    sl_harness_destroy(h);
}

Test(json_stage, size_limit)
{
    sl_harness *h = st_harness(&sl_stage_json, "max_bytes: 15");
    cr_expect_eq(sl_harness_process_text(h, "{\"a\":\"0123456\"}"), 0);
    cr_expect_eq(sl_harness_process_text(h, "{\"a\":\"01234567\"}"), SL_ELIMIT);
    sl_harness_destroy(h);
}
