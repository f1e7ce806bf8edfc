/*
 * JSON parser conformance against JSONTestSuite (github.com/nst/JSONTestSuite,
 * MIT), read from ../shared/testdata/JSONTestSuite/test_parsing next to the
 * source tree: every y_ file is accepted, every n_ file is rejected with a
 * message, every i_ file either way without crashing. Skipped, with a
 * message, where the folder is absent.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"
#include "sluice/value.h"

/* y_ files we refuse on purpose, each with its reason. */
static const char *const refused_y[] = {
    /* Object keys are C strings in the value API; a NUL cannot be in one. */
    "y_object_escaped_null_in_key.json",
};

/* $SLUICE_TESTDATA_DIR, if set, replaces $SLUICE_SOURCE_DIR/../shared/testdata. */
static bool suite_dir(char *path, size_t size)
{
    const char *data = getenv("SLUICE_TESTDATA_DIR");
    const char *src = getenv("SLUICE_SOURCE_DIR");
    if (data != NULL)
        snprintf(path, size, "%s/JSONTestSuite/test_parsing", data);
    else if (src != NULL)
        snprintf(path, size, "%s/../shared/testdata/JSONTestSuite/test_parsing", src);
    else
        return false;
    DIR *d = opendir(path);
    if (d == NULL)
        return false;
    closedir(d);
    return true;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    cr_assert_geq(size, 0);
    rewind(f);
    char *buf = malloc((size_t)size + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static bool is_refused_y(const char *name)
{
    for (size_t i = 0; i < sizeof(refused_y) / sizeof(refused_y[0]); i++)
        if (strcmp(name, refused_y[i]) == 0)
            return true;
    return false;
}

/* Run every file whose name starts with prefix; returns how many ran. */
static size_t run_prefix(char prefix)
{
    char dir[4096];
    if (!suite_dir(dir, sizeof(dir)))
        cr_skip_test("JSONTestSuite not found next to the source tree "
                     "(../shared/testdata/JSONTestSuite/test_parsing); skipped");
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    size_t ran = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != prefix || e->d_name[1] != '_')
            continue;
        char path[4096 + 256];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        size_t len;
        char *buf = read_file(path, &len);
        sl_value *v = NULL;
        sl_json_error err;
        int rc = sl_json_parse(buf, len, NULL, &v, &err);
        switch (prefix) {
        case 'y':
            if (is_refused_y(e->d_name)) {
                cr_expect_eq(rc, SL_EPARSE, "%s", e->d_name);
                cr_expect_neq(err.text[0], '\0', "%s: a message", e->d_name);
            } else {
                cr_expect_eq(rc, 0, "%s must be accepted: %s (%d:%d)", e->d_name, err.text,
                             err.line, err.column);
            }
            break;
        case 'n':
            cr_expect(rc == SL_EPARSE || rc == SL_ELIMIT, "%s must be rejected (rc %d)",
                      e->d_name, rc);
            cr_expect_null(v, "%s", e->d_name);
            cr_expect_neq(err.text[0], '\0', "%s: a message", e->d_name);
            cr_expect_gt(err.line, 0, "%s: a line", e->d_name);
            break;
        default:
            cr_expect(rc == 0 || rc == SL_EPARSE || rc == SL_ELIMIT, "%s: rc %d", e->d_name, rc);
            break;
        }
        if (rc == 0) {
            /* Whatever is accepted serialises to JSON that parses back equal. */
            sl_buf b;
            sl_buf_init(&b);
            cr_expect_eq(sl_json_dump(v, &b), 0);
            sl_value *back = NULL;
            cr_expect_eq(sl_json_parse(b.data, b.len, NULL, &back, &err), 0,
                         "%s: reparse of %s: %s", e->d_name, b.data, err.text);
            cr_expect(sl_value_equal(v, back), "%s: round trip", e->d_name);
            sl_value_unref(back);
            sl_buf_fini(&b);
            sl_value_unref(v);
        }
        free(buf);
        ran++;
    }
    closedir(d);
    return ran;
}

Test(json_conformance, y_accepted)
{
    cr_expect_gt(run_prefix('y'), 90);
}

Test(json_conformance, n_rejected)
{
    cr_expect_gt(run_prefix('n'), 180);
}

Test(json_conformance, i_no_crash)
{
    cr_expect_gt(run_prefix('i'), 30);
}
