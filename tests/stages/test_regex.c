/* The `regex` parse stage. */
#include "stages/stage_test.h"

extern const sl_stage_desc sl_stage_regex;

static const char *access_log =
    "pattern: '^(?<ip>[0-9.]+) - (?:[^ ]+) \\[(?<ts>[^]]+)\\] \"(?<method>[A-Z]+) "
    "(?<path>[^ \"]*)[^\"]*\" (?<status>[0-9]{3}) (?<bytes>[0-9]+|-)$'";

Test(regex, named_groups_become_fields)
{
    sl_harness *h = st_harness(&sl_stage_regex, access_log);
    cr_assert_eq(sl_harness_process_text(
                     h, "10.0.0.1 - bob [01/Nov/2026:10:00:01 +0000] \"GET /api/x HTTP/1.1\" 503 17"),
                 0, "%s", sl_harness_last_error(h));
    cr_assert_eq(sl_harness_emitted_count(h), 1);
    cr_expect_str_eq(st_fields(h, 0),
                     "{\"ip\":\"10.0.0.1\",\"ts\":\"01/Nov/2026:10:00:01 +0000\",\"method\":\"GET\","
                     "\"path\":\"/api/x\",\"status\":\"503\",\"bytes\":\"17\"}");
    size_t len = 99;
    sl_record_payload(sl_harness_emitted(h, 0), &len);
    cr_expect_eq(len, 0, "payload cleared");
    sl_harness_destroy(h);
}

Test(regex, group_numbering_skips_escapes_and_brackets)
{
    /* \( and [(] are not groups; (?P<..>) is accepted too; an unmatched
     * optional group is null. */
    sl_harness *h = st_harness(&sl_stage_regex,
                               "pattern: '\\((?<a>[a-z]+)\\) [(](?P<b>[0-9]+)(x(?<c>y))?'");
    cr_assert_eq(sl_harness_process_text(h, "(abc) (42"), 0, "%s", sl_harness_last_error(h));
    cr_expect_str_eq(st_fields(h, 0), "{\"a\":\"abc\",\"b\":\"42\",\"c\":null}");
    cr_assert_eq(sl_harness_process_text(h, "(d) (7xy"), 0);
    cr_expect_str_eq(st_fields(h, 1), "{\"a\":\"d\",\"b\":\"7\",\"c\":\"y\"}");
    sl_harness_destroy(h);
}

Test(regex, bracket_classes)
{
    sl_harness *h = st_harness(&sl_stage_regex, "pattern: '^(?<w>[[:alpha:]]+)[]()]+(?<d>[[:digit:]]+)$'");
    cr_assert_eq(sl_harness_process_text(h, "abc)](9"), 0, "%s", sl_harness_last_error(h));
    cr_expect_str_eq(st_fields(h, 0), "{\"w\":\"abc\",\"d\":\"9\"}");
    sl_harness_destroy(h);
}

Test(regex, mismatch_is_an_error_or_a_drop)
{
    sl_harness *h = st_harness(&sl_stage_regex, "pattern: '^(?<n>[0-9]+)$'");
    cr_assert_eq(sl_harness_process(h, st_record_at("12x", "in.log", 5)), SL_EPARSE);
    cr_expect_str_eq(sl_harness_last_error(h), "in.log line 5: does not match the pattern");
    cr_expect_eq(sl_harness_failed_count(h), 1);
    sl_harness_destroy(h);

    h = st_harness(&sl_stage_regex, "{pattern: '^(?<n>[0-9]+)$', on_mismatch: drop}");
    cr_assert_eq(sl_harness_process_text(h, "12x"), 0);
    cr_assert_eq(sl_harness_process_text(h, "12"), 0);
    cr_expect_eq(sl_harness_dropped_count(h), 1);
    cr_expect_eq(sl_harness_emitted_count(h), 1);
    sl_harness_destroy(h);
}

Test(regex, from_a_field)
{
    sl_harness *h = st_harness(&sl_stage_regex, "{pattern: '(?<user>[^@]+)@(?<domain>.+)', field: email}");
    cr_assert_eq(sl_harness_process_json(h, "{\"id\":1,\"email\":\"ann@example.com\"}"), 0);
    cr_expect_str_eq(st_fields(h, 0),
                     "{\"id\":1,\"email\":\"ann@example.com\",\"user\":\"ann\",\"domain\":\"example.com\"}");
    cr_assert_eq(sl_harness_process_json(h, "{\"id\":2}"), SL_ETYPE);
    cr_expect_str_eq(sl_harness_last_error(h), "record: field 'email' is missing, not a string");
    cr_assert_eq(sl_harness_process_json(h, "{\"email\":5}"), SL_ETYPE);
    cr_expect_str_eq(sl_harness_last_error(h), "record: field 'email' is int, not a string");
    sl_harness_destroy(h);
}

Test(regex, field_may_be_overwritten_by_its_own_group)
{
    sl_harness *h = st_harness(&sl_stage_regex, "{pattern: '^ *(?<msg>.*[^ ]) *$', field: msg}");
    cr_assert_eq(sl_harness_process_json(h, "{\"msg\":\"  padded text   \"}"), 0);
    cr_expect_str_eq(st_fields(h, 0), "{\"msg\":\"padded text\"}");
    sl_harness_destroy(h);
}

Test(regex, bad_patterns_are_config_errors)
{
    const char *bad[][2] = {
        {"pattern: '[0-9]+'", "pattern has no named group (?<name>...)"},
        {"pattern: '(?<a>x)(?<a>y)'", "pattern: group name 'a' used twice"},
        {"pattern: '(?=x)(?<a>y)'", NULL},
        {"pattern: '(?<a-b>x)'", NULL},
        {"pattern: '(?<a>x'", NULL},
        {"pattern: ''", "'pattern' must not be empty"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sl_harness *h = NULL;
        cr_assert_eq(sl_harness_create(&sl_stage_regex, bad[i][0], &h), 0, "%s", bad[i][0]);
        cr_expect_eq(sl_harness_init(h), SL_ECONFIG, "%s", bad[i][0]);
        if (bad[i][1] != NULL)
            cr_expect_str_eq(sl_harness_last_error(h), bad[i][1]);
        else
            cr_expect(strncmp(sl_harness_last_error(h), "pattern: ", 9) == 0, "%s: %s",
                      bad[i][0], sl_harness_last_error(h));
        sl_harness_destroy(h);
    }
    sl_harness *h = NULL;
    cr_expect_eq(sl_harness_create(&sl_stage_regex, NULL, &h), SL_ECONFIG, "pattern is required");
    sl_harness_destroy(h);
}

Test(regex, payload_with_nul_bytes)
{
    sl_harness *h = st_harness(&sl_stage_regex, "pattern: '(?<tail>b+)$'");
    sl_record *r = sl_record_new_payload("a\0bb", 4);
    cr_assert_eq(sl_harness_process(h, r), 0, "%s", sl_harness_last_error(h));
    cr_expect_str_eq(st_fields(h, 0), "{\"tail\":\"bb\"}");
    sl_harness_destroy(h);
}
