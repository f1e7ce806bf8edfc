/* Records: payload, fields with copy on write across copies, metadata. */
#include <criterion/criterion.h>
#include <string.h>

#include "sluice/clock.h"
#include "sluice/error.h"
#include "sluice/record.h"

/* Ingest times are on sl_clock_real's scale. */
static int64_t mono_ns(void)
{
    return sl_clock_now(sl_clock_real());
}

Test(record, new_is_empty)
{
    int64_t before = mono_ns();
    sl_record *r = sl_record_new();
    int64_t after = mono_ns();
    cr_assert_not_null(r);
    size_t len = 99;
    const char *p = sl_record_payload(r, &len);
    cr_expect_eq(len, 0);
    cr_expect_str_eq(p, "");
    const sl_value *f = sl_record_fields(r);
    cr_assert_not_null(f);
    cr_expect_eq(sl_value_type(f), SL_TYPE_OBJECT);
    cr_expect_eq(sl_object_len(f), 0);
    cr_expect_geq(sl_record_ingest_ns(r), before);
    cr_expect_leq(sl_record_ingest_ns(r), after);
    const sl_position *pos = sl_record_position(r);
    cr_expect_str_eq(pos->source, "");
    cr_expect_null(pos->locator);
    cr_expect_eq(pos->offset, -1);
    cr_expect_eq(pos->seq, 0);
    cr_expect_null(sl_record_get(r, "x"));
    cr_expect_null(sl_record_meta(r, "status"));
    cr_expect_eq(sl_record_size(r), 2);
    sl_record_free(r);
    sl_record_free(NULL);
}

Test(record, payload)
{
    sl_record *r = sl_record_new_payload("hello\0world", 11);
    cr_assert_not_null(r);
    size_t len;
    const char *p = sl_record_payload(r, &len);
    cr_expect_eq(len, 11);
    cr_expect(memcmp(p, "hello\0world", 12) == 0, "bytes and a terminating NUL");

    /* Shorter, from inside the current payload. */
    cr_expect_eq(sl_record_set_payload(r, p + 6, 5), 0);
    p = sl_record_payload(r, &len);
    cr_expect_eq(len, 5);
    cr_expect_str_eq(p, "world");

    /* Longer than the first allocation. */
    char big[4096];
    memset(big, 'x', sizeof(big));
    cr_expect_eq(sl_record_set_payload(r, big, sizeof(big)), 0);
    p = sl_record_payload(r, &len);
    cr_expect_eq(len, sizeof(big));
    cr_expect_eq(p[len], '\0');
    cr_expect_eq(memcmp(p, big, len), 0);
    /* And from inside that heap payload back to a short one. */
    cr_expect_eq(sl_record_set_payload(r, p + 10, 3), 0);
    p = sl_record_payload(r, &len);
    cr_expect_str_eq(p, "xxx");
    cr_expect_eq(sl_record_set_payload(r, big, sizeof(big)), 0);
    cr_expect_eq(sl_record_size(r), sizeof(big) + 2);

    sl_record_clear_payload(r);
    p = sl_record_payload(r, &len);
    cr_expect_eq(len, 0);
    cr_expect_str_eq(p, "");
    cr_expect_eq(sl_record_set_payload(r, NULL, 1), SL_EINVAL);
    cr_expect_eq(sl_record_set_payload(r, NULL, 0), 0);
    sl_record_free(r);

    cr_expect_null(sl_record_new_payload(NULL, 3));
    r = sl_record_new_payload(NULL, 0);
    cr_assert_not_null(r);
    sl_record_free(r);
}

Test(record, fields_set_get_del)
{
    sl_record *r = sl_record_new();
    cr_expect_eq(sl_record_del(r, "a"), SL_ENOTFOUND);
    cr_expect_eq(sl_record_set(r, "a", sl_value_int(1)), 0);
    cr_expect_eq(sl_record_set(r, "b", sl_value_cstring("x")), 0);
    cr_expect_eq(sl_value_get_int(sl_record_get(r, "a")), 1);
    cr_expect_eq(sl_object_len(sl_record_fields(r)), 2);
    cr_expect_eq(sl_record_del(r, "a"), 0);
    cr_expect_eq(sl_record_del(r, "a"), SL_ENOTFOUND);
    cr_expect_null(sl_record_get(r, "a"));
    cr_expect_eq(sl_record_set(r, NULL, sl_value_int(1)), SL_EINVAL);
    cr_expect_eq(sl_record_del(r, NULL), SL_EINVAL);
    sl_record_free(r);
}

Test(record, empty_fields_are_not_shared_for_writing)
{
    sl_record *a = sl_record_new(), *b = sl_record_new();
    cr_expect_eq(sl_record_set(a, "k", sl_value_int(1)), 0);
    cr_expect_null(sl_record_get(b, "k"));
    cr_expect_eq(sl_object_len(sl_record_fields(b)), 0);
    sl_value *m = sl_record_fields_mut(b);
    cr_assert_not_null(m);
    cr_expect_neq((const sl_value *)m, sl_record_fields(a));
    sl_record_free(a);
    sl_record_free(b);
}

Test(record, set_fields_object_and_wrapping)
{
    sl_record *r = sl_record_new();
    sl_value *o = sl_value_object();
    sl_object_set(o, "x", sl_value_int(5));
    cr_expect_eq(sl_record_set_fields(r, o), 0);
    cr_expect_eq((const sl_value *)o, sl_record_fields(r));
    cr_expect_eq(sl_value_get_int(sl_record_get(r, "x")), 5);

    cr_expect_eq(sl_record_set_fields(r, sl_value_int(3)), 0);
    cr_expect_eq(sl_object_len(sl_record_fields(r)), 1);
    cr_expect_eq(sl_value_get_int(sl_record_get(r, "value")), 3);

    cr_expect_eq(sl_record_set_fields(r, NULL), 0);
    cr_expect_eq(sl_value_type(sl_record_get(r, "value")), SL_TYPE_NULL);
    cr_expect_not_null(sl_record_get(r, "value"));
    sl_record_free(r);
}

Test(record, copy_is_copy_on_write)
{
    sl_record *r = sl_record_new_payload("line", 4);
    sl_record_set(r, "n", sl_value_int(1));
    sl_value *list = sl_value_array();
    sl_array_append(list, sl_value_int(1));
    sl_record_set(r, "list", list);
    sl_record_set_meta(r, "status", sl_value_int(200));
    cr_assert_eq(sl_record_set_position(r, "src", "/data/in.jsonl", 120, 7), 0);

    sl_record *c = sl_record_copy(r);
    cr_assert_not_null(c);
    cr_expect_eq(sl_record_fields(c), sl_record_fields(r), "fields shared until written");
    size_t len;
    cr_expect_str_eq(sl_record_payload(c, &len), "line");
    cr_expect_neq(sl_record_payload(c, NULL), sl_record_payload(r, NULL));
    cr_expect_eq(sl_record_ingest_ns(c), sl_record_ingest_ns(r));
    const sl_position *pc = sl_record_position(c), *pr = sl_record_position(r);
    cr_expect_eq(pc->source, pr->source, "interned");
    cr_expect_str_eq(pc->locator, "/data/in.jsonl");
    cr_expect_neq(pc->locator, pr->locator);
    cr_expect_eq(pc->offset, 120);
    cr_expect_eq(pc->seq, 7);
    cr_expect_eq(sl_value_get_int(sl_record_meta(c, "status")), 200);

    /* Writes on the copy are not seen by the original, nor the reverse. */
    cr_expect_eq(sl_record_set(c, "n", sl_value_int(2)), 0);
    cr_expect_neq(sl_record_fields(c), sl_record_fields(r));
    cr_expect_eq(sl_value_get_int(sl_record_get(r, "n")), 1);
    cr_expect_eq(sl_value_get_int(sl_record_get(c, "n")), 2);
    sl_value *clist = sl_object_get_mut(sl_record_fields_mut(c), "list");
    sl_array_append(clist, sl_value_int(2));
    cr_expect_eq(sl_array_len(sl_record_get(r, "list")), 1);
    cr_expect_eq(sl_record_del(r, "list"), 0);
    cr_expect_eq(sl_array_len(sl_record_get(c, "list")), 2);
    cr_expect_eq(sl_record_set_meta(c, "status", sl_value_int(500)), 0);
    cr_expect_eq(sl_value_get_int(sl_record_meta(r, "status")), 200);

    sl_record_free(r);
    cr_expect_eq(sl_value_get_int(sl_record_get(c, "n")), 2);
    sl_record_free(c);
    cr_expect_null(sl_record_copy(NULL));
}

Test(record, del_of_absent_key_does_not_copy)
{
    sl_record *r = sl_record_new();
    sl_record_set(r, "a", sl_value_int(1));
    sl_record *c = sl_record_copy(r);
    cr_expect_eq(sl_record_del(c, "zz"), SL_ENOTFOUND);
    cr_expect_eq(sl_record_fields(c), sl_record_fields(r));
    sl_record_free(c);
    sl_record_free(r);
}

Test(record, fields_mut_on_sole_owner_is_in_place)
{
    sl_record *r = sl_record_new();
    sl_value *m = sl_record_fields_mut(r);
    cr_assert_not_null(m);
    cr_expect_eq(sl_record_fields_mut(r), m);
    cr_expect_eq(sl_object_set(m, "k", sl_value_bool(true)), 0);
    cr_expect(sl_value_get_bool(sl_record_get(r, "k")));
    sl_record_free(r);
}

Test(record, position)
{
    sl_record *r = sl_record_new();
    char name[16] = "reader";
    cr_assert_eq(sl_record_set_position(r, name, NULL, 10, 1), 0);
    strcpy(name, "changed");
    const sl_position *p = sl_record_position(r);
    cr_expect_str_eq(p->source, "reader", "source copied");
    cr_expect_null(p->locator);
    cr_expect_eq(p->offset, 10);
    cr_expect_eq(p->seq, 1);

    sl_record *r2 = sl_record_new();
    sl_record_set_position(r2, "other", "u", -1, 2);
    sl_record_set_position(r2, "reader", "http://x/1", -1, 3);
    cr_expect_eq(sl_record_position(r2)->source, p->source, "equal names intern to one pointer");
    cr_expect_str_eq(sl_record_position(r2)->locator, "http://x/1");
    cr_assert_eq(sl_record_set_position(r2, NULL, NULL, 0, 4), 0);
    cr_expect_str_eq(sl_record_position(r2)->source, "");
    sl_record_free(r);
    sl_record_free(r2);
}

Test(record, meta)
{
    sl_record *r = sl_record_new();
    cr_expect_eq(sl_record_set_meta(r, "url", sl_value_cstring("http://h/")), 0);
    cr_expect_eq(sl_record_set_meta(r, "status", sl_value_int(503)), 0);
    cr_expect_str_eq(sl_value_get_string(sl_record_meta(r, "url"), NULL), "http://h/");
    cr_expect_eq(sl_value_get_int(sl_record_meta(r, "status")), 503);
    cr_expect_null(sl_record_meta(r, "absent"));
    cr_expect_eq(sl_record_set_meta(r, NULL, sl_value_int(1)), SL_EINVAL);
    cr_expect_null(sl_record_get(r, "url"), "metadata is not a field");
    sl_record_free(r);
}

Test(record, size_counts_payload_and_fields)
{
    sl_record *r = sl_record_new_payload("0123456789", 10);
    size_t empty = sl_record_size(r);
    cr_expect_eq(empty, 12);
    sl_record_set(r, "user", sl_value_cstring("u42"));
    size_t one = sl_record_size(r);
    cr_expect_gt(one, empty + strlen("user") + strlen("u42"));
    sl_value *nest = sl_value_array();
    sl_array_append(nest, sl_value_cstring("abcdefghij"));
    sl_record_set(r, "list", nest);
    cr_expect_gt(sl_record_size(r), one + 10);
    sl_record_clear_payload(r);
    cr_expect_lt(sl_record_size(r), one + 20);
    sl_record_free(r);
}

Test(record, size_follows_changes_made_through_fields_mut)
{
    sl_record *r = sl_record_new();
    sl_record_set(r, "a", sl_value_int(1));
    size_t before = sl_record_size(r);
    cr_expect_eq(sl_record_size(r), before, "stable while nothing changes");
    sl_value *f = sl_record_fields_mut(r);
    sl_object_set(f, "name", sl_value_cstring("a rather long string value"));
    size_t after = sl_record_size(r);
    cr_expect_gt(after, before + 26);

    sl_record *c = sl_record_copy(r);
    cr_expect_eq(sl_record_size(c), after);
    cr_expect_eq(sl_record_del(c, "name"), 0);
    cr_expect_eq(sl_record_size(c), before);
    cr_expect_eq(sl_record_size(r), after);
    sl_record_set_fields(c, sl_value_object());
    cr_expect_eq(sl_record_size(c), 2);
    sl_record_free(c);
    sl_record_free(r);
}
