/* The YAML loader: tree shape, positions, limits, hostile input, ${VAR}. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/config.h"
#include "engine/diag.h"
#include "sluice/error.h"

static sl_diag *diag;

static void setup(void)
{
    diag = sl__diag_create();
    cr_assert_not_null(diag);
}

static void teardown(void)
{
    sl__diag_destroy(diag);
}

TestSuite(yaml_tree, .init = setup, .fini = teardown);

static int load(const char *text, sl_yaml **out)
{
    return sl__yaml_load_text(text, strlen(text), "t.yaml", NULL, diag, out);
}

static int load_opts(const char *text, const sl_yaml_opts *o, sl_yaml **out)
{
    return sl__yaml_load_text(text, strlen(text), "t.yaml", o, diag, out);
}

/* True if some message contains needle. */
static bool has_message(const char *needle)
{
    for (size_t i = 0; i < sl__diag_count(diag); i++) {
        if (strstr(sl__diag_message(diag, i), needle) != NULL)
            return true;
    }
    return false;
}

static void dump_messages(void)
{
    for (size_t i = 0; i < sl__diag_count(diag); i++)
        cr_log_info("%s", sl__diag_message(diag, i));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(yaml_tree, builds_tree_with_positions)
{
    sl_yaml *y = NULL;
    const char *text = "name: demo\n"
                       "list:\n"
                       "  - a\n"
                       "  - 'b'\n"
                       "map: {x: 1, y: \"two\"}\n";
    cr_assert_eq(load(text, &y), 0);
    sl_node *root = sl__yaml_root(y);
    cr_assert_eq(root->kind, SL_NODE_MAPPING);
    cr_assert_eq(root->n, 3);
    cr_assert_str_eq(root->keys[0]->text, "name");
    cr_assert_eq(root->keys[0]->line, 1);
    cr_assert_eq(root->keys[0]->col, 1);
    sl_node *name = sl__node_get(root, "name");
    cr_assert_str_eq(name->text, "demo");
    cr_assert_eq(name->line, 1);
    cr_assert_eq(name->col, 7);
    cr_assert_eq(name->style, SL_SCALAR_PLAIN);
    cr_assert_str_eq(name->file, "t.yaml");

    sl_node *list = sl__node_get(root, "list");
    cr_assert_eq(list->kind, SL_NODE_SEQUENCE);
    cr_assert_eq(list->n, 2);
    cr_assert_str_eq(list->items[1]->text, "b");
    cr_assert_eq(list->items[1]->style, SL_SCALAR_SINGLE);
    cr_assert_eq(list->items[1]->line, 4);
    cr_assert_eq(list->items[1]->col, 5);

    sl_node *map = sl__node_get(root, "map");
    cr_assert_eq(map->kind, SL_NODE_MAPPING);
    cr_assert_eq(map->keys[1]->line, 5);
    cr_assert_eq(map->keys[1]->col, 13);
    cr_assert_eq(sl__node_get(map, "y")->style, SL_SCALAR_DOUBLE);
    cr_assert_null(sl__node_get(map, "z"));
    cr_assert_eq(sl__yaml_node_count(y), 13);
    cr_assert_eq(sl__diag_count(diag), 0);
    sl__yaml_destroy(y);
}

Test(yaml_tree, null_spellings)
{
    sl_yaml *y = NULL;
    cr_assert_eq(load("a:\nb: ~\nc: null\nd: 'null'\ne: x\n", &y), 0);
    sl_node *r = sl__yaml_root(y);
    cr_assert(sl__node_is_null(sl__node_get(r, "a")));
    cr_assert(sl__node_is_null(sl__node_get(r, "b")));
    cr_assert(sl__node_is_null(sl__node_get(r, "c")));
    cr_assert_not(sl__node_is_null(sl__node_get(r, "d")));
    cr_assert_not(sl__node_is_null(sl__node_get(r, "e")));
    cr_assert_str_eq(sl__node_describe(sl__node_get(r, "a")), "null");
    cr_assert_str_eq(sl__node_describe(r), "a mapping");
    sl__yaml_destroy(y);
}

Test(yaml_tree, syntax_error_has_position)
{
    sl_yaml *y = NULL;
    cr_assert_eq(load("a: [1, 2\nb: 3\n", &y), SL_ECONFIG);
    cr_assert_null(y);
    cr_assert_eq(sl__diag_count(diag), 1);
    cr_assert(strncmp(sl__diag_message(diag, 0), "t.yaml:", 7) == 0);
    cr_assert(has_message("YAML syntax error"), "%s",
              sl__diag_message(diag, 0));
}

Test(yaml_tree, tabs_get_a_hint)
{
    sl_yaml *y = NULL;
    cr_assert_eq(load("a:\n\tb: 1\n", &y), SL_ECONFIG);
    dump_messages();
    cr_assert(has_message("t.yaml:2:1: "), "%s", sl__diag_message(diag, 0));
    cr_assert(has_message("tabs"));
}

Test(yaml_tree, empty_file)
{
    sl_yaml *y = NULL;
    cr_assert_eq(load("", &y), SL_ECONFIG);
    cr_assert(has_message("t.yaml:1:1: file is empty"));
    sl__diag_clear(diag);
    cr_assert_eq(load("# only a comment\n\n", &y), SL_ECONFIG);
    cr_assert(has_message("file is empty"));
    sl_yaml_opts o = {.allow_empty = true};
    cr_assert_eq(load_opts("", &o, &y), 0);
    cr_assert_null(sl__yaml_root(y));
    sl__yaml_destroy(y);
}

Test(yaml_tree, two_documents_refused)
{
    sl_yaml *y = NULL;
    cr_assert_eq(load("a: 1\n---\nb: 2\n", &y), SL_ECONFIG);
    cr_assert(has_message("t.yaml:2:1: more than one YAML document"));
}

Test(yaml_tree, duplicate_keys_name_both_lines)
{
    sl_yaml *y = NULL;
    cr_assert_eq(load("a: 1\nb: 2\na: 3\n", &y), 0);
    cr_assert_eq(sl__diag_errors(diag), 1);
    cr_assert(has_message("t.yaml:3:1: duplicate key 'a' (first defined at "
                          "line 1, column 1)"));
    /* the first one wins, the repeat is dropped */
    sl_node *r = sl__yaml_root(y);
    cr_assert_eq(r->n, 2);
    cr_assert_str_eq(sl__node_get(r, "a")->text, "1");
    sl__yaml_destroy(y);
}

Test(yaml_tree, duplicate_keys_in_large_mapping)
{
    /* Sorted detection: many keys, two duplicates, reported in file order. */
    size_t n = 5000;
    char *text = malloc(n * 16 + 64);
    size_t off = 0;
    for (size_t i = 0; i < n; i++)
        off += (size_t)sprintf(text + off, "k%zu: %zu\n", i, i);
    off += (size_t)sprintf(text + off, "k7: x\nk3: y\n");
    sl_yaml *y = NULL;
    cr_assert_eq(sl__yaml_load_text(text, off, "t.yaml", NULL, diag, &y), 0);
    cr_assert_eq(sl__diag_count(diag), 2);
    cr_assert(strstr(sl__diag_message(diag, 0), ":5001:1: duplicate key 'k7' "
                     "(first defined at line 8") != NULL,
              "%s", sl__diag_message(diag, 0));
    cr_assert(strstr(sl__diag_message(diag, 1), ":5002:1: duplicate key 'k3' "
                     "(first defined at line 4") != NULL);
    cr_assert_eq(sl__yaml_root(y)->n, n);
    sl__yaml_destroy(y);
    free(text);
}

Test(yaml_tree, aliases_refused_and_counted)
{
    sl_yaml *y = NULL;
    cr_assert_eq(load("a: &x 1\nb: *x\nc: [*x, 2]\n", &y), 0);
    cr_assert_eq(sl__diag_errors(diag), 2);
    cr_assert(has_message("t.yaml:2:4: YAML aliases ('*x') are not supported"));
    cr_assert(has_message("t.yaml:3:5: 1 more YAML aliases in the file, the last one here"));
    cr_assert(sl__node_get(sl__yaml_root(y), "c")->items[0]->invalid);
    sl_node *r = sl__yaml_root(y);
    cr_assert(sl__node_get(r, "b")->invalid);
    cr_assert_not(sl__node_get(r, "a")->invalid);
    sl__yaml_destroy(y);
}

Test(yaml_tree, billion_laughs_is_fast)
{
    const char *text =
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
        "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
        "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
        "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    sl_yaml *y = NULL;
    double t0 = now_s();
    int rc = load(text, &y);
    double t = now_s() - t0;
    cr_assert_eq(rc, 0);
    cr_assert_lt(t, 10.0);
    cr_assert(has_message("t.yaml:2:8: YAML aliases"));
    cr_assert(has_message("t.yaml:9:32: 71 more YAML aliases in the file"));
    cr_assert_eq(sl__diag_errors(diag), 2);
    cr_assert_lt(sl__yaml_node_count(y), 200);
    sl__yaml_destroy(y);
}

static char *deep_text(size_t depth, size_t *len)
{
    char *t = malloc(depth * 2 + 2);
    memset(t, '[', depth);
    memset(t + depth, ']', depth);
    t[2 * depth] = '\n';
    t[2 * depth + 1] = '\0';
    *len = 2 * depth + 1;
    return t;
}

Test(yaml_tree, deep_nesting_refused_fast)
{
    size_t len;
    char *t = deep_text(20000, &len);
    sl_yaml *y = NULL;
    double t0 = now_s();
    int rc = sl__yaml_load_text(t, len, "t.yaml", NULL, diag, &y);
    double el = now_s() - t0;
    cr_assert_eq(rc, SL_ECONFIG);
    cr_assert_lt(el, 10.0);
    cr_assert(has_message("t.yaml:1:65: nesting deeper than 64 levels"),
              "%s", sl__diag_message(diag, 0));
    free(t);
}

Test(yaml_tree, nesting_at_limit_loads)
{
    size_t len;
    char *t = deep_text(SL_YAML_MAX_DEPTH, &len);
    sl_yaml *y = NULL;
    cr_assert_eq(sl__yaml_load_text(t, len, "t.yaml", NULL, diag, &y), 0);
    sl__yaml_destroy(y);
    free(t);
}

Test(yaml_tree, block_nesting_refused)
{
    /* "- - - - ..." block sequences nest as deep as the flow ones. */
    size_t depth = 2000;
    char *t = malloc(depth * 2 + 8);
    size_t off = 0;
    for (size_t i = 0; i < depth; i++) {
        t[off++] = '-';
        t[off++] = ' ';
    }
    memcpy(t + off, "x\n", 3);
    off += 2;
    sl_yaml *y = NULL;
    cr_assert_eq(sl__yaml_load_text(t, off, "t.yaml", NULL, diag, &y),
                 SL_ECONFIG);
    cr_assert(has_message("nesting deeper than 64 levels"));
    free(t);
}

Test(yaml_tree, too_many_nodes)
{
    size_t n = SL_YAML_MAX_NODES + 10;
    char *t = malloc(n * 2 + 8);
    size_t off = 0;
    t[off++] = '[';
    for (size_t i = 0; i < n; i++) {
        t[off++] = '1';
        t[off++] = ',';
    }
    t[off - 1] = ']';
    sl_yaml *y = NULL;
    double t0 = now_s();
    cr_assert_eq(sl__yaml_load_text(t, off, "t.yaml", NULL, diag, &y),
                 SL_ECONFIG);
    cr_assert_lt(now_s() - t0, 10.0);
    cr_assert(has_message("too many YAML nodes"));
    free(t);
}

Test(yaml_tree, long_key_refused)
{
    /* A plain key: YAML itself caps simple keys at 1024 characters. */
    size_t klen = 1 << 20;
    char *t = malloc(klen + 16);
    memset(t, 'k', klen);
    memcpy(t + klen, ": 1\n", 5);
    sl_yaml *y = NULL;
    double t0 = now_s();
    cr_assert_eq(sl__yaml_load_text(t, klen + 4, "t.yaml", NULL, diag, &y),
                 SL_ECONFIG);
    cr_assert_lt(now_s() - t0, 10.0);
    cr_assert(has_message("t.yaml:1:"));
    cr_assert(has_message("a mapping key may be at most 1024 characters"),
              "%s", sl__diag_message(diag, 0));
    /* An explicit key is not capped by YAML: the loader's own limit. */
    sl__diag_clear(diag);
    t[0] = '?';
    t[1] = ' ';
    memcpy(t + klen, "\n: 1\n", 6);
    cr_assert_eq(sl__yaml_load_text(t, klen + 5, "t.yaml", NULL, diag, &y),
                 SL_ECONFIG);
    cr_assert(has_message("t.yaml:1:3: mapping key longer than 1024 bytes"),
              "%s", sl__diag_message(diag, 0));
    free(t);
}

Test(yaml_tree, long_value_refused)
{
    size_t vlen = SL_YAML_MAX_SCALAR + 1;
    char *t = malloc(vlen + 16);
    memcpy(t, "a: ", 3);
    memset(t + 3, 'v', vlen);
    t[3 + vlen] = '\n';
    sl_yaml *y = NULL;
    cr_assert_eq(sl__yaml_load_text(t, vlen + 4, "t.yaml", NULL, diag, &y),
                 SL_ECONFIG);
    cr_assert(has_message("t.yaml:1:4: value longer than"));
    free(t);
}

Test(yaml_tree, file_size_limit)
{
    size_t len = SL_YAML_MAX_FILE + 1;
    char *t = malloc(len);
    memset(t, ' ', len);
    sl_yaml *y = NULL;
    cr_assert_eq(sl__yaml_load_text(t, len, "t.yaml", NULL, diag, &y),
                 SL_ECONFIG);
    cr_assert(has_message("t.yaml: file is larger than 16 MiB"));
    free(t);
}

Test(yaml_tree, binary_garbage)
{
    unsigned char t[256];
    for (size_t i = 0; i < sizeof(t); i++)
        t[i] = (unsigned char)((i * 151 + 7) & 0xFF);
    memcpy(t, "a: b\n", 5);
    sl_yaml *y = NULL;
    cr_assert_eq(sl__yaml_load_text((const char *)t, sizeof(t), "t.yaml", NULL,
                                    diag, &y),
                 SL_ECONFIG);
    dump_messages();
    cr_assert(has_message("t.yaml:2:"), "%s", sl__diag_message(diag, 0));
}

Test(yaml_tree, invalid_utf8)
{
    sl_yaml *y = NULL;
    cr_assert_eq(load("a: ok\nb: \xff\xfe\n", &y), SL_ECONFIG);
    cr_assert(has_message("t.yaml:2:4: not valid YAML text"),
              "%s", sl__diag_message(diag, 0));
}

Test(yaml_tree, complex_key_refused)
{
    sl_yaml *y = NULL;
    cr_assert_eq(load("? [a, b]\n: 1\n", &y), SL_ECONFIG);
    cr_assert(has_message("t.yaml:1:3: a mapping key must be a plain value"));
}

Test(yaml_tree, load_file_missing)
{
    sl_yaml *y = NULL;
    cr_assert_eq(sl__yaml_load_file("/nonexistent/x.yaml", NULL, diag, &y),
                 SL_EIO);
    cr_assert(has_message("/nonexistent/x.yaml: cannot open"));
}

Test(yaml_tree, load_file_reads)
{
    char path[] = "/tmp/sluice-yaml-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *fp = fdopen(fd, "w");
    fputs("a: [1, 2]\n", fp);
    fclose(fp);
    sl_yaml *y = NULL;
    cr_assert_eq(sl__yaml_load_file(path, NULL, diag, &y), 0);
    cr_assert_str_eq(sl__yaml_root(y)->items[0]->items[1]->text, "2");
    cr_assert_str_eq(sl__yaml_root(y)->file, path);
    sl__yaml_destroy(y);
    unlink(path);
}

/* ------------------------------------------------------------------ */
/* Interpolation                                                       */
/* ------------------------------------------------------------------ */

static const char *interp(const char *in, const char *const *set, char *err,
                          int *rc)
{
    static char *last;
    free(last);
    last = NULL;
    size_t len = 0, at = 0;
    *rc = sl__interpolate(in, strlen(in), set, false, &last, &len, err, 400,
                          &at);
    return last;
}

Test(yaml_tree, interpolate_forms)
{
    const char *set[] = {"A=alpha", "EMPTY=", "A2=x", "A=again", NULL};
    char err[400];
    int rc;
    setenv("SLUICE_TEST_ENV_VAR", "from-env", 1);
    cr_assert_str_eq(interp("x${A}y", set, err, &rc), "xagainy");
    cr_assert_str_eq(interp("${A2}", set, err, &rc), "x");
    cr_assert_str_eq(interp("${SLUICE_TEST_ENV_VAR}", set, err, &rc),
                     "from-env");
    cr_assert_str_eq(interp("${NOPE_X:-dflt}", set, err, &rc), "dflt");
    cr_assert_str_eq(interp("${EMPTY:-dflt}", set, err, &rc), "dflt");
    cr_assert_str_eq(interp("${EMPTY}", set, err, &rc), "");
    cr_assert_str_eq(interp("${A:-dflt}", set, err, &rc), "again");
    cr_assert_str_eq(interp("$$5 and $5 and $", set, err, &rc),
                     "$5 and $5 and $");
    cr_assert_str_eq(interp("$${A}", set, err, &rc), "${A}");
    cr_assert_str_eq(interp("${A:?must}", set, err, &rc), "again");
    cr_assert_eq(rc, 0);
}

Test(yaml_tree, interpolate_errors)
{
    char err[400];
    int rc;
    size_t len, at = 0;
    char *out = NULL;
    rc = sl__interpolate("ab ${NOPE_Y:?give NOPE_Y a path}", 32, NULL, true,
                         &out, &len, err, sizeof(err), &at);
    cr_assert_eq(rc, SL_ECONFIG);
    cr_assert_eq(at, 3);
    cr_assert_str_eq(err, "variable 'NOPE_Y' is not set: give NOPE_Y a path");
    interp("${NOPE_Z}", NULL, err, &rc);
    cr_assert_eq(rc, SL_ECONFIG);
    cr_assert(strstr(err, "variable 'NOPE_Z' is not set") != NULL);
    interp("${A", NULL, err, &rc);
    cr_assert_eq(rc, SL_ECONFIG);
    cr_assert(strstr(err, "unterminated") != NULL);
    interp("${1X}", NULL, err, &rc);
    cr_assert_eq(rc, SL_ECONFIG);
    cr_assert(strstr(err, "invalid variable name") != NULL);
    interp("${X|y}", NULL, err, &rc);
    cr_assert_eq(rc, SL_ECONFIG);
    cr_assert(strstr(err, "unexpected '|'") != NULL);
}

Test(yaml_tree, interpolation_in_tree)
{
    const char *set[] = {"COUNT=42", NULL};
    sl_yaml_opts o = {.set = set, .no_env = true};
    sl_yaml *y = NULL;
    cr_assert_eq(load_opts("${K}: ${COUNT}\nb: \"x ${MISSING:?set it}\"\n"
                           "c: ${C:-5s}\n",
                           &o, &y),
                 0);
    sl_node *r = sl__yaml_root(y);
    /* keys are never interpolated */
    cr_assert_str_eq(r->keys[0]->text, "${K}");
    cr_assert_str_eq(r->items[0]->text, "42");
    cr_assert(r->items[0]->interpolated);
    cr_assert(sl__node_get(r, "b")->invalid);
    cr_assert_str_eq(sl__node_get(r, "c")->text, "5s");
    cr_assert_eq(sl__diag_errors(diag), 1);
    cr_assert(has_message("t.yaml:2:7: variable 'MISSING' is not set: set it"),
              "%s", sl__diag_message(diag, 0));
    sl__yaml_destroy(y);
}

Test(yaml_tree, no_interpolate_keeps_text)
{
    sl_yaml_opts o = {.no_interpolate = true};
    sl_yaml *y = NULL;
    cr_assert_eq(load_opts("a: ${X}$$\n", &o, &y), 0);
    cr_assert_str_eq(sl__yaml_root(y)->items[0]->text, "${X}$$");
    sl__yaml_destroy(y);
}

/* ------------------------------------------------------------------ */
/* Diagnostics                                                         */
/* ------------------------------------------------------------------ */

Test(yaml_tree, diag_caps_messages)
{
    for (int i = 0; i < 250; i++)
        sl__diag_add(diag, "f.yaml", i + 1, 2, "problem %d", i);
    cr_assert_eq(sl__diag_count(diag), SL_DIAG_MAX + 1);
    cr_assert_eq(sl__diag_errors(diag), 250);
    cr_assert_str_eq(sl__diag_message(diag, 0), "f.yaml:1:2: problem 0");
    cr_assert(strstr(sl__diag_message(diag, SL_DIAG_MAX), "too many errors")
              != NULL);
    cr_assert_null(sl__diag_message(diag, SL_DIAG_MAX + 1));
}

Test(yaml_tree, diag_formats_and_warnings)
{
    sl__diag_add(diag, NULL, 0, 0, "plain");
    sl__diag_add(diag, "f", 3, 0, "line only");
    sl__diag_warn(diag, "f", 4, 5, "careful");
    cr_assert_str_eq(sl__diag_message(diag, 0), "plain");
    cr_assert_str_eq(sl__diag_message(diag, 1), "f:3: line only");
    cr_assert_eq(sl__diag_count(diag), 2);
    cr_assert_eq(sl__diag_warning_count(diag), 1);
    cr_assert_str_eq(sl__diag_warning(diag, 0), "f:4:5: careful");
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    sl__diag_print(diag, fp);
    fclose(fp);
    cr_assert_str_eq(buf, "error: plain\nerror: f:3: line only\n"
                          "warning: f:4:5: careful\n");
    free(buf);
    sl__diag_clear(diag);
    cr_assert_eq(sl__diag_count(diag), 0);
    cr_assert_eq(sl__diag_errors(diag), 0);
    sl__diag_destroy(NULL);
}

Test(yaml_tree, suggest)
{
    const char *c[] = {"where", "set", "json", "jsonl", "name", NULL};
    cr_assert_str_eq(sl__diag_suggest("wehre", c, SIZE_MAX), "where");
    cr_assert_str_eq(sl__diag_suggest("jsn", c, SIZE_MAX), "json");
    cr_assert_str_eq(sl__diag_suggest("nmae", c, SIZE_MAX), "name");
    cr_assert_null(sl__diag_suggest("xyzzy", c, SIZE_MAX));
    cr_assert_null(sl__diag_suggest("where", c, SIZE_MAX));
    cr_assert_null(sl__diag_suggest("", c, SIZE_MAX));
    cr_assert_null(sl__diag_suggest("ab", c, SIZE_MAX));
}
