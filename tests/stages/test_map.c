/* The map stage, driven through the stage harness. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "engine/harness.h"
#include "sluice/error.h"
#include "sluice/plugin.h"

extern const sl_stage_desc sl_stage_map;

static sl_harness *make(const char *yaml)
{
    sl_harness *h = NULL;
    int rc = sl_harness_create(&sl_stage_map, yaml, &h);
    cr_assert_eq(rc, 0, "create: %d %s", rc, sl_harness_config_error(h));
    cr_assert_eq(sl_harness_init(h), 0);
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

/* Process json and expect the emitted record's fields to be want. */
static void expect_out(sl_harness *h, const char *json, const char *want)
{
    size_t before = sl_harness_emitted_count(h);
    int rc = sl_harness_process_json(h, json);
    cr_assert_eq(rc, 0, "process %s: %d %s", json, rc,
                 sl_harness_last_error(h));
    cr_assert_eq(sl_harness_emitted_count(h), before + 1);
    char *got = fields_json(sl_harness_emitted(h, before));
    cr_expect_str_eq(got, want, "from %s", json);
    free(got);
}

Test(map, set_in_order_each_seeing_the_previous)
{
    sl_harness *h = make("set: {a: 1, b: a + 1, c: 'b * 10', n: seq()}");
    expect_out(h, "{}", "{\"a\":1,\"b\":2,\"c\":20,\"n\":0}");
    sl_harness_destroy(h);
}

Test(map, set_existing_keeps_its_place_new_goes_last)
{
    sl_harness *h = make("set: {status: status + 1, extra: '\"x\"'}");
    expect_out(h, "{\"status\":1,\"id\":7}",
               "{\"status\":2,\"id\":7,\"extra\":\"x\"}");
    sl_harness_destroy(h);
}

Test(map, quickstart_enrichment)
{
    sl_harness *h = make("set:\n"
                         "  latency_s: latency_ms / 1000.0\n"
                         "  severity: 'status >= 503 ? \"high\" : \"medium\"'\n"
                         "delete: [bytes]\n");
    expect_out(h, "{\"status\":503,\"latency_ms\":250,\"bytes\":9}",
               "{\"status\":503,\"latency_ms\":250,\"latency_s\":0.25,"
               "\"severity\":\"high\"}");
    expect_out(h, "{\"status\":500,\"latency_ms\":1500}",
               "{\"status\":500,\"latency_ms\":1500,\"latency_s\":1.5,"
               "\"severity\":\"medium\"}");
    sl_harness_destroy(h);
}

Test(map, rename_keeps_place_and_replaces_target)
{
    sl_harness *h = make("rename: {a: x, missing: y, c: b}");
    expect_out(h, "{\"a\":1,\"b\":2,\"c\":3,\"d\":4}",
               "{\"x\":1,\"b\":3,\"d\":4}");
    expect_out(h, "{\"d\":4}", "{\"d\":4}");
    sl_harness_destroy(h);
}

Test(map, rename_in_sequence)
{
    sl_harness *h = make("rename: {a: b, b: c}");
    expect_out(h, "{\"a\":1,\"z\":0}", "{\"c\":1,\"z\":0}");
    sl_harness_destroy(h);
}

Test(map, delete_and_keep)
{
    sl_harness *h = make("delete: [b, nope]");
    expect_out(h, "{\"a\":1,\"b\":2,\"c\":3}", "{\"a\":1,\"c\":3}");
    expect_out(h, "{\"a\":1}", "{\"a\":1}");
    sl_harness_destroy(h);

    h = make("keep: [path, id, missing]");   /* list order, no new fields */
    expect_out(h, "{\"id\":1,\"status\":500,\"path\":\"/x\",\"b\":2}",
               "{\"path\":\"/x\",\"id\":1}");
    expect_out(h, "{\"other\":1}", "{}");
    sl_harness_destroy(h);
}

Test(map, order_is_set_rename_delete_keep)
{
    sl_harness *h = make("keep: [total, id]\n"
                         "delete: [id]\n"
                         "rename: {sum: total}\n"
                         "set: {sum: a + b, id: id * 10}\n");
    /* set makes sum and id*10; rename sum -> total; delete id; keep
     * [total, id] finds only total. */
    expect_out(h, "{\"id\":1,\"a\":2,\"b\":3}", "{\"total\":5}");
    sl_harness_destroy(h);
}

Test(map, failed_set_leaves_the_record_as_it_came)
{
    sl_harness *h = make("set: {a: 'a + 1', new: 1, b: b + \"x\", c: 3}");
    expect_out(h, "{\"a\":1,\"b\":\"s\"}",
               "{\"a\":2,\"b\":\"sx\",\"new\":1,\"c\":3}");
    int rc = sl_harness_process_json(h, "{\"a\":1,\"b\":2,\"z\":true}");
    cr_expect_eq(rc, SL_ETYPE);
    cr_expect_str_eq(sl_harness_last_error(h),
                     "set b: cannot add int and string, at column 3");
    cr_assert_eq(sl_harness_failed_count(h), 1);
    char *got = fields_json(sl_harness_failed(h, 0));
    cr_expect_str_eq(got, "{\"a\":1,\"b\":2,\"z\":true}");
    free(got);
    cr_expect_eq(sl_harness_error_count(h), 1);

    cr_expect_eq(sl_harness_process_json(h, "{\"b\":\"t\"}"), SL_ETYPE);
    cr_expect_str_eq(sl_harness_last_error(h),
                     "set a: cannot add null and int (a is missing or null), "
                     "at column 3");
    got = fields_json(sl_harness_failed(h, 1));
    cr_expect_str_eq(got, "{\"b\":\"t\"}");
    free(got);
    sl_harness_destroy(h);
}

Test(map, shared_records_are_copied_before_changes)
{
    sl_harness *h = make("set: {a: 'a * 2'}\ndelete: [b]");
    sl_record *orig = sl_record_new();
    cr_assert_not_null(orig);
    cr_assert_eq(sl_record_set(orig, "a", sl_value_int(21)), 0);
    cr_assert_eq(sl_record_set(orig, "b", sl_value_int(1)), 0);
    sl_record *copy = sl_record_copy(orig);   /* shares the fields */
    cr_assert_not_null(copy);
    cr_assert_eq(sl_harness_process(h, copy), 0);
    char *got = fields_json(sl_harness_emitted(h, 0));
    cr_expect_str_eq(got, "{\"a\":42}");
    free(got);
    got = fields_json(orig);
    cr_expect_str_eq(got, "{\"a\":21,\"b\":1}");
    free(got);
    sl_record_free(orig);
    sl_harness_destroy(h);
}

Test(map, set_to_the_whole_record_is_a_snapshot)
{
    sl_harness *h = make("set: {snap: $, a: 2}");
    expect_out(h, "{\"a\":1}", "{\"a\":2,\"snap\":{\"a\":1}}");
    sl_harness_destroy(h);
}

Test(map, set_copies_containers_by_value)
{
    sl_harness *h = make("set: {first: 'items[0]', tags: t, n: len(items)}");
    expect_out(h, "{\"items\":[{\"k\":1}],\"t\":[\"a\"]}",
               "{\"items\":[{\"k\":1}],\"t\":[\"a\"],\"first\":{\"k\":1},"
               "\"tags\":[\"a\"],\"n\":1}");
    sl_harness_destroy(h);
}

Test(map, no_options_passes_records_through)
{
    sl_harness *h = make(NULL);
    expect_out(h, "{\"a\":1}", "{\"a\":1}");
    sl_harness_destroy(h);
}

Test(map, config_errors)
{
    sl_harness *h = NULL;
    cr_expect_eq(sl_harness_create(&sl_stage_map, "set: {a: '1 +'}", &h),
                 SL_ECONFIG);
    cr_expect_neq(strstr(sl_harness_config_error(h), "unexpected end of "
                         "expression"), NULL, "%s", sl_harness_config_error(h));
    sl_harness_destroy(h);
    cr_expect_eq(sl_harness_create(&sl_stage_map, "set: [a]", &h), SL_ECONFIG);
    sl_harness_destroy(h);
    cr_expect_eq(sl_harness_create(&sl_stage_map, "kep: [a]", &h), SL_ECONFIG);
    cr_expect_neq(strstr(sl_harness_config_error(h), "keep"), NULL, "%s",
                  sl_harness_config_error(h));
    sl_harness_destroy(h);
}

Test(map, descriptor)
{
    cr_expect_str_eq(sl_stage_map.name, "map");
    cr_expect_eq(sl_stage_map.kind, SL_STAGE_TRANSFORM);
    cr_expect_null(strchr(sl_stage_map.summary, '\n'));
    for (const sl_option *o = sl_stage_map.options; o->key != NULL; o++)
        cr_expect_null(strchr(o->description, '\n'));
}
