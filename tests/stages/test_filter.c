/* The filter stage, driven through the stage harness. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "engine/harness.h"
#include "sluice/error.h"
#include "sluice/plugin.h"

extern const sl_stage_desc sl_stage_filter;

static sl_harness *make(const char *yaml)
{
    sl_harness *h = NULL;
    int rc = sl_harness_create(&sl_stage_filter, yaml, &h);
    cr_assert_eq(rc, 0, "create: %d %s", rc, sl_harness_config_error(h));
    cr_assert_eq(sl_harness_init(h), 0);
    return h;
}

static int64_t emitted_int(sl_harness *h, size_t i, const char *key)
{
    sl_record *r = sl_harness_emitted(h, i);
    cr_assert_not_null(r, "no emitted record %zu", i);
    return sl_value_get_int(sl_record_get(r, key));
}

Test(filter, keeps_true_drops_false)
{
    sl_harness *h = make("where: status >= 500 && path =~ \"^/api/\"");
    cr_expect_eq(sl_harness_process_json(h, "{\"id\":1,\"status\":503,\"path\":\"/api/a\"}"), 0);
    cr_expect_eq(sl_harness_process_json(h, "{\"id\":2,\"status\":200,\"path\":\"/api/b\"}"), 0);
    cr_expect_eq(sl_harness_process_json(h, "{\"id\":3,\"status\":500,\"path\":\"/web/c\"}"), 0);
    cr_expect_eq(sl_harness_process_json(h, "{\"id\":4,\"status\":599,\"path\":\"/api/\"}"), 0);
    cr_expect_eq(sl_harness_process_json(h, "{\"id\":5}"), 0);   /* missing: false */
    cr_expect_eq(sl_harness_flush(h), 0);
    cr_assert_eq(sl_harness_emitted_count(h), 2);
    cr_expect_eq(emitted_int(h, 0, "id"), 1);
    cr_expect_eq(emitted_int(h, 1, "id"), 4);
    cr_expect_eq(sl_harness_dropped_count(h), 3);
    cr_expect_eq(sl_harness_error_count(h), 0);
    sl_harness_destroy(h);
}

Test(filter, truthiness_of_non_bool_results)
{
    sl_harness *h = make("where: tag");
    sl_harness_process_json(h, "{\"tag\":\"x\"}");
    sl_harness_process_json(h, "{\"tag\":\"\"}");
    sl_harness_process_json(h, "{\"tag\":0}");
    sl_harness_process_json(h, "{\"tag\":null}");
    sl_harness_process_json(h, "{\"tag\":[]}");
    sl_harness_process_json(h, "{}");
    cr_expect_eq(sl_harness_emitted_count(h), 2);
    cr_expect_eq(sl_harness_dropped_count(h), 4);
    sl_harness_destroy(h);
}

Test(filter, evaluation_error_goes_to_on_error)
{
    sl_harness *h = make("where: status >= \"500\"");
    int rc = sl_harness_process_json(h, "{\"status\":503}");
    cr_expect_eq(rc, SL_ETYPE);
    cr_expect_str_eq(sl_harness_last_error(h),
                     "where: cannot compare int and string (convert one with "
                     "to_int, to_float or to_string), at column 8");
    cr_expect_eq(sl_harness_error_count(h), 1);
    cr_assert_eq(sl_harness_failed_count(h), 1);
    cr_expect_eq(sl_value_get_int(sl_record_get(sl_harness_failed(h, 0),
                                                "status")), 503);
    cr_expect_eq(sl_harness_emitted_count(h), 0);
    cr_expect_eq(sl_harness_dropped_count(h), 0);
    /* A record without the field is simply dropped. */
    cr_expect_eq(sl_harness_process_json(h, "{}"), 0);
    cr_expect_eq(sl_harness_dropped_count(h), 1);
    sl_harness_destroy(h);
}

Test(filter, division_by_zero_is_an_error)
{
    sl_harness *h = make("where: total / count > 2");
    cr_expect_eq(sl_harness_process_json(h, "{\"total\":10,\"count\":2}"), 0);
    cr_expect_eq(sl_harness_process_json(h, "{\"total\":10,\"count\":0}"),
                 SL_ERANGE);
    cr_expect_str_eq(sl_harness_last_error(h),
                     "where: division by zero, at column 7");
    cr_expect_eq(sl_harness_emitted_count(h), 1);
    sl_harness_destroy(h);
}

Test(filter, seq_is_the_source_position)
{
    sl_harness *h = make("where: seq() % 2 == 0");
    for (int i = 1; i <= 6; i++) {
        sl_record *r = sl_record_new();
        cr_assert_not_null(r);
        cr_assert_eq(sl_record_set_position(r, "src", NULL, -1, i), 0);
        cr_assert_eq(sl_record_set(r, "n", sl_value_int(i)), 0);
        cr_expect_eq(sl_harness_process(h, r), 0);
    }
    cr_assert_eq(sl_harness_emitted_count(h), 3);
    cr_expect_eq(emitted_int(h, 0, "n"), 2);
    cr_expect_eq(emitted_int(h, 2, "n"), 6);
    sl_harness_destroy(h);
}

Test(filter, where_is_required)
{
    sl_harness *h = NULL;
    cr_expect_eq(sl_harness_create(&sl_stage_filter, NULL, &h), SL_ECONFIG);
    cr_expect_neq(strstr(sl_harness_config_error(h), "where"), NULL, "%s",
                  sl_harness_config_error(h));
    sl_harness_destroy(h);
}

Test(filter, syntax_error_is_a_config_error_with_column)
{
    sl_harness *h = NULL;
    cr_expect_eq(sl_harness_create(&sl_stage_filter, "where: status >= ", &h),
                 SL_ECONFIG);
    const char *msg = sl_harness_config_error(h);
    cr_expect_neq(strstr(msg, "unexpected end of expression"), NULL, "%s", msg);
    cr_expect_neq(strstr(msg, "column 10"), NULL, "%s", msg);
    sl_harness_destroy(h);

    cr_expect_eq(sl_harness_create(&sl_stage_filter,
                                   "where: path =~ \"(\"", &h), SL_ECONFIG);
    msg = sl_harness_config_error(h);
    cr_expect_neq(strstr(msg, "invalid regular expression"), NULL, "%s", msg);
    sl_harness_destroy(h);

    cr_expect_eq(sl_harness_create(&sl_stage_filter, "wehre: x", &h),
                 SL_ECONFIG);
    msg = sl_harness_config_error(h);
    cr_expect_neq(strstr(msg, "where"), NULL, "%s", msg);
    sl_harness_destroy(h);
}

Test(filter, descriptor)
{
    cr_expect_str_eq(sl_stage_filter.name, "filter");
    cr_expect_eq(sl_stage_filter.kind, SL_STAGE_TRANSFORM);
    cr_expect_eq(sl_stage_filter.abi_major, SL_ABI_MAJOR);
    cr_expect_null(strchr(sl_stage_filter.summary, '\n'));
    for (const sl_option *o = sl_stage_filter.options; o->key != NULL; o++)
        cr_expect_null(strchr(o->description, '\n'));
}
