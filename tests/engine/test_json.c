/* JSON parsing, limits, errors, serialising, and the byte buffer. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"
#include "sluice/value.h"

static sl_value *parse_ok(const char *text)
{
    sl_value *v = NULL;
    sl_json_error err;
    int rc = sl_json_parse(text, strlen(text), NULL, &v, &err);
    cr_assert_eq(rc, 0, "parse %s: %d %s", text, rc, err.text);
    return v;
}

/* The compact dump of v, as a malloc'd string. */
static char *dump(const sl_value *v)
{
    sl_buf b;
    sl_buf_init(&b);
    cr_assert_eq(sl_json_dump(v, &b), 0);
    char *s = strndup(b.data != NULL ? b.data : "", b.len);
    sl_buf_fini(&b);
    return s;
}

static void round_trip(const char *text, const char *expected)
{
    sl_value *v = parse_ok(text);
    char *out = dump(v);
    cr_expect_str_eq(out, expected, "round trip of %s", text);
    free(out);
    sl_value_unref(v);
}

Test(json, parses_all_types)
{
    sl_value *v = parse_ok("{\"n\":null,\"t\":true,\"f\":false,\"i\":-7,\"d\":2.5,"
                           "\"s\":\"h\\u00e9\\n\",\"a\":[1,[2]],\"o\":{\"k\":{}}}");
    cr_expect_eq(sl_value_type(v), SL_TYPE_OBJECT);
    cr_expect_eq(sl_value_type(sl_object_get(v, "n")), SL_TYPE_NULL);
    cr_expect_not_null(sl_object_get(v, "n"));
    cr_expect(sl_value_get_bool(sl_object_get(v, "t")));
    cr_expect_eq(sl_value_type(sl_object_get(v, "f")), SL_TYPE_BOOL);
    cr_expect_eq(sl_value_get_int(sl_object_get(v, "i")), -7);
    cr_expect_eq(sl_value_type(sl_object_get(v, "d")), SL_TYPE_DOUBLE);
    cr_expect_eq(sl_value_get_double(sl_object_get(v, "d")), 2.5);
    cr_expect_str_eq(sl_value_get_string(sl_object_get(v, "s"), NULL), "h\xc3\xa9\n");
    cr_expect_eq(sl_array_len(sl_object_get(v, "a")), 2);
    cr_expect_eq(sl_value_type(sl_object_get(sl_object_get(v, "o"), "k")), SL_TYPE_OBJECT);
    sl_value_unref(v);
}

Test(json, top_level_scalars)
{
    sl_value *v = parse_ok(" 42 ");
    cr_expect_eq(sl_value_get_int(v), 42);
    sl_value_unref(v);
    v = parse_ok("\"x\"");
    cr_expect_str_eq(sl_value_get_string(v, NULL), "x");
    sl_value_unref(v);
    v = parse_ok("null");
    cr_expect_eq(sl_value_type(v), SL_TYPE_NULL);
    sl_value_unref(v);
}

Test(json, int64_precision_and_extremes)
{
    round_trip("9007199254740993", "9007199254740993");
    round_trip("9223372036854775807", "9223372036854775807");
    round_trip("-9223372036854775808", "-9223372036854775808");
    sl_value *v = parse_ok("[9007199254740993]");
    cr_expect_eq(sl_value_get_int(sl_array_get(v, 0)), INT64_C(9007199254740993));
    sl_value_unref(v);
}

Test(json, huge_numbers)
{
    sl_value *v = NULL;
    sl_json_error err;
    /* Integers beyond int64 are refused, not rounded. */
    const char *big = "[12345678901234567890123]";
    cr_expect_eq(sl_json_parse(big, strlen(big), NULL, &v, &err), SL_EPARSE);
    cr_expect_null(v);
    cr_expect(strstr(err.text, "too big integer") != NULL, "%s", err.text);
    const char *over = "9223372036854775808";
    cr_expect_eq(sl_json_parse(over, strlen(over), NULL, &v, &err), SL_EPARSE);
    /* Doubles beyond the range overflow; huge exponents of zero are fine. */
    const char *inf = "1e400";
    cr_expect_eq(sl_json_parse(inf, strlen(inf), NULL, &v, &err), SL_EPARSE);
    cr_expect(strstr(err.text, "overflow") != NULL, "%s", err.text);
    round_trip("1.5e300", "1.5e+300");
    round_trip("0e99999", "0.0");
    round_trip("1e-400", "0.0");
}

Test(json, doubles_round_trip_shortest)
{
    round_trip("[0.1,1.0,12.5,-0.0,1e21,123456789.123,5e-324,1.7976931348623157e308]",
               "[0.1,1.0,12.5,-0.0,1e+21,123456789.123,4.94065645841247e-324,"
               "1.7976931348623157e+308]");
    round_trip("2.0000000000000004", "2.0000000000000004");
    round_trip("100", "100");
    round_trip("100.0", "100.0");

    /* Every printed double reads back as the same double. */
    unsigned long long x = 88172645463325252ULL;
    for (int i = 0; i < 2000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        uint64_t bits = x & ~(UINT64_C(0x7ff) << 52);   /* finite exponents only */
        bits |= (uint64_t)(x % 2046 + 1) << 52;
        memcpy(&d, &bits, sizeof(d));
        sl_value *v = sl_value_double(d);
        char *s = dump(v);
        sl_value *back = NULL;
        cr_assert_eq(sl_json_parse(s, strlen(s), NULL, &back, NULL), 0, "%s", s);
        cr_assert_eq(sl_value_type(back), SL_TYPE_DOUBLE, "%s", s);
        cr_assert_eq(sl_value_get_double(back), d, "%s", s);
        sl_value_unref(back);
        sl_value_unref(v);
        free(s);
    }
}

Test(json, short_decimals_print_short)
{
    round_trip("[12.5,-0.5,0.001,0.0001,123.456,0.3,100.25,-7.125,99999999999999.9]",
               "[12.5,-0.5,0.001,0.0001,123.456,0.3,100.25,-7.125,99999999999999.9]");
    round_trip("[0.00001,1.5e-7,123456789012345.6]", "[1e-05,1.5e-07,123456789012345.6]");

    /* Every decimal with up to 4 places prints as itself and reads back. */
    for (int i = -20000; i <= 20000; i += 7) {
        for (int k = 1; k <= 4; k++) {
            char text[32];
            snprintf(text, sizeof(text), "%.*f", k, i / 10000.0);
            double d = strtod(text, NULL);
            sl_value *v = sl_value_double(d);
            char *out = dump(v);
            cr_assert_eq(strtod(out, NULL), d, "%s printed as %s", text, out);
            cr_assert_leq(strlen(out), strlen(text) + 2, "%s printed as %s", text, out);
            free(out);
            sl_value_unref(v);
        }
    }
}

Test(json, nul_in_strings)
{
    const char *text = "[\"a\\u0000b\"]";
    sl_value *v = parse_ok(text);
    size_t len = 0;
    const char *s = sl_value_get_string(sl_array_get(v, 0), &len);
    cr_expect_eq(len, 3);
    cr_expect(memcmp(s, "a\0b", 3) == 0);
    char *out = dump(v);
    cr_expect_str_eq(out, text);
    free(out);
    sl_value_unref(v);
}

Test(json, nul_in_keys_is_refused)
{
    const char *text = "{\"a\\u0000b\":1}";
    sl_value *v = NULL;
    sl_json_error err;
    cr_expect_eq(sl_json_parse(text, strlen(text), NULL, &v, &err), SL_EPARSE);
    cr_expect(strstr(err.text, "NUL") != NULL, "%s", err.text);
}

Test(json, string_escapes_written)
{
    sl_value *s = sl_value_string("q\"b\\/\b\f\n\r\t\x01\x1f\x7f", 13);
    char *out = dump(s);
    cr_expect_str_eq(out, "\"q\\\"b\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\"");
    free(out);
    sl_value_unref(s);
}

Test(json, utf8_passes_through_and_bad_bytes_become_replacement)
{
    round_trip("\"h\\u00e9 \xe2\x82\xac \xf0\x9f\x98\x80 \\ud83d\\ude00\"",
               "\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf0\x9f\x98\x80\"");
    /* Invalid: lone continuation, truncated sequence, overlong, surrogate,
     * beyond U+10FFFF. */
    sl_value *s = sl_value_string("a\x80" "b\xe2\x82" "c\xc0\xaf" "d\xed\xa0\x80" "e\xf4\x90\x80\x80",
                                  17);
    char *out = dump(s);
    cr_expect_str_eq(out, "\"a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd"
                          "c\xef\xbf\xbd\xef\xbf\xbd"
                          "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                          "e\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    sl_value *back = NULL;
    cr_expect_eq(sl_json_parse(out, strlen(out), NULL, &back, NULL), 0, "output is valid JSON");
    sl_value_unref(back);
    free(out);
    sl_value_unref(s);
}

Test(json, invalid_utf8_rejected)
{
    static const char *bad[] = {"\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"a\xe2\x82\"",
                                "[\"\x80\"]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sl_value *v = NULL;
        sl_json_error err;
        cr_expect_eq(sl_json_parse(bad[i], strlen(bad[i]), NULL, &v, &err), SL_EPARSE, "case %zu", i);
        cr_expect_null(v);
        cr_expect_neq(err.text[0], '\0');
    }
}

Test(json, object_order_and_duplicates)
{
    round_trip("{\"b\":1,\"a\":2,\"c\":{\"z\":1,\"y\":2}}", "{\"b\":1,\"a\":2,\"c\":{\"z\":1,\"y\":2}}");
    round_trip("{\"a\":1,\"b\":2,\"a\":3}", "{\"a\":3,\"b\":2}");
    round_trip(" [ ] ", "[]");
    round_trip("{ }", "{}");
}

Test(json, errors_have_line_and_column)
{
    const char *text = "{\"a\": 1,\n  \"b\": }";
    sl_value *v = NULL;
    sl_json_error err;
    cr_assert_eq(sl_json_parse(text, strlen(text), NULL, &v, &err), SL_EPARSE);
    cr_expect_null(v);
    cr_expect_eq(err.line, 2);
    cr_expect_eq(err.column, 8);
    cr_expect_eq(err.position, strlen(text));
    cr_expect(strstr(err.text, "unexpected token") != NULL, "%s", err.text);

    text = "[1, 2";
    cr_assert_eq(sl_json_parse(text, strlen(text), NULL, &v, &err), SL_EPARSE);
    cr_expect_eq(err.line, 1);
    cr_expect(strstr(err.text, "']' expected") != NULL, "%s", err.text);

    cr_expect_eq(sl_json_parse("", 0, NULL, &v, &err), SL_EPARSE);
    cr_expect_eq(err.line, 1);
    cr_expect_eq(err.column, 1);
    cr_expect_eq(sl_json_parse(NULL, 0, NULL, &v, &err), SL_EPARSE);
    cr_expect_eq(sl_json_parse("   \n ", 5, NULL, &v, &err), SL_EPARSE);
    cr_expect_eq(err.line, 2);
}

Test(json, trailing_garbage_rejected)
{
    static const char *bad[] = {"[1] x", "{} {}", "1 2", "\"a\"\"b\"", "[1]]", "nulll"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sl_value *v = NULL;
        cr_expect_eq(sl_json_parse(bad[i], strlen(bad[i]), NULL, &v, NULL), SL_EPARSE, "%s", bad[i]);
        cr_expect_null(v);
    }
    round_trip("[1]\n", "[1]");
}

Test(json, raw_nul_byte_rejected)
{
    static const struct {
        const char *text;
        size_t len;
        int column;
    } cases[] = {{"123\0", 4, 4}, {"[1]\0", 4, 4}, {"[\"a\0\"]", 5, 4}, {"\n {\0}", 4, 3}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sl_value *v = NULL;
        sl_json_error err;
        cr_expect_eq(sl_json_parse(cases[i].text, cases[i].len, NULL, &v, &err), SL_EPARSE, "case %zu", i);
        cr_expect_null(v);
        cr_expect_eq(err.column, cases[i].column, "case %zu", i);
        cr_expect_str_eq(err.text, "NUL byte in JSON text");
    }
}

Test(json, length_bounds_the_input)
{
    /* Only len bytes are read; what follows does not matter. */
    const char *text = "[1,2]garbage";
    sl_value *v = NULL;
    cr_assert_eq(sl_json_parse(text, 5, NULL, &v, NULL), 0);
    cr_expect_eq(sl_array_len(v), 2);
    sl_value_unref(v);
    cr_expect_eq(sl_json_parse(text, 4, NULL, &v, NULL), SL_EPARSE);
}

Test(json, invalid_arguments)
{
    sl_value *v = NULL;
    sl_json_error err;
    cr_expect_eq(sl_json_parse("1", 1, NULL, NULL, &err), SL_EINVAL);
    cr_expect_eq(sl_json_parse(NULL, 3, NULL, &v, &err), SL_EINVAL);
    cr_expect_null(v);
}

static char *nested(size_t depth, char open, char close)
{
    char *s = malloc(2 * depth + 1);
    cr_assert_not_null(s);
    memset(s, open, depth);
    memset(s + depth, close, depth);
    s[2 * depth] = '\0';
    return s;
}

Test(json, depth_limit_default)
{
    char *ok = nested(512, '[', ']');
    sl_value *v = NULL;
    cr_expect_eq(sl_json_parse(ok, strlen(ok), NULL, &v, NULL), 0);
    sl_value_unref(v);
    free(ok);

    char *deep = nested(513, '[', ']');
    sl_json_error err;
    v = NULL;
    cr_expect_eq(sl_json_parse(deep, strlen(deep), NULL, &v, &err), SL_ELIMIT);
    cr_expect_null(v);
    cr_expect_eq(err.line, 1);
    cr_expect_eq(err.column, 513);
    cr_expect_eq(err.position, 512);
    cr_expect(strstr(err.text, "512") != NULL, "%s", err.text);
    free(deep);
}

/* 100,000 levels of {"a":{"a":...}}. */
static char *nested_objects(size_t depth)
{
    char *s = malloc(6 * depth + 2);
    cr_assert_not_null(s);
    char *p = s;
    for (size_t i = 0; i < depth; i++, p += 5)
        memcpy(p, "{\"a\":", 5);
    *p++ = '1';
    memset(p, '}', depth);
    p[depth] = '\0';
    return s;
}

Test(json, hundred_thousand_deep_is_a_limit_error)
{
    char *docs[] = {nested(100000, '[', ']'), nested_objects(100000)};
    for (size_t i = 0; i < 2; i++) {
        sl_value *v = NULL;
        sl_json_error err;
        cr_expect_eq(sl_json_parse(docs[i], strlen(docs[i]), NULL, &v, &err), SL_ELIMIT);
        cr_expect_null(v);
        cr_expect(strstr(err.text, "nesting deeper than the limit of 512") != NULL, "%s", err.text);
        /* A limit above the parser's own maximum still fails cleanly. */
        sl_json_limits lim = {.max_depth = 1000000};
        cr_expect_eq(sl_json_parse(docs[i], strlen(docs[i]), &lim, &v, &err), SL_ELIMIT);
        cr_expect_null(v);
        cr_expect(strstr(err.text, "nesting") != NULL, "%s", err.text);
        cr_expect_gt(err.column, 0);
        free(docs[i]);
    }
}

Test(json, nesting_up_to_the_parser_maximum)
{
    sl_json_limits lim = {.max_depth = 2047};
    char *ok = nested_objects(2047);
    sl_value *v = NULL;
    cr_expect_eq(sl_json_parse(ok, strlen(ok), &lim, &v, NULL), 0);
    sl_value_unref(v);
    free(ok);

    char *deep = nested_objects(2048);
    sl_json_error err;
    lim.max_depth = 5000;
    cr_expect_eq(sl_json_parse(deep, strlen(deep), &lim, &v, &err), SL_ELIMIT);
    cr_expect(strstr(err.text, "parser maximum of 2047") != NULL, "%s", err.text);
    lim.max_depth = 2047;
    cr_expect_eq(sl_json_parse(deep, strlen(deep), &lim, &v, &err), SL_ELIMIT);
    cr_expect(strstr(err.text, "limit of 2047") != NULL, "%s", err.text);
    free(deep);
}

Test(json, depth_limit_custom_and_strings_do_not_count)
{
    sl_json_limits lim = {.max_depth = 2};
    sl_value *v = NULL;
    const char *ok = "[{\"a\":\"[[[[{{{{\\\"[[[\"}]                ";
    cr_expect_eq(sl_json_parse(ok, strlen(ok), &lim, &v, NULL), 0);
    sl_value_unref(v);
    const char *bad = "[{\"a\":\n [1]}]                          ";
    sl_json_error err;
    cr_expect_eq(sl_json_parse(bad, strlen(bad), &lim, &v, &err), SL_ELIMIT);
    cr_expect_eq(err.line, 2);
    cr_expect_eq(err.column, 2);
}

Test(json, size_limit)
{
    sl_json_limits lim = {.max_bytes = 8};
    sl_value *v = NULL;
    sl_json_error err;
    cr_expect_eq(sl_json_parse("[1,2,3]", 7, &lim, &v, &err), 0);
    sl_value_unref(v);
    v = NULL;
    cr_expect_eq(sl_json_parse("[1,2,3,4]", 9, &lim, &v, &err), SL_ELIMIT);
    cr_expect_null(v);
    cr_expect(strstr(err.text, "limit of 8 bytes") != NULL, "%s", err.text);
}

Test(json, default_size_limit_is_16_mib)
{
    size_t len = ((size_t)16 << 20) + 1;
    char *big = malloc(len);
    cr_assert_not_null(big);
    memset(big, ' ', len);
    big[0] = '1';
    sl_value *v = NULL;
    cr_expect_eq(sl_json_parse(big, len, NULL, &v, NULL), SL_ELIMIT);
    cr_expect_eq(sl_json_parse(big, len - 1, NULL, &v, NULL), 0);
    cr_expect_eq(sl_value_get_int(v), 1);
    sl_value_unref(v);
    free(big);
}

Test(json, dump_built_values)
{
    sl_value *o = sl_value_object();
    sl_object_set(o, "id", sl_value_int(7));
    sl_object_set(o, "ok", sl_value_bool(true));
    sl_object_set(o, "none", NULL);   /* refused, consumed */
    sl_object_set(o, "nil", sl_value_null());
    sl_object_set(o, "ratio", sl_value_double(1.0));
    sl_object_set(o, "k\"ey", sl_value_array());
    char *out = dump(o);
    cr_expect_str_eq(out, "{\"id\":7,\"ok\":true,\"nil\":null,\"ratio\":1.0,\"k\\\"ey\":[]}");
    free(out);
    sl_value_unref(o);

    out = dump(NULL);
    cr_expect_str_eq(out, "null");
    free(out);
}

Test(json, dump_appends)
{
    sl_buf b;
    sl_buf_init(&b);
    sl_value *one = sl_value_int(1);
    cr_assert_eq(sl_buf_append(&b, "x=", 2), 0);
    cr_assert_eq(sl_json_dump(one, &b), 0);
    cr_assert_eq(sl_buf_putc(&b, '\n'), 0);
    cr_expect_eq(b.len, 4);
    cr_expect_str_eq(b.data, "x=1\n");
    sl_buf_reset(&b);
    cr_expect_eq(b.len, 0);
    cr_expect_str_eq(b.data, "");
    sl_value_unref(one);
    sl_buf_fini(&b);
    cr_expect_null(b.data);
}

Test(json, buf_grows)
{
    sl_buf b;
    sl_buf_init(&b);
    cr_expect_eq(sl_buf_append(&b, "", 0), 0);
    for (int i = 0; i < 10000; i++)
        cr_assert_eq(sl_buf_append(&b, "abcdefgh", 8), 0);
    cr_expect_eq(b.len, 80000);
    cr_expect_geq(b.cap, b.len + 1);
    cr_expect_eq(b.data[b.len], '\0');
    cr_expect_eq(memcmp(b.data + 79992, "abcdefgh", 8), 0);
    sl_buf_fini(&b);
}
