/* Option tables: value syntaxes, every option type, defaults, errors. */
#include <criterion/criterion.h>

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config.h"
#include "engine/diag.h"
#include "engine/options.h"
#include "sluice/error.h"

typedef struct test_state {
    bool flag;
    int64_t count;
    double ratio;
    char *path;
    int64_t timeout;
    double rate;
    int64_t size;
    int format;
    sl_expr *where;
    sl_strlist keep;
    sl_strmap headers;
    sl_exprmap set;
} test_state;

#define OFF(f) offsetof(test_state, f)

static const sl_option table[] = {
    {SL_OPT_BOOL, "flag", "false", 0, OFF(flag), 0, 0, NULL, "a flag"},
    {SL_OPT_INT, "count", "10", 0, OFF(count), 1, 1000, NULL, "a count"},
    {SL_OPT_DOUBLE, "ratio", "0.5", 0, OFF(ratio), 0, 1, NULL, "a ratio"},
    {SL_OPT_STRING, "path", NULL, SL_OPT_REQUIRED, OFF(path), 0, 0, NULL, "p"},
    {SL_OPT_DURATION, "timeout", "5s", 0, OFF(timeout), 1e6, 3600e9, NULL, "t"},
    {SL_OPT_RATE, "rate", NULL, 0, OFF(rate), 0, 0, NULL, "r"},
    {SL_OPT_SIZE, "size", "64KiB", 0, OFF(size), 0, 0, NULL, "s"},
    {SL_OPT_ENUM, "format", "jsonl", 0, OFF(format), 0, 0, "jsonl|csv|tsv", "f"},
    {SL_OPT_EXPR, "where", NULL, 0, OFF(where), 0, 0, NULL, "w"},
    {SL_OPT_STRING_LIST, "keep", "[]", 0, OFF(keep), 0, 0, NULL, "k"},
    {SL_OPT_STRING_MAP, "headers", NULL, 0, OFF(headers), 0, 0, NULL, "h"},
    {SL_OPT_EXPR_MAP, "set", NULL, 0, OFF(set), 0, 0, NULL, "s"},
    SL_OPTIONS_END,
};

static sl_diag *diag;
static test_state st;

static void setup(void)
{
    diag = sl__diag_create();
    memset(&st, 0, sizeof(st));
}

static void teardown(void)
{
    sl__options_free(table, &st);
    sl__diag_destroy(diag);
}

TestSuite(options, .init = setup, .fini = teardown);

static int apply(const char *yaml)
{
    return sl__options_apply_text(table, yaml, "o.yaml", &st, diag);
}

static bool has_message(const char *needle)
{
    for (size_t i = 0; i < sl__diag_count(diag); i++) {
        if (strstr(sl__diag_message(diag, i), needle) != NULL)
            return true;
    }
    return false;
}

static const char *all_messages(void)
{
    static char buf[4096];
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sl__diag_count(diag) && off < sizeof(buf); i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s\n",
                                sl__diag_message(diag, i));
    return buf;
}

/* ------------------------------------------------------------------ */
/* Value syntaxes                                                      */
/* ------------------------------------------------------------------ */

Test(options, durations)
{
    int64_t ns;
    cr_assert_eq(sl__parse_duration("250ms", &ns), 0);
    cr_assert_eq(ns, 250000000LL);
    cr_assert_eq(sl__parse_duration("5s", &ns), 0);
    cr_assert_eq(ns, 5000000000LL);
    cr_assert_eq(sl__parse_duration("2m", &ns), 0);
    cr_assert_eq(ns, 120000000000LL);
    cr_assert_eq(sl__parse_duration("1h", &ns), 0);
    cr_assert_eq(ns, 3600000000000LL);
    cr_assert_eq(sl__parse_duration("1.5s", &ns), 0);
    cr_assert_eq(ns, 1500000000LL);
    cr_assert_eq(sl__parse_duration("0", &ns), 0);
    cr_assert_eq(ns, 0);
    cr_assert_eq(sl__parse_duration("1h30m", &ns), 0);
    cr_assert_eq(ns, 5400000000000LL);
    cr_assert_eq(sl__parse_duration("10us", &ns), 0);
    cr_assert_eq(ns, 10000);
    cr_assert_eq(sl__parse_duration("7ns", &ns), 0);
    cr_assert_eq(ns, 7);
    cr_assert_eq(sl__parse_duration(".5s", &ns), 0);
    cr_assert_eq(ns, 500000000LL);
    cr_assert_eq(sl__parse_duration("0.3s", &ns), 0);
    cr_assert_eq(ns, 300000000LL);
    cr_assert_eq(sl__parse_duration("0.1ms", &ns), 0);
    cr_assert_eq(ns, 100000LL);
    cr_assert_eq(sl__parse_duration("2.675h", &ns), 0);
    cr_assert_eq(ns, 9630000000000LL);

    cr_assert_eq(sl__parse_duration("5", &ns), SL_EINVAL);
    cr_assert_eq(sl__parse_duration("5x", &ns), SL_EINVAL);
    cr_assert_eq(sl__parse_duration("-5s", &ns), SL_EINVAL);
    cr_assert_eq(sl__parse_duration("", &ns), SL_EINVAL);
    cr_assert_eq(sl__parse_duration("s", &ns), SL_EINVAL);
    cr_assert_eq(sl__parse_duration("5 s", &ns), SL_EINVAL);
    cr_assert_eq(sl__parse_duration("1.2.3s", &ns), SL_EINVAL);
    cr_assert_eq(sl__parse_duration("3000000h", &ns), SL_ERANGE);
    cr_assert_eq(sl__parse_duration("99999999999999999999999s", &ns),
                 SL_ERANGE);
}

Test(options, format_duration)
{
    char b[32];
    sl__format_duration(1500000000LL, b, sizeof(b));
    cr_assert_str_eq(b, "1.5s");
    sl__format_duration(250000000LL, b, sizeof(b));
    cr_assert_str_eq(b, "250ms");
    sl__format_duration(0, b, sizeof(b));
    cr_assert_str_eq(b, "0s");
    sl__format_duration(150000000000LL, b, sizeof(b));
    cr_assert_str_eq(b, "2m30s");
    sl__format_duration(3600000000000LL, b, sizeof(b));
    cr_assert_str_eq(b, "1h");
    sl__format_duration(1000, b, sizeof(b));
    cr_assert_str_eq(b, "1us");
}

Test(options, rates)
{
    double r;
    cr_assert_eq(sl__parse_rate("100/s", &r), 0);
    cr_assert_float_eq(r, 100.0, 1e-9);
    cr_assert_eq(sl__parse_rate("6000/m", &r), 0);
    cr_assert_float_eq(r, 100.0, 1e-9);
    cr_assert_eq(sl__parse_rate("5/h", &r), 0);
    cr_assert_float_eq(r, 5.0 / 3600.0, 1e-12);
    cr_assert_eq(sl__parse_rate("100", &r), 0);
    cr_assert_float_eq(r, 100.0, 1e-9);
    cr_assert_eq(sl__parse_rate("0.5/s", &r), 0);
    cr_assert_float_eq(r, 0.5, 1e-9);
    cr_assert_eq(sl__parse_rate("30/min", &r), 0);
    cr_assert_float_eq(r, 0.5, 1e-9);
    cr_assert_eq(sl__parse_rate("100/x", &r), SL_EINVAL);
    cr_assert_eq(sl__parse_rate("/s", &r), SL_EINVAL);
    cr_assert_eq(sl__parse_rate("-1/s", &r), SL_EINVAL);
    cr_assert_eq(sl__parse_rate("100/", &r), SL_EINVAL);
    cr_assert_eq(sl__parse_rate("fast", &r), SL_EINVAL);
}

Test(options, sizes)
{
    int64_t b;
    cr_assert_eq(sl__parse_size("4096", &b), 0);
    cr_assert_eq(b, 4096);
    cr_assert_eq(sl__parse_size("64KiB", &b), 0);
    cr_assert_eq(b, 65536);
    cr_assert_eq(sl__parse_size("16MiB", &b), 0);
    cr_assert_eq(b, 16777216);
    cr_assert_eq(sl__parse_size("1GiB", &b), 0);
    cr_assert_eq(b, 1073741824LL);
    cr_assert_eq(sl__parse_size("64KB", &b), 0);
    cr_assert_eq(b, 64000);
    cr_assert_eq(sl__parse_size("2mb", &b), 0);
    cr_assert_eq(b, 2000000);
    cr_assert_eq(sl__parse_size("1.5KiB", &b), 0);
    cr_assert_eq(b, 1536);
    cr_assert_eq(sl__parse_size("10 MiB", &b), 0);
    cr_assert_eq(b, 10485760);
    cr_assert_eq(sl__parse_size("0.3KB", &b), 0);
    cr_assert_eq(b, 300);
    cr_assert_eq(sl__parse_size("12B", &b), 0);
    cr_assert_eq(b, 12);
    cr_assert_eq(sl__parse_size("64Kx", &b), SL_EINVAL);
    cr_assert_eq(sl__parse_size("KiB", &b), SL_EINVAL);
    cr_assert_eq(sl__parse_size("-1", &b), SL_EINVAL);
    cr_assert_eq(sl__parse_size("1KiBs", &b), SL_EINVAL);
    cr_assert_eq(sl__parse_size("99999999TiB", &b), SL_ERANGE);
}

/* ------------------------------------------------------------------ */
/* Applying tables                                                     */
/* ------------------------------------------------------------------ */

Test(options, defaults_applied)
{
    cr_assert_eq(apply("path: /tmp/x"), 0, "%s", all_messages());
    cr_assert_eq(st.flag, false);
    cr_assert_eq(st.count, 10);
    cr_assert_float_eq(st.ratio, 0.5, 1e-12);
    cr_assert_str_eq(st.path, "/tmp/x");
    cr_assert_eq(st.timeout, 5000000000LL);
    cr_assert_eq(st.size, 65536);
    cr_assert_eq(st.format, 0);
    cr_assert_null(st.where);
    cr_assert_eq(st.keep.n, 0);
    cr_assert_eq(st.headers.n, 0);
}

Test(options, every_type)
{
    const char *yaml =
        "flag: yes\n"
        "count: 42\n"
        "ratio: 0.25\n"
        "path: 'out/x.db'\n"
        "timeout: 250ms\n"
        "rate: 6000/m\n"
        "size: 1MiB\n"
        "format: csv\n"
        "where: status >= 500\n"
        "keep: [id, status]\n"
        "headers: {Accept: application/json, X-Token: abc}\n"
        "set: {a: x + 1, b: '\"s\"'}\n";
    cr_assert_eq(apply(yaml), 0, "%s", all_messages());
    cr_assert_eq(st.flag, true);
    cr_assert_eq(st.count, 42);
    cr_assert_float_eq(st.ratio, 0.25, 1e-12);
    cr_assert_str_eq(st.path, "out/x.db");
    cr_assert_eq(st.timeout, 250000000LL);
    cr_assert_float_eq(st.rate, 100.0, 1e-9);
    cr_assert_eq(st.size, 1048576);
    cr_assert_eq(st.format, 1);
    cr_assert_not_null(st.where);
    cr_assert_str_eq(sl_expr_source(st.where), "status >= 500");
    cr_assert_eq(st.keep.n, 2);
    cr_assert_str_eq(st.keep.items[1], "status");
    cr_assert_eq(st.headers.n, 2);
    cr_assert_str_eq(st.headers.keys[1], "X-Token");
    cr_assert_str_eq(st.headers.values[0], "application/json");
    cr_assert_eq(st.set.n, 2);
    cr_assert_str_eq(st.set.keys[0], "a");
    cr_assert_str_eq(sl_expr_source(st.set.exprs[1]), "\"s\"");
}

Test(options, scalar_is_one_item_list)
{
    cr_assert_eq(apply("path: p\nkeep: id\n"), 0);
    cr_assert_eq(st.keep.n, 1);
    cr_assert_str_eq(st.keep.items[0], "id");
}

Test(options, free_is_idempotent)
{
    cr_assert_eq(apply("path: p\nkeep: [a]\nwhere: x > 1\n"), 0);
    sl__options_free(table, &st);
    cr_assert_null(st.path);
    cr_assert_null(st.where);
    cr_assert_eq(st.keep.n, 0);
    sl__options_free(table, &st);
    sl__options_free(NULL, &st);
}

Test(options, missing_required)
{
    cr_assert_eq(apply("count: 3\n"), SL_ECONFIG);
    cr_assert(has_message("o.yaml:1:1: missing required option 'path'"),
              "%s", all_messages());
    /* defaults are still in place; everything is freed by fini */
    cr_assert_eq(st.count, 3);
}

Test(options, missing_required_named)
{
    sl_yaml *y = NULL;
    cr_assert_eq(sl__yaml_load_text("x:\n  count: 3\n", 14, "s.yaml", NULL,
                                    diag, &y), 0);
    sl_node *map = sl__node_get(sl__yaml_root(y), "x");
    cr_assert_eq(sl__options_apply_named(table, map, NULL, "stage 'db'", &st,
                                         diag),
                 SL_ECONFIG);
    cr_assert(has_message("s.yaml:2:3: stage 'db': missing required option "
                          "'path'"), "%s", all_messages());
    sl__yaml_destroy(y);
}

Test(options, null_for_required_is_missing)
{
    cr_assert_eq(apply("path:\n"), SL_ECONFIG);
    cr_assert(has_message("'path': expected a string, got null"),
              "%s", all_messages());
    cr_assert(has_message("missing required option 'path'"));
}

Test(options, no_options_at_all)
{
    cr_assert_eq(sl__options_apply_text(table, NULL, NULL, &st, diag),
                 SL_ECONFIG);
    cr_assert(has_message("missing required option 'path'"));
    cr_assert_eq(st.count, 10);
}

Test(options, unknown_key_suggests)
{
    cr_assert_eq(apply("path: p\nwehre: x > 1\ncuont: 3\nzzzzzz: 1\n"),
                 SL_ECONFIG);
    cr_assert(has_message("o.yaml:2:1: unknown key 'wehre' (did you mean "
                          "'where'?)"), "%s", all_messages());
    cr_assert(has_message("o.yaml:3:1: unknown key 'cuont' (did you mean "
                          "'count'?)"));
    cr_assert(has_message("o.yaml:4:1: unknown key 'zzzzzz'\0"));
    cr_assert_eq(sl__diag_errors(diag), 3);
}

Test(options, reserved_keys_skipped_and_suggested)
{
    static const char *const reserved[] = {"name", "type", "inputs", NULL};
    sl_yaml *y = NULL;
    const char *t = "name: a\ntype: b\npath: p\ninptus: [x]\n";
    cr_assert_eq(sl__yaml_load_text(t, strlen(t), "r.yaml", NULL, diag, &y), 0);
    cr_assert_eq(sl__options_apply_named(table, sl__yaml_root(y), reserved,
                                         "stage 'a'", &st, diag),
                 SL_ECONFIG);
    cr_assert_eq(sl__diag_errors(diag), 1);
    cr_assert(has_message("r.yaml:4:1: unknown key 'inptus' in stage 'a' "
                          "(did you mean 'inputs'?)"), "%s", all_messages());
    sl__yaml_destroy(y);
}

Test(options, reserved_key_declared_by_table_is_applied)
{
    static const char *const reserved[] = {"timeout", NULL};
    sl_yaml *y = NULL;
    const char *t = "path: p\ntimeout: 2s\n";
    cr_assert_eq(sl__yaml_load_text(t, strlen(t), "r.yaml", NULL, diag, &y), 0);
    cr_assert_eq(sl__options_apply(table, sl__yaml_root(y), reserved, &st,
                                   diag), 0);
    cr_assert_eq(st.timeout, 2000000000LL);
    sl__yaml_destroy(y);
}

Test(options, wrong_types)
{
    cr_assert_eq(apply("path: [a]\ncount: abc\nratio: x\nflag: maybe\n"
                       "keep: {a: b}\nheaders: [a]\nset: x\n"),
                 SL_ECONFIG);
    cr_assert(has_message("o.yaml:1:7: 'path': expected a string, got a list"),
              "%s", all_messages());
    cr_assert(has_message("o.yaml:2:8: 'count': expected a number, got 'abc'"));
    cr_assert(has_message("o.yaml:3:8: 'ratio': expected a number, got 'x'"));
    cr_assert(has_message("o.yaml:4:7: 'flag': expected true or false, got "
                          "'maybe'"));
    cr_assert(has_message("o.yaml:5:7: 'keep': expected a list, got a mapping"));
    cr_assert(has_message("o.yaml:6:10: 'headers': expected a mapping, got a "
                          "list"));
    cr_assert(has_message("o.yaml:7:6: 'set': expected a mapping, got a "
                          "scalar"));
    cr_assert_eq(sl__diag_errors(diag), 7);
}

Test(options, list_items_checked)
{
    cr_assert_eq(apply("path: p\nkeep: [a, [b], ~]\nheaders: {a: [x]}\n"),
                 SL_ECONFIG);
    cr_assert(has_message("o.yaml:2:11: 'keep': expected a list of strings, "
                          "got a list"), "%s", all_messages());
    cr_assert(has_message("o.yaml:2:16: 'keep': expected a list of strings, "
                          "got null"));
    cr_assert(has_message("o.yaml:3:14: 'headers': expected a string, got a "
                          "list"));
}

Test(options, ranges)
{
    cr_assert_eq(apply("path: p\ncount: 0\nratio: 1.5\ntimeout: 2h\n"),
                 SL_ECONFIG);
    cr_assert(has_message("o.yaml:2:8: 'count' must be between 1 and 1000, "
                          "got 0"), "%s", all_messages());
    cr_assert(has_message("o.yaml:3:8: 'ratio' must be between 0 and 1, got "
                          "1.5"));
    cr_assert(has_message("o.yaml:4:10: 'timeout' must be between 1ms and 1h, "
                          "got 2h"));
}

Test(options, integers)
{
    cr_assert_eq(apply("path: p\ncount: 0x10\n"), 0);
    cr_assert_eq(st.count, 16);
    sl__diag_clear(diag);
    cr_assert_eq(apply("path: p\ncount: 99999999999999999999\n"), SL_ECONFIG);
    cr_assert(has_message("o.yaml:2:8: 'count': 99999999999999999999 is out "
                          "of range for a 64-bit integer"), "%s",
              all_messages());
    sl__diag_clear(diag);
    cr_assert_eq(apply("path: p\ncount: -5\n"), SL_ECONFIG);
    cr_assert(has_message("'count' must be between 1 and 1000, got -5"));
    sl__diag_clear(diag);
    cr_assert_eq(apply("path: p\ncount: 1.5\n"), SL_ECONFIG);
    cr_assert(has_message("'count': expected a whole number, got '1.5'"));
    sl__diag_clear(diag);
    cr_assert_eq(apply("path: p\nratio: .inf\n"), SL_ECONFIG);
    cr_assert(has_message("'ratio': expected a number, got '.inf'"));
    sl__diag_clear(diag);
    cr_assert_eq(apply("path: p\nratio: nan\n"), SL_ECONFIG);
    cr_assert(has_message("'ratio': expected a number, got 'nan'"));
}

Test(options, bad_units)
{
    cr_assert_eq(apply("path: p\ntimeout: 5 seconds\nrate: 10/d\nsize: 3 apples\n"),
                 SL_ECONFIG);
    cr_assert(has_message("o.yaml:2:10: 'timeout': invalid duration '5 "
                          "seconds' (write a number and a unit: ns, us, ms, s, "
                          "m, h"), "%s", all_messages());
    cr_assert(has_message("o.yaml:3:7: 'rate': invalid rate '10/d' (write a "
                          "count per unit of time: 100/s, 6000/m, 5/h)"));
    cr_assert(has_message("o.yaml:4:7: 'size': invalid size '3 apples'"));
}

Test(options, enum_choices)
{
    cr_assert_eq(apply("path: p\nformat: tsv\n"), 0);
    cr_assert_eq(st.format, 2);
    sl__diag_clear(diag);
    cr_assert_eq(apply("path: p\nformat: cvs\n"), SL_ECONFIG);
    cr_assert(has_message("o.yaml:2:9: 'format': expected one of jsonl, csv, "
                          "tsv, got 'cvs' (did you mean 'csv'?)"), "%s",
              all_messages());
}

Test(options, expression_error_position)
{
    /* the helper expression compiler rejects "&&&"; position inside: 8 */
    cr_assert_eq(apply("path: p\nwhere: a == 1 &&& b\n"), SL_ECONFIG);
    cr_assert_eq(sl__diag_errors(diag), 1);
    const char *m = sl__diag_message(diag, 0);
    cr_assert(strncmp(m, "o.yaml:2:", 9) == 0, "%s", m);
    cr_assert(strstr(m, "'where': expression syntax error at column ") != NULL,
              "%s", m);
    /* the value starts at column 8 ("where: " is 7 wide) */
    int line, col, ecol;
    cr_assert_eq(sscanf(m, "o.yaml:%d:%d: 'where': expression syntax error at "
                           "column %d", &line, &col, &ecol), 3);
    cr_assert_eq(col, 8 + ecol - 1, "%s", m);
}

Test(options, expression_error_in_quoted_and_map)
{
    cr_assert_eq(apply("path: p\nwhere: 'a == 1 &&& b'\nset: {x: ((1}\n"),
                 SL_ECONFIG);
    cr_assert_eq(sl__diag_errors(diag), 2, "%s", all_messages());
    int line, col, ecol;
    cr_assert_eq(sscanf(sl__diag_message(diag, 0), "o.yaml:%d:%d: 'where': "
                        "expression syntax error at column %d", &line, &col,
                        &ecol), 3);
    /* the quote is at column 8, the expression starts at 9 */
    cr_assert_eq(col, 9 + ecol - 1);
    cr_assert(has_message("o.yaml:3:"));
    cr_assert(has_message("'set': expression syntax error"));
}

Test(options, interpolated_values)
{
    setenv("SLUICE_OPT_TEST_COUNT", "77", 1);
    cr_assert_eq(apply("path: ${SLUICE_OPT_TEST_PATH:-def/x}\n"
                       "count: ${SLUICE_OPT_TEST_COUNT}\n"), 0,
                 "%s", all_messages());
    cr_assert_eq(st.count, 77);
    cr_assert_str_eq(st.path, "def/x");
}

Test(options, failed_interpolation_reported_once)
{
    cr_assert_eq(apply("path: p\ncount: ${SLUICE_OPT_NOPE:?need a count}\n"),
                 SL_ECONFIG);
    cr_assert_eq(sl__diag_errors(diag), 1, "%s", all_messages());
    cr_assert(has_message("o.yaml:2:8: variable 'SLUICE_OPT_NOPE' is not set: "
                          "need a count"));
}

Test(options, syntax_error_in_text)
{
    cr_assert_eq(apply("path: [p\n"), SL_ECONFIG);
    cr_assert(has_message("o.yaml:"));
    cr_assert(has_message("YAML syntax error"));
}

Test(options, not_a_mapping)
{
    cr_assert_eq(apply("- a\n- b\n"), SL_ECONFIG);
    cr_assert(has_message("o.yaml:1:1: expected a mapping of options, got a "
                          "list"), "%s", all_messages());
}

Test(options, bad_default_reported)
{
    static const sl_option bad[] = {
        {SL_OPT_DURATION, "t", "5 parsecs", 0, 0, 0, 0, NULL, "bad default"},
        SL_OPTIONS_END,
    };
    int64_t v = 0;
    cr_assert_eq(sl__options_apply_text(bad, "{}", "d.yaml", &v, diag),
                 SL_ECONFIG);
    cr_assert(has_message("<default of 't'>:1:1: 't': invalid duration"),
              "%s", all_messages());
}

Test(options, suggest_helper)
{
    static const char *const extra[] = {"inputs", NULL};
    cr_assert_str_eq(sl__options_suggest(table, extra, "heders"), "headers");
    cr_assert_str_eq(sl__options_suggest(table, extra, "input"), "inputs");
    cr_assert_null(sl__options_suggest(table, extra, "qqqqqq"));
    cr_assert_null(sl__options_suggest(NULL, NULL, "x"));
    cr_assert_not_null(sl__options_find(table, "rate"));
    cr_assert_null(sl__options_find(table, "rates"));
}

Test(options, set_replaces_old_value)
{
    cr_assert_eq(apply("path: one\nkeep: [a, b]\nwhere: x\n"), 0);
    cr_assert_eq(apply("path: two\nkeep: [c]\nwhere: y\n"), 0);
    cr_assert_str_eq(st.path, "two");
    cr_assert_eq(st.keep.n, 1);
    cr_assert_str_eq(sl_expr_source(st.where), "y");
}
