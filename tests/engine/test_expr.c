/* The expression language: parsing, evaluation, errors and limits. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/expr_internal.h"
#include "sluice/error.h"
#include "sluice/expr.h"
#include "sluice/record.h"
#include "sluice/value.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static sl_record *rec_json(const char *json)
{
    sl_value *v = NULL;
    cr_assert_eq(sl_json_parse(json, strlen(json), NULL, &v, NULL), 0,
                 "bad test JSON: %s", json);
    sl_record *r = sl_record_new();
    cr_assert_not_null(r);
    cr_assert_eq(sl_record_set_fields(r, v), 0);
    return r;
}

static sl_expr *compile_ok(const char *src)
{
    sl_expr *e = NULL;
    sl_expr_error err;
    int rc = sl_expr_compile(src, &e, &err);
    cr_assert_eq(rc, 0, "compile '%s': %d at %d: %s", src, rc, err.column,
                 err.text);
    return e;
}

/* Evaluate src against json (NULL: no record); the result, boxed. */
static sl_value *eval_on(const char *src, const char *json)
{
    sl_expr *e = compile_ok(src);
    sl_record *r = json != NULL ? rec_json(json) : NULL;
    sl_value *v = NULL;
    sl_expr_error err;
    sl_expr_env env = {.seq = 7, .now_ns = 1234};
    int rc = sl_expr_eval(e, r, &env, &v, &err);
    cr_assert_eq(rc, 0, "eval '%s': %d at %d: %s", src, rc, err.column,
                 err.text);
    sl_record_free(r);
    sl_expr_destroy(e);
    return v;
}

/* The result of src on json, as compact JSON text. */
static char *eval_json(const char *src, const char *json)
{
    sl_value *v = eval_on(src, json);
    sl_buf b;
    sl_buf_init(&b);
    cr_assert_eq(sl_json_dump(v, &b), 0);
    char *s = strndup(b.data != NULL ? b.data : "", b.len);
    sl_buf_fini(&b);
    sl_value_unref(v);
    return s;
}

#define expect_json(src, json, want)                                        \
    do {                                                                    \
        char *got_ = eval_json((src), (json));                              \
        cr_expect_str_eq(got_, (want), "%s", (src));                        \
        free(got_);                                                         \
    } while (0)

static bool truth(const char *src, const char *json)
{
    sl_expr *e = compile_ok(src);
    sl_record *r = json != NULL ? rec_json(json) : NULL;
    bool b = false;
    sl_expr_error err;
    int rc = sl_expr_eval_bool(e, r, NULL, &b, &err);
    cr_assert_eq(rc, 0, "eval '%s': %d at %d: %s", src, rc, err.column,
                 err.text);
    sl_record_free(r);
    sl_expr_destroy(e);
    return b;
}

/* An evaluation error: its code, column and text. */
static int eval_err(const char *src, const char *json, sl_expr_error *err)
{
    sl_expr *e = compile_ok(src);
    sl_record *r = json != NULL ? rec_json(json) : NULL;
    sl_value *v = NULL;
    int rc = sl_expr_eval(e, r, NULL, &v, err);
    cr_assert_lt(rc, 0, "'%s' should fail", src);
    cr_assert_null(v);
    /* The bool form fails the same way. */
    bool b;
    sl_expr_error err2;
    cr_assert_eq(sl_expr_eval_bool(e, r, NULL, &b, &err2), rc);
    cr_assert_str_eq(err2.text, err->text);
    sl_record_free(r);
    sl_expr_destroy(e);
    return rc;
}

#define expect_eval_error(src, json, want_code, want_col, want_text)        \
    do {                                                                    \
        sl_expr_error err_;                                                 \
        cr_expect_eq(eval_err((src), (json), &err_), (want_code), "%s",     \
                     (src));                                                \
        cr_expect_eq(err_.column, (want_col), "%s: column %d (%s)", (src),  \
                     err_.column, err_.text);                               \
        cr_expect_str_eq(err_.text, (want_text), "%s: got \"%s\"", (src),  \
                         err_.text);                                        \
    } while (0)

#define expect_compile_error(src, want_col, want_text)                      \
    do {                                                                    \
        sl_expr *e_ = NULL;                                                 \
        sl_expr_error err_;                                                 \
        cr_expect_eq(sl_expr_compile((src), &e_, &err_), SL_EPARSE, "%s",   \
                     (src));                                                \
        cr_expect_null(e_);                                                 \
        cr_expect_eq(err_.column, (want_col), "%s: column %d (%s)", (src),  \
                     err_.column, err_.text);                               \
        cr_expect_str_eq(err_.text, (want_text), "%s: got \"%s\"", (src),  \
                         err_.text);                                        \
    } while (0)

/* ------------------------------------------------------------------ */
/* Literals and fields                                                 */
/* ------------------------------------------------------------------ */

Test(expr, literals)
{
    expect_json("42", NULL, "42");
    expect_json("-42", NULL, "-42");
    expect_json("2.5", NULL, "2.5");
    expect_json("1e3", NULL, "1000.0");
    expect_json("1.5e-3", NULL, "0.0015");
    expect_json("true", NULL, "true");
    expect_json("false", NULL, "false");
    expect_json("null", NULL, "null");
    expect_json("9223372036854775807", NULL, "9223372036854775807");
    expect_json("-9223372036854775808", NULL, "-9223372036854775808");
    expect_json("\"text\"", NULL, "\"text\"");
    expect_json("'single'", NULL, "\"single\"");
}

Test(expr, string_escapes)
{
    expect_json("\"a\\\"b\\\\c\\/d\"", NULL, "\"a\\\"b\\\\c/d\"");
    expect_json("'it\\'s'", NULL, "\"it's\"");
    expect_json("\"\\n\\t\\r\"", NULL, "\"\\n\\t\\r\"");
    expect_json("\"\\x41\\u00e9\"", NULL, "\"A\xc3\xa9\"");
    expect_json("\"\\ud83d\\ude00\"", NULL, "\"\xf0\x9f\x98\x80\"");
    expect_json("len(\"a\\0b\")", NULL, "3");
}

Test(expr, field_paths)
{
    const char *j = "{\"a\":{\"b\":[10,20,{\"c\":\"deep\"}]},"
                    "\"key with space\":1,\"h\":{\"content-type\":\"json\"},"
                    "\"i\":1,\"null\":5}";
    expect_json("a.b[0]", j, "10");
    expect_json("a.b[1]", j, "20");
    expect_json("a.b[-1].c", j, "\"deep\"");
    expect_json("a.b[2][\"c\"]", j, "\"deep\"");
    expect_json("a[\"b\"][1]", j, "20");
    expect_json("h[\"content-type\"]", j, "\"json\"");
    expect_json("$[\"key with space\"]", j, "1");
    expect_json("$.i", j, "1");
    expect_json("$.null", j, "5");
    expect_json("a.b[i]", j, "20");
    expect_json("a.b[i + 1].c", j, "\"deep\"");
    expect_json("a.b", j, "[10,20,{\"c\":\"deep\"}]");
    expect_json("len($)", j, "5");
}

Test(expr, missing_fields_are_null)
{
    const char *j = "{\"a\":{\"b\":[1]},\"s\":\"x\",\"n\":3}";
    expect_json("nope", j, "null");
    expect_json("a.nope", j, "null");
    expect_json("a.b[5]", j, "null");
    expect_json("a.b[-2]", j, "null");
    expect_json("n.x", j, "null");        /* a step into a scalar */
    expect_json("s[0]", j, "null");
    expect_json("a[0]", j, "null");       /* an index on an object */
    expect_json("a.b[\"k\"]", j, "null");  /* a key on an array */
    expect_json("nope", NULL, "null");    /* no record at all */
    expect_json("$", NULL, "null");
    cr_expect(truth("nope == null", j));
    cr_expect(!truth("nope", j));
}

Test(expr, composite_results_are_shared)
{
    sl_expr *e = compile_ok("a");
    sl_record *r = rec_json("{\"a\":{\"b\":1}}");
    sl_value *v = NULL;
    cr_assert_eq(sl_expr_eval(e, r, NULL, &v, NULL), 0);
    cr_expect_eq(v, sl_record_get(r, "a"));
    sl_value_unref(v);
    sl_record_free(r);
    sl_expr_destroy(e);
}

/* ------------------------------------------------------------------ */
/* Operators                                                           */
/* ------------------------------------------------------------------ */

Test(expr, precedence)
{
    expect_json("1 + 2 * 3", NULL, "7");
    expect_json("(1 + 2) * 3", NULL, "9");
    expect_json("10 - 4 - 3", NULL, "3");           /* left-associative */
    expect_json("100 / 10 / 5", NULL, "2");
    expect_json("2 * 3 % 4", NULL, "2");
    expect_json("-2 * 3", NULL, "-6");
    expect_json("- (2 + 3)", NULL, "-5");
    expect_json("1 + 1 == 2", NULL, "true");
    expect_json("(1 < 2) == true", NULL, "true");
    expect_json("!false && false", NULL, "false");
    expect_json("!(false && false)", NULL, "true");
    expect_json("true || false && false", NULL, "true");
    expect_json("(true || false) && false", NULL, "false");
    expect_json("1 > 2 || 3 > 2 ? \"y\" : \"n\"", NULL, "\"y\"");
    expect_json("false ? 1 : true ? 2 : 3", NULL, "2");   /* right-assoc */
    expect_json("true ? false ? 1 : 2 : 3", NULL, "2");
    expect_json("--3", NULL, "3");
    expect_json("!!1", NULL, "true");
}

Test(expr, arithmetic)
{
    expect_json("7 / 2", NULL, "3");
    expect_json("-7 / 2", NULL, "-3");
    expect_json("7 % 3", NULL, "1");
    expect_json("-7 % 3", NULL, "-1");
    expect_json("7 / 2.0", NULL, "3.5");
    expect_json("7.0 / 2", NULL, "3.5");
    expect_json("1 + 0.5", NULL, "1.5");
    expect_json("2.5 * 2", NULL, "5.0");
    expect_json("7.5 % 2", NULL, "1.5");
    expect_json("3 - 5", NULL, "-2");
    expect_json("\"ab\" + \"cd\"", NULL, "\"abcd\"");
    expect_json("\"\" + s", "{\"s\":\"x\"}", "\"x\"");
    expect_json("a + b", "{\"a\":2,\"b\":0.25}", "2.25");
    expect_json("-x", "{\"x\":1.5}", "-1.5");
    expect_json("(seq() * 7919) % 1000 / 10.0", NULL, "43.3");
    expect_json("-9223372036854775807 - 1", NULL, "-9223372036854775808");
    expect_json("-9223372036854775808 % -1", NULL, "0");
}

Test(expr, long_concatenation_uses_scratch)
{
    /* More than the inline scratch buffer: heap chunks, freed after. */
    char src[4096];
    size_t n = 0;
    n += (size_t)snprintf(src + n, sizeof(src) - n, "s");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(src + n, sizeof(src) - n, " + s");
    sl_value *v = eval_on(src, "{\"s\":\"0123456789\"}");
    size_t len = 0;
    cr_assert_not_null(sl_value_get_string(v, &len));
    cr_expect_eq(len, 1010);
    sl_value_unref(v);
}

Test(expr, overflow_is_a_range_error)
{
    expect_eval_error("9223372036854775807 + 1", NULL, SL_ERANGE, 21,
                      "integer overflow: 9223372036854775807 + 1");
    expect_eval_error("x - 1", "{\"x\":-9223372036854775808}", SL_ERANGE, 3,
                      "integer overflow: -9223372036854775808 - 1");
    expect_eval_error("x * 2", "{\"x\":9223372036854775807}", SL_ERANGE, 3,
                      "integer overflow: 9223372036854775807 * 2");
    expect_eval_error("x / -1", "{\"x\":-9223372036854775808}", SL_ERANGE, 3,
                      "integer overflow: -9223372036854775808 / -1");
    expect_eval_error("-x", "{\"x\":-9223372036854775808}", SL_ERANGE, 1,
                      "integer overflow: -(-9223372036854775808)");
    expect_eval_error("1e308 * 10", NULL, SL_ERANGE, 7,
                      "floating-point overflow: 1e+308 * 10");
}

Test(expr, division_by_zero)
{
    expect_eval_error("1 / 0", NULL, SL_ERANGE, 3, "division by zero");
    expect_eval_error("1.5 / 0", NULL, SL_ERANGE, 5, "division by zero");
    expect_eval_error("1 / x", "{\"x\":0.0}", SL_ERANGE, 3, "division by zero");
    expect_eval_error("5 % 0", NULL, SL_ERANGE, 3, "division by zero (in %)");
    expect_eval_error("5.5 % 0.0", NULL, SL_ERANGE, 5,
                      "division by zero (in %)");
}

Test(expr, type_errors)
{
    expect_eval_error("\"a\" + 1", NULL, SL_ETYPE, 5,
                      "cannot add string and int");
    expect_eval_error("1 - \"a\"", NULL, SL_ETYPE, 3,
                      "cannot subtract int and string");
    expect_eval_error("true * 2", NULL, SL_ETYPE, 6,
                      "cannot multiply bool and int");
    expect_eval_error("\"a\" / \"b\"", NULL, SL_ETYPE, 5,
                      "cannot divide string and string");
    expect_eval_error("a % 2", "{\"a\":[1]}", SL_ETYPE, 3,
                      "cannot take the remainder of array and int");
    expect_eval_error("latency_ms / 1000.0", "{}", SL_ETYPE, 12,
                      "cannot divide null and double (latency_ms is missing "
                      "or null)");
    expect_eval_error("1 + a.b", "{}", SL_ETYPE, 3,
                      "cannot add int and null (a.b is missing or null)");
    expect_eval_error("-s", "{\"s\":\"x\"}", SL_ETYPE, 1,
                      "cannot negate string");
    expect_eval_error("-missing", "{}", SL_ETYPE, 1,
                      "cannot negate null (missing is missing or null)");
}

Test(expr, comparison)
{
    cr_expect(truth("1 == 1.0", NULL));
    cr_expect(truth("2 > 1.5", NULL));
    cr_expect(truth("1.5 < 2", NULL));
    cr_expect(truth("3 >= 3", NULL));
    cr_expect(truth("3 <= 3.0", NULL));
    cr_expect(truth("3 != 4", NULL));
    cr_expect(!truth("3 != 3", NULL));
    /* Exact across int and double even above 2^53. */
    cr_expect(truth("9007199254740993 > 9007199254740992.0", NULL));
    cr_expect(truth("9007199254740993 != 9007199254740992.0", NULL));
    cr_expect(truth("9223372036854775807 < 9223372036854775808.0", NULL));
    cr_expect(truth("-9223372036854775808 == -9223372036854775808.0", NULL));
    cr_expect(truth("2 < 2.5 && 3 > 2.5", NULL));
    /* Strings: bytes, lexicographically. */
    cr_expect(truth("\"abc\" < \"abd\"", NULL));
    cr_expect(truth("\"ab\" < \"abc\"", NULL));
    cr_expect(truth("\"B\" < \"a\"", NULL));
    cr_expect(truth("\"x\" == 'x'", NULL));
    /* Equality never errors: other types are just unequal. */
    cr_expect(!truth("1 == \"1\"", NULL));
    cr_expect(truth("1 != \"1\"", NULL));
    cr_expect(!truth("true == 1", NULL));
    cr_expect(truth("null == null", NULL));
    cr_expect(truth("a == b", "{\"a\":[1,{\"x\":2}],\"b\":[1,{\"x\":2}]}"));
    cr_expect(!truth("a == b", "{\"a\":[1],\"b\":[2]}"));
    cr_expect(truth("a == $.a", "{\"a\":{\"k\":1}}"));
}

Test(expr, comparing_missing_fields_is_false)
{
    cr_expect(!truth("status >= 500", "{}"));
    cr_expect(!truth("status < 500", "{}"));
    cr_expect(!truth("status > \"a\"", "{}"));
    cr_expect(!truth("500 <= status", "{}"));
    cr_expect(truth("status != 500", "{}"));
    cr_expect(!truth("status == 500", "{}"));
    cr_expect(truth("!(status >= 500)", "{}"));
}

Test(expr, ordering_mixed_types_is_a_type_error)
{
    expect_eval_error("\"a\" < 1", NULL, SL_ETYPE, 5,
                      "cannot compare string and int (convert one with "
                      "to_int, to_float or to_string)");
    expect_eval_error("status >= \"500\"", "{\"status\":503}", SL_ETYPE, 8,
                      "cannot compare int and string (convert one with "
                      "to_int, to_float or to_string)");
    expect_eval_error("true > false", NULL, SL_ETYPE, 6,
                      "cannot compare bool and bool (convert one with "
                      "to_int, to_float or to_string)");
}

Test(expr, logic_and_truthiness)
{
    cr_expect(!truth("false", NULL));
    cr_expect(!truth("null", NULL));
    cr_expect(!truth("0", NULL));
    cr_expect(!truth("0.0", NULL));
    cr_expect(!truth("\"\"", NULL));
    cr_expect(truth("\"0\"", NULL));
    cr_expect(truth("\"false\"", NULL));
    cr_expect(truth("-1", NULL));
    cr_expect(truth("0.1", NULL));
    cr_expect(truth("a", "{\"a\":[]}"));
    cr_expect(truth("a", "{\"a\":{}}"));
    expect_json("1 && \"x\"", NULL, "true");    /* logic yields bools */
    expect_json("0 || \"\"", NULL, "false");
    expect_json("!\"\"", NULL, "true");
    expect_json("\"\" ? 1 : 2", NULL, "2");
}

Test(expr, short_circuit)
{
    /* The right side would fail; it is never evaluated. */
    cr_expect(!truth("false && 1 / 0 == 1", NULL));
    cr_expect(truth("true || 1 / 0 == 1", NULL));
    cr_expect(!truth("status >= 500 && 1 / 0", "{\"status\":200}"));
    expect_json("true ? 1 : 1 / 0", NULL, "1");
    expect_json("false ? 1 / 0 : 2", NULL, "2");
    expect_json("false ? \"a\" + 1 : \"ok\"", NULL, "\"ok\"");
    /* ...and is when needed. */
    expect_eval_error("true && 1 / 0", NULL, SL_ERANGE, 11,
                      "division by zero");
    expect_eval_error("false || 1 / 0", NULL, SL_ERANGE, 12,
                      "division by zero");
}

/* ------------------------------------------------------------------ */
/* Regular expressions                                                 */
/* ------------------------------------------------------------------ */

Test(expr, regex_match)
{
    const char *j = "{\"path\":\"/api/v2/users\",\"n\":5}";
    cr_expect(truth("path =~ \"^/api/\"", j));
    cr_expect(!truth("path =~ \"^/web/\"", j));
    cr_expect(truth("path =~ \"users$\"", j));
    cr_expect(truth("path =~ \"v2\"", j));
    cr_expect(truth("path =~ \"^/api/v2/users$\"", j));
    cr_expect(!truth("path =~ \"^/api/v2$\"", j));
    cr_expect(truth("path =~ \"^/api/v[0-9]+/\"", j));
    cr_expect(truth("path =~ \"(users|groups)$\"", j));
    cr_expect(!truth("path =~ \"^/API\"", j));
    cr_expect(truth("lower(\"/API\") =~ \"^/api\"", j));
    cr_expect(truth("path !~ \"^/web/\"", j));
    cr_expect(!truth("path !~ \"^/api/\"", j));
    cr_expect(truth("path =~ \"\"", j));
    cr_expect(truth("path =~ \"^\"", j));
    cr_expect(truth("\"a.b\" =~ \"a\\\\.b\"", NULL));
    cr_expect(!truth("\"axb\" =~ \"a\\\\.b\"", NULL));
    cr_expect(truth("\"axb\" =~ \"a.b\"", NULL));
    /* The whole string is the subject, NUL bytes included. */
    cr_expect(truth("\"a\\0b\" =~ \"b$\"", NULL));
    cr_expect(truth("\"a\\0b\" =~ \"^a\"", NULL));
    cr_expect(truth("\"a\\0b\" =~ \"[b]$\"", NULL));
    cr_expect(!truth("\"a\\0b\" =~ \"^[b]\"", NULL));
}

Test(expr, regex_on_missing_and_wrong_types)
{
    cr_expect(!truth("path =~ \"^/api/\"", "{}"));
    cr_expect(truth("path !~ \"^/api/\"", "{}"));
    expect_eval_error("n =~ \"5\"", "{\"n\":5}", SL_ETYPE, 3,
                      "=~ needs a string on the left, not int (convert it "
                      "with to_string)");
    cr_expect(truth("to_string(n) =~ \"^5$\"", "{\"n\":5}"));
}

Test(expr, regex_dynamic_pattern)
{
    const char *j = "{\"path\":\"/api/x\",\"re\":\"^/api/\",\"bad\":\"(\"}";
    cr_expect(truth("path =~ re", j));
    cr_expect(!truth("path =~ \"^\" + \"/web\"", j));
    cr_expect(truth("path !~ \"^\" + \"/web\"", j));
    expect_eval_error("path =~ bad", j, SL_EINVAL, 6,
                      "invalid regular expression: Unmatched ( or \\(");
    expect_eval_error("path =~ nope", j, SL_ETYPE, 6,
                      "=~ needs a string (a regular expression) on the "
                      "right, not null");
}

Test(expr, regex_errors_at_compile_time)
{
    expect_compile_error("path =~ \"(unclosed\"", 9,
                         "invalid regular expression: Unmatched ( or \\(");
    expect_compile_error("path =~ \"[a-\"", 9,
                         "invalid regular expression: Unmatched [, [^, [:, "
                         "[., or [=");
    expect_compile_error("path =~ 5", 9, "the right side of =~ must be a "
                         "string (a regular expression), not int");
    expect_compile_error("path !~ null", 9, "the right side of !~ must be a "
                         "string (a regular expression), not null");
    expect_compile_error("p =~ \"a\\0b\"", 6, "a regular expression cannot "
                         "contain a NUL character");
}

/* Patterns whose compiled form would explode are refused before regcomp. */
Test(expr, regex_complexity_limits)
{
    expect_compile_error("p =~ \"^/ap++++++++++++++++++++++++++++++\"", 6,
                         "invalid regular expression: too complex "
                         "(repetitions multiply beyond the limit)");
    expect_compile_error("p =~ \"((a{100}){100}){100}\"", 6,
                         "invalid regular expression: too complex "
                         "(repetitions multiply beyond the limit)");
    expect_compile_error("p =~ \"(.*){5000}\"", 6,
                         "invalid regular expression: too complex "
                         "(repetitions multiply beyond the limit)");
    expect_compile_error("p =~ \"(a)\\\\1\"", 6, "invalid regular "
                         "expression: back-references are not supported");
    char *deep = malloc(400);
    cr_assert_not_null(deep);
    strcpy(deep, "p =~ \"");
    for (int i = 0; i < 150; i++)
        strcat(deep, "(");
    strcat(deep, "a\"");
    expect_compile_error(deep, 6, "invalid regular expression: too many "
                         "nested groups");
    free(deep);
    /* Ordinary patterns are well within the limits. */
    cr_expect(truth("ip =~ \"^[0-9]{1,3}(\\\\.[0-9]{1,3}){3}$\"",
                    "{\"ip\":\"10.0.0.1\"}"));
    cr_expect(truth("s =~ \"^.{0,1000}$\"", "{\"s\":\"abc\"}"));
    cr_expect(truth("s =~ \"^[[:alpha:]]+[]x]?$\"", "{\"s\":\"abc]\"}"));
    /* The same limits apply to a computed pattern. */
    expect_eval_error("p =~ re", "{\"p\":\"x\",\"re\":\"(.*){5000}\"}",
                      SL_EINVAL, 3, "invalid regular expression: too complex "
                      "(repetitions multiply beyond the limit)");
}

/* The literal shortcut answers exactly as regexec does. */
Test(expr, regex_literal_shortcut_agrees_with_regexec)
{
    const char *patterns[] = {"^/api/", "api", "json$", "^exact$", "^", "$",
                              "", "^$", "a\\.b", "\\^x", "x\\$", "\\(a\\)",
                              "^\\[tag\\]", "é", "^é$"};
    const char *subjects[] = {"/api/x", "/web/api", "x.json", "exact",
                              "exactly", "", "a.b", "axb", "^x", "x$",
                              "(a)", "[tag] y", "é", "ée", "jsonx"};
    sl_expr e;
    memset(&e, 0, sizeof(e));
    e.src = "";
    sl_expr_error err;
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        const sl__xregex *re = NULL;
        cr_assert_eq(sl__xregex_compile(&e, patterns[i], strlen(patterns[i]),
                                        0, &re, &err), 0, "%s", patterns[i]);
        cr_expect_neq(re->kind, SL__RE_POSIX, "%s should be literal",
                      patterns[i]);
        regex_t posix;
        cr_assert_eq(regcomp(&posix, patterns[i], REG_EXTENDED | REG_NOSUB), 0);
        for (size_t k = 0; k < sizeof(subjects) / sizeof(subjects[0]); k++) {
            bool fast = sl__xregex_match(re, subjects[k], strlen(subjects[k]));
            bool slow = regexec(&posix, subjects[k], 0, NULL, 0) == 0;
            cr_expect_eq(fast, slow, "'%s' =~ '%s': %d vs regexec %d",
                         subjects[k], patterns[i], fast, slow);
        }
        regfree(&posix);
    }
    sl__xregex_free_all(e.regexes);
    sl__xarena_free(&e.arena);
}

Test(expr, regex_not_literal_goes_to_regexec)
{
    const char *patterns[] = {"a.b", "^a+", "x|y", "\\w", "a{2}", "[ab]",
                              "^/api/v[0-9]"};
    sl_expr e;
    memset(&e, 0, sizeof(e));
    e.src = "";
    sl_expr_error err;
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
        const sl__xregex *re = NULL;
        cr_assert_eq(sl__xregex_compile(&e, patterns[i], strlen(patterns[i]),
                                        0, &re, &err), 0, "%s", patterns[i]);
        cr_expect_eq(re->kind, SL__RE_POSIX, "%s", patterns[i]);
    }
    sl__xregex_free_all(e.regexes);
    sl__xarena_free(&e.arena);
}

/* ------------------------------------------------------------------ */
/* Functions                                                           */
/* ------------------------------------------------------------------ */

Test(expr, fn_len)
{
    expect_json("len(\"hello\")", NULL, "5");
    expect_json("len(\"h\\u00e9llo\")", NULL, "5");   /* characters */
    expect_json("len(\"\")", NULL, "0");
    expect_json("len(a)", "{\"a\":[1,2,3]}", "3");
    expect_json("len(a)", "{\"a\":{\"x\":1,\"y\":2}}", "2");
    expect_json("len(missing)", "{}", "0");
    expect_eval_error("len(5)", NULL, SL_ETYPE, 1,
                      "len needs a string, array or object, not int");
}

Test(expr, fn_lower_upper)
{
    expect_json("lower(\"MiXed 1\")", NULL, "\"mixed 1\"");
    expect_json("upper(\"MiXed 1\")", NULL, "\"MIXED 1\"");
    expect_json("lower(\"already\")", NULL, "\"already\"");
    expect_json("upper(\"\\u00e9a\")", NULL, "\"\xc3\xa9" "A\"");  /* ASCII only */
    expect_json("lower(missing)", "{}", "null");
    expect_json("upper(s) + lower(s)", "{\"s\":\"Ab\"}", "\"ABab\"");
    expect_eval_error("lower(1)", NULL, SL_ETYPE, 1,
                      "lower needs a string, not int");
    expect_eval_error("x + upper(true)", "{\"x\":\"a\"}", SL_ETYPE, 5,
                      "upper needs a string, not bool");
}

Test(expr, fn_contains)
{
    cr_expect(truth("contains(\"haystack\", \"st\")", NULL));
    cr_expect(!truth("contains(\"haystack\", \"x\")", NULL));
    cr_expect(truth("contains(\"abc\", \"\")", NULL));
    cr_expect(truth("contains(tags, \"b\")", "{\"tags\":[\"a\",\"b\"]}"));
    cr_expect(!truth("contains(tags, \"c\")", "{\"tags\":[\"a\",\"b\"]}"));
    cr_expect(truth("contains(ns, 2.0)", "{\"ns\":[1,2,3]}"));
    cr_expect(truth("contains(o, \"k\")", "{\"o\":{\"k\":null}}"));
    cr_expect(!truth("contains(o, \"z\")", "{\"o\":{\"k\":1}}"));
    cr_expect(!truth("contains(missing, \"x\")", "{}"));
    cr_expect(!truth("contains(\"abc\", missing)", "{}"));
    expect_eval_error("contains(5, \"5\")", NULL, SL_ETYPE, 1,
                      "contains needs a string, array or object, not int");
    expect_eval_error("contains(\"5\", 5)", NULL, SL_ETYPE, 1,
                      "contains(string, x) needs x to be a string, not int");
}

Test(expr, fn_starts_with)
{
    cr_expect(truth("starts_with(\"/api/x\", \"/api/\")", NULL));
    cr_expect(!truth("starts_with(\"/ap\", \"/api/\")", NULL));
    cr_expect(truth("starts_with(\"x\", \"\")", NULL));
    cr_expect(!truth("starts_with(missing, \"x\")", "{}"));
    expect_eval_error("starts_with(1, \"1\")", NULL, SL_ETYPE, 1,
                      "starts_with needs two strings, not int and string");
}

Test(expr, fn_to_int)
{
    expect_json("to_int(\"42\")", NULL, "42");
    expect_json("to_int(\" -17 \")", NULL, "-17");
    expect_json("to_int(\"+8\")", NULL, "8");
    expect_json("to_int(\"3.9\")", NULL, "3");
    expect_json("to_int(\"-3.9\")", NULL, "-3");
    expect_json("to_int(\"1e3\")", NULL, "1000");
    expect_json("to_int(2.99)", NULL, "2");
    expect_json("to_int(-2.99)", NULL, "-2");
    expect_json("to_int(true)", NULL, "1");
    expect_json("to_int(7)", NULL, "7");
    expect_json("to_int(missing)", "{}", "null");
    expect_json("to_int(\"-9223372036854775808\")", NULL,
                "-9223372036854775808");
    expect_eval_error("to_int(\"abc\")", NULL, SL_ETYPE, 1,
                      "to_int: \"abc\" is not a number");
    expect_eval_error("to_int(\"0x10\")", NULL, SL_ETYPE, 1,
                      "to_int: \"0x10\" is not a number");
    expect_eval_error("to_int(\"\")", NULL, SL_ETYPE, 1,
                      "to_int: \"\" is not a number");
    expect_eval_error("to_int(\"9223372036854775808\")", NULL, SL_ERANGE, 1,
                      "to_int: \"9223372036854775808\" is out of the int "
                      "range");
    expect_eval_error("to_int(1e19)", NULL, SL_ERANGE, 1,
                      "to_int: 1e+19 is out of the int range");
    expect_eval_error("to_int(a)", "{\"a\":[1]}", SL_ETYPE, 1,
                      "to_int needs a number, string or bool, not array");
}

Test(expr, fn_to_float)
{
    expect_json("to_float(\"2.5\")", NULL, "2.5");
    expect_json("to_float(3)", NULL, "3.0");
    expect_json("to_float(\" 1e2\")", NULL, "100.0");
    expect_json("to_float(false)", NULL, "0.0");
    expect_json("to_float(missing)", "{}", "null");
    expect_json("to_float(\"7\") / 2", NULL, "3.5");
    expect_eval_error("to_float(\"nan\")", NULL, SL_ETYPE, 1,
                      "to_float: \"nan\" is not a number");
    expect_eval_error("to_float(\"1e999\")", NULL, SL_ERANGE, 1,
                      "to_float: \"1e999\" is out of the double range");
}

Test(expr, fn_to_string)
{
    expect_json("to_string(42)", NULL, "\"42\"");
    expect_json("to_string(-9223372036854775808)", NULL,
                "\"-9223372036854775808\"");
    expect_json("to_string(2.5)", NULL, "\"2.5\"");
    expect_json("to_string(2.0)", NULL, "\"2.0\"");
    expect_json("to_string(0.1)", NULL, "\"0.1\"");
    expect_json("to_string(1e21)", NULL, "\"1e+21\"");
    expect_json("to_string(true)", NULL, "\"true\"");
    expect_json("to_string(null)", NULL, "\"null\"");
    expect_json("to_string(\"s\")", NULL, "\"s\"");
    expect_json("to_string(a)", "{\"a\":[1,\"x\"]}", "\"[1,\\\"x\\\"]\"");
    expect_json("\"u\" + to_string(seq() % 100)", NULL, "\"u7\"");
}

Test(expr, fn_now_and_seq_from_env)
{
    expect_json("seq()", NULL, "7");
    expect_json("now()", NULL, "1234");
    expect_json("seq() * 2 + now()", NULL, "1248");

    /* now_ns = 0 reads the wall clock; no env means seq() is 0. */
    sl_expr *e = compile_ok("now()");
    sl_value *v = NULL;
    sl_expr_env env = {.seq = 1, .now_ns = 0};
    cr_assert_eq(sl_expr_eval(e, NULL, &env, &v, NULL), 0);
    cr_expect_gt(sl_value_get_int(v), INT64_C(1600000000) * 1000000000);
    sl_value_unref(v);
    sl_expr_destroy(e);

    e = compile_ok("seq()");
    cr_assert_eq(sl_expr_eval(e, NULL, NULL, &v, NULL), 0);
    cr_expect_eq(sl_value_get_int(v), 0);
    sl_value_unref(v);
    sl_expr_destroy(e);
}

Test(expr, unknown_function_and_arity)
{
    expect_compile_error("lenght(x)", 1,
                         "unknown function 'lenght' (did you mean 'len'?)");
    expect_compile_error("a && LOWER(b)", 6,
                         "unknown function 'LOWER' (did you mean 'lower'?)");
    expect_compile_error("x + startswith(a, b)", 5, "unknown function "
                         "'startswith' (did you mean 'starts_with'?)");
    expect_compile_error("frobnicate(1)", 1,
                         "unknown function 'frobnicate' (functions: len, "
                         "lower, upper, contains, starts_with, to_int, "
                         "to_float, to_string, now, seq)");
    expect_compile_error("len(a, b)", 1, "len takes 1 argument, got 2");
    expect_compile_error("x == contains(a)", 6,
                         "contains takes 2 arguments, got 1");
    expect_compile_error("now(1)", 1, "now takes no arguments, got 1");
    expect_compile_error("len()", 1, "len takes 1 argument, got 0");
    expect_compile_error("len(a b)", 7, "expected ')' after arguments to len, "
                         "found name 'b'");
    expect_compile_error("len(a", 6, "expected ')' after arguments to len, "
                         "found end of expression");
}

/* ------------------------------------------------------------------ */
/* Syntax errors                                                       */
/* ------------------------------------------------------------------ */

Test(expr, syntax_errors_have_columns)
{
    expect_compile_error("", 1, "empty expression");
    expect_compile_error("   ", 4, "empty expression");
    expect_compile_error("status >=", 10,
                         "unexpected end of expression (expected a value)");
    expect_compile_error("a +* b", 4, "unexpected '*' (expected a value)");
    expect_compile_error("(a + b", 7, "expected ')' to close the '(' at "
                         "column 1, found end of expression");
    expect_compile_error("a + b)", 6, "unexpected ')' (no '(' to close)");
    expect_compile_error("a b", 3, "unexpected name 'b' after a complete "
                         "expression (missing an operator?)");
    expect_compile_error("a and b", 3, "unexpected name 'and' (use && for "
                         "'and') after a complete expression (missing an "
                         "operator?)");
    expect_compile_error("a = 1", 3, "unexpected '=' (use == to compare)");
    expect_compile_error("a & b", 3,
                         "unexpected '&' (use && for a logical and)");
    expect_compile_error("a | b", 3,
                         "unexpected '|' (use || for a logical or)");
    expect_compile_error("1 < 2 < 3", 7, "comparisons cannot be chained; "
                         "join them with && (a < b && b < c)");
    expect_compile_error("1 < 2 == true", 7, "comparisons cannot be chained; "
                         "join them with && (a < b && b < c)");
    expect_compile_error("a ? b", 6,
                         "unexpected end of expression (expected ':' in "
                         "cond ? a : b)");
    expect_compile_error("a : b", 3, "unexpected ':' (no '?' before it)");
    expect_compile_error("a.", 3, "unexpected end of expression after '.' "
                         "(expected a field name)");
    expect_compile_error("a.5", 2, "expected a name after '.' (write a[0] "
                         "for an array element)");
    expect_compile_error("a[1", 4,
                         "unexpected end of expression (expected ']' after "
                         "the index)");
    expect_compile_error(".5", 1,
                         "a number must start with a digit (write 0.5, not .5)");
    expect_compile_error("1.", 2, "expected a digit after '.' in number");
    expect_compile_error("12abc", 3, "unexpected 'a' after number");
    expect_compile_error("x == #", 6, "unexpected character '#'");
    expect_compile_error("x == \x01", 6, "unexpected control character 0x01");
}

Test(expr, string_literal_errors)
{
    expect_compile_error("x == \"abc", 6,
                         "unterminated string (missing closing \")");
    expect_compile_error("x == 'abc", 6,
                         "unterminated string (missing closing ')");
    expect_compile_error("\"a\\qb\"", 3, "unknown escape '\\q' (write '\\\\q' "
                         "for a backslash followed by 'q')");
    expect_compile_error("\"\\x4\"", 2, "\\x needs two hex digits");
    expect_compile_error("\"\\u12\"", 2, "\\u needs four hex digits");
    expect_compile_error("\"\\ud800\"", 2, "\\uD800 is half of a surrogate "
                         "pair with no low half after it");
    expect_compile_error("\"\\udc00\"", 2, "\\uDC00 is a lone low surrogate");
    expect_compile_error("a[\"x\\0y\"]", 3,
                         "a field name cannot contain a NUL character");
}

Test(expr, integer_literal_limits)
{
    expect_compile_error("9223372036854775808", 1, "integer literal is too "
                         "large (the limit is 9223372036854775807)");
    expect_compile_error("1 + 9223372036854775808", 5, "integer literal is "
                         "too large (the limit is 9223372036854775807)");
    expect_compile_error("99999999999999999999", 1, "integer literal is too "
                         "large (the limit is 9223372036854775807)");
    expect_json("- 9223372036854775808", NULL, "-9223372036854775808");
}

Test(expr, columns_count_characters_not_bytes)
{
    /* "é" is two bytes and one column. */
    expect_compile_error("\"\xc3\xa9\" + #", 7, "unexpected character '#'");
    expect_compile_error("\xc3\xa9", 1,
                         "unexpected non-ASCII character (quote it: "
                         "a[\"name\"])");
    expect_eval_error("\"\xc3\xa9\" + 1", NULL, SL_ETYPE, 5,
                      "cannot add string and int");
}

Test(expr, whitespace_and_newlines)
{
    expect_json("1 +\n\t2\r\n* 3", NULL, "7");
    cr_expect(truth("  status >= 500\n  && path =~ \"^/api/\"  ",
                    "{\"status\":503,\"path\":\"/api/x\"}"));
}

/* ------------------------------------------------------------------ */
/* Hostile input                                                       */
/* ------------------------------------------------------------------ */

/* pre x n, then mid, then post x m: a freshly allocated string. */
static char *repeat3(const char *pre, int n, const char *mid, const char *post,
                     int m)
{
    size_t lp = strlen(pre), lm = strlen(mid), lq = strlen(post);
    char *s = malloc(lp * (size_t)n + lm + lq * (size_t)m + 1);
    cr_assert_not_null(s);
    char *w = s;
    for (int i = 0; i < n; i++, w += lp)
        memcpy(w, pre, lp);
    memcpy(w, mid, lm);
    w += lm;
    for (int i = 0; i < m; i++, w += lq)
        memcpy(w, post, lq);
    *w = '\0';
    return s;
}

Test(expr, depth_limit_parentheses)
{
    char *ok = repeat3("(", 200, "1", ")", 200);
    expect_json(ok, NULL, "1");
    free(ok);
    char *deep = repeat3("(", 100000, "1", ")", 100000);
    sl_expr *e = NULL;
    sl_expr_error err;
    cr_expect_eq(sl_expr_compile(deep, &e, &err), SL_EPARSE);
    cr_expect_null(e);
    cr_expect_str_eq(err.text,
                     "expression is too long (the limit is 65536 bytes)");
    free(deep);
    deep = repeat3("(", 1000, "1", ")", 1000);
    cr_expect_eq(sl_expr_compile(deep, &e, &err), SL_EPARSE);
    cr_expect_str_eq(err.text, "expression is nested too deeply (the limit "
                     "is 256 levels)");
    cr_expect_eq(err.column, 257);   /* the 257th '(' */
    free(deep);
}

Test(expr, depth_limit_unary_and_chains)
{
    sl_expr *e = NULL;
    sl_expr_error err;
    char *s = repeat3("!", 5000, "x", "", 0);
    cr_expect_eq(sl_expr_compile(s, &e, &err), SL_EPARSE);
    cr_expect_str_eq(err.text, "expression is nested too deeply (the limit "
                     "is 256 levels)");
    free(s);
    /* A long flat chain makes a deep tree: bounded too. */
    s = repeat3("", 0, "1", " + 1", 5000);
    cr_expect_eq(sl_expr_compile(s, &e, &err), SL_EPARSE);
    cr_expect_str_eq(err.text, "expression is nested too deeply (the limit "
                     "is 256 levels)");
    free(s);
    s = repeat3("", 0, "1", " + 1", 200);
    expect_json(s, NULL, "201");
    free(s);
    s = repeat3("len(", 300, "x", ")", 300);
    cr_expect_eq(sl_expr_compile(s, &e, &err), SL_EPARSE);
    free(s);
    s = repeat3("a[", 300, "0", "]", 300);
    cr_expect_eq(sl_expr_compile(s, &e, &err), SL_EPARSE);
    free(s);
    s = repeat3("true ? 1 : ", 300, "0", "", 0);
    cr_expect_eq(sl_expr_compile(s, &e, &err), SL_EPARSE);
    free(s);
}

Test(expr, long_input)
{
    /* Just under the limit compiles; long field paths are fine. */
    size_t n = SL__EXPR_MAX_LEN;
    char *s = malloc(n + 2);
    cr_assert_not_null(s);
    memset(s, ' ', n);
    s[0] = '1';
    s[n] = '\0';
    sl_expr *e = compile_ok(s);
    sl_expr_destroy(e);
    s[n] = ' ';
    s[n + 1] = '\0';
    sl_expr_error err;
    cr_expect_eq(sl_expr_compile(s, &e, &err), SL_EPARSE);
    cr_expect_eq(err.column, SL__EXPR_MAX_LEN + 1);
    free(s);

    s = repeat3("", 0, "a", ".a", 5000);
    expect_json(s, "{\"a\":{\"a\":1}}", "null");
    free(s);
}

/* ------------------------------------------------------------------ */
/* API edges                                                           */
/* ------------------------------------------------------------------ */

Test(expr, api_edges)
{
    sl_expr_destroy(NULL);
    cr_expect_null(sl_expr_source(NULL));
    sl_expr *e = NULL;
    sl_expr_error err;
    cr_expect_eq(sl_expr_compile(NULL, &e, &err), SL_EINVAL);
    cr_expect_eq(sl_expr_compile("1", NULL, &err), SL_EINVAL);
    cr_expect_eq(sl_expr_compile("1 +", &e, NULL), SL_EPARSE);  /* err optional */

    e = compile_ok("  a + 1 ");
    cr_expect_str_eq(sl_expr_source(e), "  a + 1 ");
    sl_value *v = NULL;
    bool b;
    cr_expect_eq(sl_expr_eval(NULL, NULL, NULL, &v, &err), SL_EINVAL);
    cr_expect_eq(sl_expr_eval(e, NULL, NULL, NULL, &err), SL_EINVAL);
    cr_expect_eq(sl_expr_eval_bool(e, NULL, NULL, NULL, &err), SL_EINVAL);
    cr_expect_eq(sl_expr_eval_bool(e, NULL, NULL, &b, NULL), SL_ETYPE);
    sl_expr_destroy(e);
}

/* One compiled expression, many records: results never leak between them. */
Test(expr, reuse_across_records)
{
    sl_expr *e = compile_ok("upper(name) + \"-\" + to_string(n * 2)");
    for (int i = 0; i < 50; i++) {
        char json[64], want[64];
        snprintf(json, sizeof(json), "{\"name\":\"u%d\",\"n\":%d}", i, i);
        snprintf(want, sizeof(want), "U%d-%d", i, i * 2);
        sl_record *r = rec_json(json);
        sl_value *v = NULL;
        cr_assert_eq(sl_expr_eval(e, r, NULL, &v, NULL), 0);
        cr_expect_str_eq(sl_value_get_string(v, NULL), want);
        sl_value_unref(v);
        sl_record_free(r);
    }
    sl_expr_destroy(e);
}
