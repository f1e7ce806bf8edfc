/* Values: construction, reference counts and copy on write, equality,
 * arrays, objects. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sluice/error.h"
#include "sluice/value.h"

Test(value, type_names)
{
    cr_expect_str_eq(sl_type_name(SL_TYPE_NULL), "null");
    cr_expect_str_eq(sl_type_name(SL_TYPE_BOOL), "bool");
    cr_expect_str_eq(sl_type_name(SL_TYPE_INT), "int");
    cr_expect_str_eq(sl_type_name(SL_TYPE_DOUBLE), "double");
    cr_expect_str_eq(sl_type_name(SL_TYPE_STRING), "string");
    cr_expect_str_eq(sl_type_name(SL_TYPE_ARRAY), "array");
    cr_expect_str_eq(sl_type_name(SL_TYPE_OBJECT), "object");
}

Test(value, scalars)
{
    sl_value *n = sl_value_null(), *t = sl_value_bool(true), *f = sl_value_bool(false);
    sl_value *i = sl_value_int(-42), *d = sl_value_double(2.75);

    cr_expect_eq(sl_value_type(n), SL_TYPE_NULL);
    cr_expect_eq(sl_value_type(NULL), SL_TYPE_NULL);
    cr_expect_eq(sl_value_type(t), SL_TYPE_BOOL);
    cr_expect(sl_value_get_bool(t));
    cr_expect_not(sl_value_get_bool(f));
    cr_expect_not(sl_value_get_bool(i));
    cr_expect_not(sl_value_get_bool(NULL));
    cr_expect_eq(sl_value_type(i), SL_TYPE_INT);
    cr_expect_eq(sl_value_get_int(i), -42);
    cr_expect_eq(sl_value_get_double(i), -42.0);
    cr_expect_eq(sl_value_type(d), SL_TYPE_DOUBLE);
    cr_expect_eq(sl_value_get_double(d), 2.75);
    cr_expect_eq(sl_value_get_int(d), 2);
    cr_expect_eq(sl_value_get_int(t), 0);
    cr_expect_eq(sl_value_get_double(n), 0.0);
    cr_expect_null(sl_value_get_string(i, NULL));
    sl_value_unref(n);
    sl_value_unref(t);
    sl_value_unref(f);
    sl_value_unref(i);
    sl_value_unref(d);
    sl_value_unref(NULL);
}

Test(value, int64_extremes)
{
    sl_value *max = sl_value_int(INT64_MAX), *min = sl_value_int(INT64_MIN);
    cr_expect_eq(sl_value_get_int(max), INT64_MAX);
    cr_expect_eq(sl_value_get_int(min), INT64_MIN);
    sl_value_unref(max);
    sl_value_unref(min);
}

Test(value, double_to_int_truncates_and_saturates)
{
    sl_value *a = sl_value_double(-3.9), *b = sl_value_double(1e300), *c = sl_value_double(-1e300);
    cr_expect_eq(sl_value_get_int(a), -3);
    cr_expect_eq(sl_value_get_int(b), INT64_MAX);
    cr_expect_eq(sl_value_get_int(c), INT64_MIN);
    sl_value_unref(a);
    sl_value_unref(b);
    sl_value_unref(c);
}

Test(value, non_finite_double_is_null)
{
    sl_value *a = sl_value_double(NAN), *b = sl_value_double(INFINITY);
    cr_expect_eq(sl_value_type(a), SL_TYPE_NULL);
    cr_expect_eq(sl_value_type(b), SL_TYPE_NULL);
    sl_value_unref(a);
    sl_value_unref(b);
}

Test(value, strings_keep_nul_and_length)
{
    sl_value *s = sl_value_string("a\0b", 3);
    size_t len = 0;
    const char *p = sl_value_get_string(s, &len);
    cr_assert_not_null(p);
    cr_expect_eq(len, 3);
    cr_expect(memcmp(p, "a\0b", 4) == 0, "bytes and terminating NUL");
    sl_value_unref(s);

    sl_value *c = sl_value_cstring("héllo");
    p = sl_value_get_string(c, &len);
    cr_expect_eq(len, strlen("héllo"));
    cr_expect_str_eq(p, "héllo");
    sl_value_unref(c);

    sl_value *e = sl_value_string(NULL, 0);
    p = sl_value_get_string(e, &len);
    cr_expect_eq(len, 0);
    cr_expect_str_eq(p, "");
    sl_value_unref(e);
}

Test(value, strings_accept_any_bytes)
{
    sl_value *s = sl_value_string("\xff\xfe", 2);
    cr_assert_not_null(s);
    size_t len;
    cr_expect(memcmp(sl_value_get_string(s, &len), "\xff\xfe", 2) == 0);
    cr_expect_eq(len, 2);
    sl_value_unref(s);
}

Test(value, equality)
{
    sl_value *i1 = sl_value_int(1), *d1 = sl_value_double(1.0), *d15 = sl_value_double(1.5);
    sl_value *big = sl_value_int(INT64_C(9007199254740993));
    sl_value *bigd = sl_value_double(9007199254740992.0);
    sl_value *s1 = sl_value_string("a\0b", 3), *s2 = sl_value_string("a\0c", 3);

    cr_expect(sl_value_equal(i1, d1));
    cr_expect(sl_value_equal(d1, i1));
    cr_expect_not(sl_value_equal(i1, d15));
    cr_expect_not(sl_value_equal(big, bigd), "no rounding of large ints");
    cr_expect_not(sl_value_equal(s1, s2));
    cr_expect(sl_value_equal(s1, s1));
    cr_expect(sl_value_equal(NULL, NULL));
    sl_value *n = sl_value_null();
    cr_expect(sl_value_equal(NULL, n));
    cr_expect_not(sl_value_equal(n, i1));
    sl_value *t = sl_value_bool(true), *f = sl_value_bool(false);
    cr_expect_not(sl_value_equal(t, f));

    sl_value *o1 = sl_value_object(), *o2 = sl_value_object();
    sl_object_set(o1, "a", sl_value_int(1));
    sl_object_set(o1, "b", sl_value_cstring("x"));
    sl_object_set(o2, "b", sl_value_cstring("x"));
    sl_object_set(o2, "a", sl_value_double(1.0));
    cr_expect(sl_value_equal(o1, o2), "key order does not matter");
    sl_object_set(o2, "c", sl_value_null());
    cr_expect_not(sl_value_equal(o1, o2));

    sl_value *a1 = sl_value_array(), *a2 = sl_value_array();
    sl_array_append(a1, sl_value_int(1));
    sl_array_append(a2, sl_value_int(2));
    cr_expect_not(sl_value_equal(a1, a2));
    sl_array_append(a1, sl_value_int(2));
    cr_expect_not(sl_value_equal(a1, a2), "length differs");

    sl_value *vals[] = {i1, d1, d15, big, bigd, s1, s2, n, t, f, o1, o2, a1, a2};
    for (size_t k = 0; k < sizeof(vals) / sizeof(vals[0]); k++)
        sl_value_unref(vals[k]);
}

Test(value, arrays)
{
    sl_value *a = sl_value_array();
    cr_expect_eq(sl_array_len(a), 0);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(sl_array_append(a, sl_value_int(i)), 0);
    cr_expect_eq(sl_array_len(a), 100);
    cr_expect_eq(sl_value_get_int(sl_array_get(a, 57)), 57);
    cr_expect_null(sl_array_get(a, 100));
    cr_expect_eq(sl_array_set(a, 3, sl_value_cstring("three")), 0);
    cr_expect_str_eq(sl_value_get_string(sl_array_get(a, 3), NULL), "three");
    cr_expect_eq(sl_array_set(a, 100, sl_value_int(0)), SL_ERANGE);

    sl_value *o = sl_value_object();
    cr_expect_eq(sl_array_append(o, sl_value_int(1)), SL_ETYPE);
    cr_expect_eq(sl_array_append(NULL, sl_value_int(1)), SL_EINVAL);
    cr_expect_eq(sl_array_append(a, NULL), SL_EINVAL);
    cr_expect_eq(sl_array_append(a, sl_value_ref(a)), SL_EINVAL, "a value cannot contain itself");
    cr_expect_eq(sl_array_len(o), 0);
    cr_expect_null(sl_array_get(o, 0));
    sl_value_unref(o);
    sl_value_unref(a);
}

Test(value, objects_keep_insertion_order)
{
    static const char *keys[] = {"zeta", "alpha", "mid", "beta", "omega", "a1", "a0",
                                 "k7", "k8", "k9", "k10", "k11", "k12"};
    size_t nkeys = sizeof(keys) / sizeof(keys[0]);
    sl_value *o = sl_value_object();
    for (size_t i = 0; i < nkeys; i++)
        cr_assert_eq(sl_object_set(o, keys[i], sl_value_int((int64_t)i)), 0);
    cr_expect_eq(sl_object_len(o), nkeys);

    size_t i = 0;
    for (void *it = sl_object_iter(o); it; it = sl_object_next(o, it), i++) {
        cr_assert_lt(i, nkeys);
        cr_expect_str_eq(sl_object_iter_key(it), keys[i]);
        cr_expect_eq(sl_value_get_int(sl_object_iter_value(it)), (int64_t)i);
    }
    cr_expect_eq(i, nkeys);

    /* Replacing keeps the position; delete and re-add moves to the end. */
    cr_expect_eq(sl_object_set(o, "alpha", sl_value_cstring("A")), 0);
    cr_expect_eq(sl_object_len(o), nkeys);
    void *it = sl_object_next(o, sl_object_iter(o));
    cr_expect_str_eq(sl_object_iter_key(it), "alpha");
    cr_expect_str_eq(sl_value_get_string(sl_object_iter_value(it), NULL), "A");

    cr_expect_eq(sl_object_del(o, "zeta"), 0);
    cr_expect_eq(sl_object_del(o, "zeta"), SL_ENOTFOUND);
    cr_expect_null(sl_object_get(o, "zeta"));
    cr_expect_eq(sl_object_set(o, "zeta", sl_value_null()), 0);
    it = sl_object_iter(o);
    cr_expect_str_eq(sl_object_iter_key(it), "alpha");
    const char *last = NULL;
    for (; it; it = sl_object_next(o, it))
        last = sl_object_iter_key(it);
    cr_expect_str_eq(last, "zeta");
    sl_value_unref(o);
}

Test(value, object_errors)
{
    sl_value *o = sl_value_object(), *a = sl_value_array();
    cr_expect_eq(sl_object_set(a, "k", sl_value_int(1)), SL_ETYPE);
    cr_expect_eq(sl_object_del(a, "k"), SL_ETYPE);
    cr_expect_eq(sl_object_set(o, NULL, sl_value_int(1)), SL_EINVAL);
    cr_expect_eq(sl_object_set(o, "k", NULL), SL_EINVAL);
    cr_expect_eq(sl_object_set(o, "k", sl_value_ref(o)), SL_EINVAL);
    cr_expect_eq(sl_object_set(NULL, "k", sl_value_int(1)), SL_EINVAL);
    cr_expect_eq(sl_object_del(NULL, "k"), SL_EINVAL);
    cr_expect_null(sl_object_get(a, "k"));
    cr_expect_null(sl_object_get(NULL, "k"));
    cr_expect_null(sl_object_iter(a));
    cr_expect_null(sl_object_iter(o), "empty object");
    cr_expect_eq(sl_object_len(a), 0);
    cr_expect_eq(sl_object_len(o), 0);
    sl_value_unref(o);
    sl_value_unref(a);
}

Test(value, object_getn)
{
    sl_value *o = sl_value_object();
    sl_object_set(o, "user", sl_value_cstring("u1"));
    cr_expect_str_eq(sl_value_get_string(sl_object_getn(o, "user.name", 4), NULL), "u1");
    cr_expect_null(sl_object_getn(o, "use", 3));
    sl_value_unref(o);
}

Test(value, ref_and_unshare_copy_on_write)
{
    sl_value *o = sl_value_object();
    sl_object_set(o, "n", sl_value_int(1));
    sl_value *inner = sl_value_array();
    sl_array_append(inner, sl_value_int(10));
    sl_object_set(o, "list", inner);

    /* Sole holder: unshare keeps the same value. */
    sl_value *mine = o;
    cr_assert_eq(sl_value_unshare(&mine), 0);
    cr_expect_eq(mine, o);

    /* Two holders: the writer gets a deep copy, the other sees no change. */
    sl_value *other = sl_value_ref(o);
    cr_assert_eq(other, o);
    sl_value *writer = o;
    cr_assert_eq(sl_value_unshare(&writer), 0);
    cr_expect_neq(writer, other);
    cr_expect(sl_value_equal(writer, other));
    sl_object_set(writer, "n", sl_value_int(2));
    sl_array_append(sl_object_get(writer, "list"), sl_value_int(20));
    cr_expect_eq(sl_value_get_int(sl_object_get(other, "n")), 1);
    cr_expect_eq(sl_array_len(sl_object_get(other, "list")), 1);
    cr_expect_eq(sl_array_len(sl_object_get(writer, "list")), 2);

    /* other is now the sole holder of the original. */
    sl_value *again = other;
    cr_assert_eq(sl_value_unshare(&again), 0);
    cr_expect_eq(again, other);

    sl_value_unref(writer);
    sl_value_unref(other);

    sl_value *none = NULL;
    cr_expect_eq(sl_value_unshare(&none), 0);
    cr_expect_null(none);
    cr_expect_eq(sl_value_unshare(NULL), SL_EINVAL);
}

Test(value, get_mut_unshares_children)
{
    sl_value *child = sl_value_object();
    sl_object_set(child, "x", sl_value_int(1));
    sl_value *keep = sl_value_ref(child);

    sl_value *parent = sl_value_object();
    sl_object_set(parent, "c", child);
    sl_value *arr = sl_value_array();
    sl_array_append(arr, sl_value_ref(keep));

    sl_value *m = sl_object_get_mut(parent, "c");
    cr_assert_not_null(m);
    cr_expect_neq(m, keep);
    sl_object_set(m, "x", sl_value_int(2));
    cr_expect_eq(sl_value_get_int(sl_object_get(keep, "x")), 1);
    cr_expect_eq(sl_value_get_int(sl_object_get(sl_object_get(parent, "c"), "x")), 2);
    /* Not shared any more: the same child comes back. */
    cr_expect_eq(sl_object_get_mut(parent, "c"), m);
    cr_expect_null(sl_object_get_mut(parent, "absent"));

    sl_value *am = sl_array_get_mut(arr, 0);
    cr_assert_not_null(am);
    cr_expect_neq(am, keep);
    sl_object_del(am, "x");
    cr_expect_eq(sl_object_len(keep), 1);
    cr_expect_null(sl_array_get_mut(arr, 1));

    sl_value_unref(parent);
    sl_value_unref(arr);
    sl_value_unref(keep);
}

Test(value, deep_copy_is_independent)
{
    sl_value *o = sl_value_object();
    sl_value *a = sl_value_array();
    sl_array_append(a, sl_value_string("x\0y", 3));
    sl_array_append(a, sl_value_double(0.5));
    sl_array_append(a, sl_value_bool(true));
    sl_array_append(a, sl_value_null());
    sl_object_set(o, "a", a);
    sl_object_set(o, "i", sl_value_int(INT64_MIN));

    sl_value *c = sl_value_copy(o);
    cr_assert_not_null(c);
    cr_expect_neq(c, o);
    cr_expect(sl_value_equal(c, o));
    cr_expect_neq(sl_object_get(c, "a"), a);
    sl_array_append(sl_object_get(c, "a"), sl_value_int(1));
    cr_expect_eq(sl_array_len(a), 4);
    void *it = sl_object_iter(c);
    cr_expect_str_eq(sl_object_iter_key(it), "a", "order kept");
    sl_value_unref(c);
    sl_value_unref(o);

    sl_value *cn = sl_value_copy(NULL);
    cr_expect_eq(sl_value_type(cn), SL_TYPE_NULL);
    sl_value_unref(cn);
}

Test(value, shared_children_survive_their_containers)
{
    sl_value *child = sl_value_object();
    sl_object_set(child, "k", sl_value_cstring("v"));
    sl_value *leaf = sl_value_cstring("shared leaf");

    sl_value *p1 = sl_value_object(), *p2 = sl_value_array();
    sl_object_set(p1, "c", sl_value_ref(child));
    sl_object_set(p1, "l", sl_value_ref(leaf));
    sl_object_set(p1, "own", sl_value_int(1));
    sl_array_append(p2, sl_value_ref(child));
    sl_array_append(p2, sl_value_ref(leaf));
    sl_value *nested = sl_value_array();
    sl_array_append(nested, sl_value_ref(child));
    sl_array_append(p2, nested);

    sl_value_unref(p1);   /* releases its hold on child and leaf only */
    cr_expect_str_eq(sl_value_get_string(sl_object_get(child, "k"), NULL), "v");
    cr_expect_str_eq(sl_value_get_string(leaf, NULL), "shared leaf");
    cr_expect_eq(sl_array_get(p2, 0), child);
    cr_expect_eq(sl_array_get(sl_array_get(p2, 2), 0), child);

    /* Replacing and deleting a shared member leaves the other holders be. */
    sl_value *o = sl_value_object();
    sl_object_set(o, "x", sl_value_ref(leaf));
    sl_object_set(o, "x", sl_value_int(2));
    cr_expect_eq(sl_value_get_int(sl_object_get(o, "x")), 2);
    sl_object_set(o, "y", sl_value_ref(child));
    cr_expect_eq(sl_object_del(o, "y"), 0);
    sl_array_set(p2, 1, sl_value_null());
    cr_expect_str_eq(sl_value_get_string(leaf, NULL), "shared leaf");
    cr_expect_eq(sl_object_len(child), 1);
    sl_value_unref(o);

    sl_value_unref(p2);
    sl_value_unref(leaf);
    sl_value_unref(child);   /* the last references: ASan checks nothing leaks */
}

/* A parsed object keeps its numbers and strings in its own allocation
 * (engine/value_internal.h): a reference to such a field keeps the object
 * alive, and putting the field back into the object, into an object
 * nested in it, or into an array leaves nothing that is never freed (ASan
 * and valgrind check the last unref). */
Test(value, parsed_fields_shared_and_moved_between_containers)
{
    const char *text = "{\"a\":1,\"s\":\"text\",\"o\":{},\"l\":[]}";
    sl_value *doc = NULL;
    cr_assert_eq(sl_json_parse(text, strlen(text), NULL, &doc, NULL), 0);
    sl_value *a = sl_value_ref(sl_object_get(doc, "a"));
    sl_value *s = sl_value_ref(sl_object_get(doc, "s"));

    /* Held elsewhere, the fields outlive their object's other holder. */
    sl_value *doc2 = sl_value_ref(doc);
    sl_value_unref(doc);
    cr_expect_eq(sl_value_get_int(a), 1);

    /* Into the same object, a nested one, an array; replaced and back. */
    cr_expect_eq(sl_object_set(doc2, "b", sl_value_ref(a)), 0);
    cr_expect_eq(sl_object_set(sl_object_get(doc2, "o"), "x", sl_value_ref(s)), 0);
    cr_expect_eq(sl_array_append(sl_object_get(doc2, "l"), sl_value_ref(a)), 0);
    cr_expect_eq(sl_array_set(sl_object_get(doc2, "l"), 0, sl_value_ref(s)), 0);
    cr_expect_eq(sl_object_set(doc2, "a", sl_value_int(5)), 0);
    cr_expect_eq(sl_object_set(doc2, "a", sl_value_ref(a)), 0);
    cr_expect_eq(sl_object_del(doc2, "s"), 0);

    sl_buf out;
    sl_buf_init(&out);
    cr_assert_eq(sl_json_dump(doc2, &out), 0);
    cr_expect_str_eq(out.data, "{\"a\":1,\"o\":{\"x\":\"text\"},\"l\":[\"text\"],\"b\":1}");
    sl_buf_fini(&out);
    cr_expect_str_eq(sl_value_get_string(s, NULL), "text");

    /* A writer of a copy sees none of it change under it. */
    sl_value *c = sl_value_ref(doc2);
    cr_expect_eq(sl_value_unshare(&c), 0);
    cr_expect_neq(c, doc2);
    cr_expect(sl_value_equal(c, doc2));
    sl_value_unref(c);

    sl_value_unref(doc2);
    cr_expect_eq(sl_value_get_int(a), 1);
    sl_value_unref(a);
    sl_value_unref(s);   /* the last references: nothing may be left */
}

/* sl_object_build: one allocation, same reads as an object set field by
 * field, a repeated key keeps its first position and its last value, and
 * the result grows and copies like any object. */
Test(value, object_build)
{
    sl_value *tags = sl_value_array();
    cr_assert_eq(sl_array_append(tags, sl_value_cstring("a")), 0);
    sl_member_init m[] = {
        {.key = "id", .key_len = 2, .type = SL_TYPE_INT, .u.i = 42},
        {.key = "ratio", .key_len = 5, .type = SL_TYPE_DOUBLE, .u.d = 0.25},
        {.key = "name", .key_len = 4, .type = SL_TYPE_STRING, .u.str = {"bob\0x", 5}},
        {.key = "none", .key_len = 4, .type = SL_TYPE_NULL},
        {.key = "ok", .key_len = 2, .type = SL_TYPE_BOOL, .u.b = true},
        {.key = "tags", .key_len = 4, .v = tags},
        {.key = "id", .key_len = 2, .type = SL_TYPE_INT, .u.i = 7},
    };
    sl_value *o = sl_object_build(m, 7, 0, 0);
    cr_assert_not_null(o);
    cr_assert_null(m[5].v, "the value was taken over");
    cr_assert_eq(sl_object_len(o), 6);
    void *it = sl_object_iter(o);
    cr_assert_str_eq(sl_object_iter_key(it), "id");
    cr_assert_eq(sl_value_get_int(sl_object_iter_value(it)), 7);
    cr_assert_eq(sl_value_get_double(sl_object_get(o, "ratio")), 0.25);
    size_t len;
    const char *s = sl_value_get_string(sl_object_get(o, "name"), &len);
    cr_assert_eq(len, 5);
    cr_assert_eq(memcmp(s, "bob\0x", 5), 0);
    cr_assert_eq(sl_value_type(sl_object_get(o, "none")), SL_TYPE_NULL);
    cr_assert(sl_value_get_bool(sl_object_get(o, "ok")));
    cr_assert_eq(sl_array_len(sl_object_get(o, "tags")), 1);

    /* Outlive the object through a reference to a member. */
    sl_value *name = sl_value_ref(sl_object_get(o, "name"));
    cr_assert_eq(sl_object_set(o, "extra", sl_value_int(1)), 0);
    cr_assert_eq(sl_object_del(o, "ratio"), 0);
    cr_assert_eq(sl_object_set(o, "name", sl_value_cstring("ann")), 0);
    sl_buf b;
    sl_buf_init(&b);
    cr_assert_eq(sl_json_dump(o, &b), 0);
    cr_assert_str_eq(b.data, "{\"id\":7,\"name\":\"ann\",\"none\":null,\"ok\":true,"
                             "\"tags\":[\"a\"],\"extra\":1}");
    sl_buf_fini(&b);
    sl_value *copy = sl_value_copy(o);
    sl_value_unref(o);
    cr_assert_eq(sl_value_get_string(name, &len)[0], 'b');
    cr_assert_eq(sl_object_len(copy), 6);
    sl_value_unref(copy);
    sl_value_unref(name);
}

/* An invalid scalar type fails and drops every value passed in. */
Test(value, object_build_rejects_invalid_type)
{
    sl_member_init m[] = {
        {.key = "a", .key_len = 1, .v = sl_value_cstring("taken")},
        {.key = "b", .key_len = 1, .type = SL_TYPE_ARRAY},
        {.key = "c", .key_len = 1, .v = sl_value_cstring("also")},
    };
    cr_assert_null(sl_object_build(m, 3, 0, 0));
    cr_assert_null(m[0].v);
    cr_assert_null(m[2].v);
}

/* More members than the builder keeps on its stack. */
Test(value, object_build_many_members)
{
    sl_member_init m[100];
    char keys[100][8];
    for (int i = 0; i < 100; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        m[i] = (sl_member_init){.key = keys[i], .key_len = strlen(keys[i]),
                                .type = SL_TYPE_INT, .u.i = i};
    }
    sl_value *o = sl_object_build(m, 100, 2, 16);
    cr_assert_not_null(o);
    cr_assert_eq(sl_object_len(o), 100);
    cr_assert_eq(sl_value_get_int(sl_object_get(o, "k99")), 99);
    sl_value_unref(o);
}

/* What sl_value_double and sl_object_set do, sl_object_build does too:
 * NaN and infinities read as null; a scalar living inside another
 * container is copied out rather than referenced into it. */
Test(value, object_build_matches_setters)
{
    sl_value *src = NULL;
    cr_assert_eq(sl_json_parse("{\"x\":12,\"s\":\"text\"}", 19, NULL, &src, NULL), 0);
    sl_member_init m[] = {
        {.key = "nan", .key_len = 3, .type = SL_TYPE_DOUBLE, .u.d = NAN},
        {.key = "inf", .key_len = 3, .type = SL_TYPE_DOUBLE, .u.d = -INFINITY},
        {.key = "x", .key_len = 1, .v = sl_value_ref(sl_object_get(src, "x"))},
        {.key = "s", .key_len = 1, .v = sl_value_ref(sl_object_get(src, "s"))},
    };
    sl_value *o = sl_object_build(m, 4, 0, 0);
    cr_assert_not_null(o);
    cr_assert_eq(sl_value_type(sl_object_get(o, "nan")), SL_TYPE_NULL);
    cr_assert_eq(sl_value_type(sl_object_get(o, "inf")), SL_TYPE_NULL);
    /* o holds no reference into src: src goes now, o's copies stay. */
    sl_value_unref(src);
    cr_assert_eq(sl_value_get_int(sl_object_get(o, "x")), 12);
    cr_assert_str_eq(sl_value_get_string(sl_object_get(o, "s"), NULL), "text");
    sl_value_unref(o);
}

/* Sizes no allocation could hold, and a string without bytes, fail
 * cleanly (dropping what was passed in) instead of wrapping around. */
Test(value, object_build_rejects_impossible_sizes)
{
    sl_member_init m[] = {
        {.key = "a", .key_len = 1, .v = sl_value_cstring("dropped")},
    };
    cr_assert_null(sl_object_build(m, 1, SIZE_MAX / 8, 0));
    cr_assert_null(m[0].v);
    m[0].v = sl_value_cstring("dropped");
    cr_assert_null(sl_object_build(m, 1, 0, SIZE_MAX - 10));
    cr_assert_null(m[0].v);
    sl_member_init big[] = {
        {.key = "a", .key_len = 1, .v = sl_value_cstring("dropped")},
        {.key = "b", .key_len = 1, .type = SL_TYPE_STRING, .u.str = {"x", SIZE_MAX - 1}},
        {.key = "c", .key_len = 1, .type = SL_TYPE_STRING, .u.str = {NULL, 3}},
    };
    cr_assert_null(sl_object_build(big, 2, 0, 0));
    cr_assert_null(big[0].v);
    big[0].v = sl_value_cstring("dropped");
    big[1].u.str.len = 1;
    cr_assert_null(sl_object_build(big, 3, 0, 0));
    cr_assert_null(big[0].v);
}

/* Freeing a container drops exactly the references its slots hold, however
 * they got there (parsed, built, set, replaced, deleted, copied on write):
 * run under AddressSanitizer, a missed drop is a leak and an extra one a
 * double free. */
Test(value, container_drops_what_it_holds)
{
    const char *text = "{\"n\":1,\"s\":\"x\",\"a\":[1,\"two\",{\"k\":3}],\"o\":{\"p\":true}}";
    sl_value *v = NULL;
    cr_assert_eq(sl_json_parse(text, strlen(text), NULL, &v, NULL), 0);
    sl_value *inner = sl_value_ref(sl_object_get(v, "o"));
    cr_assert_eq(sl_object_set(v, "n", sl_value_cstring("now a string")), 0);
    cr_assert_eq(sl_object_set(v, "s", sl_value_ref(inner)), 0);   /* held twice */
    cr_assert_eq(sl_object_del(v, "o"), 0);
    sl_value *arr = sl_object_get_mut(v, "a");
    cr_assert_eq(sl_array_set(arr, 0, sl_value_ref(inner)), 0);
    cr_assert_eq(sl_array_append(arr, sl_value_int(4)), 0);
    sl_value *copy = sl_value_copy(v);
    sl_value_unref(v);
    /* v's two references to inner went with v; copy holds copies. */
    cr_assert_eq(sl_value_get_bool(sl_object_get(inner, "p")), true);
    cr_assert_eq(sl_array_len(sl_object_get(copy, "a")), 4);
    sl_value_unref(copy);
    cr_assert_eq(sl_value_get_bool(sl_object_get(inner, "p")), true);
    sl_value_unref(inner);
}
