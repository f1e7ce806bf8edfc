/*
 * Helpers for the stage tests: a temporary directory per test, writing and
 * reading files, and looking at what a harnessed stage emitted.
 *
 * Criterion runs every test in its own process, so the helpers keep their
 * state in statics and exit on setup failures.
 */
#ifndef SLUICE_TESTS_STAGE_TEST_H
#define SLUICE_TESTS_STAGE_TEST_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/harness.h"
#include "sluice/plugin.h"

/* Helpers a given test file may not use. */
#define ST_FN static __attribute__((unused))

static char st_dir[256];

ST_FN int st_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    chmod(path, 0700);
    return remove(path);
}

/* Criterion fini: remove the test's directory. */
ST_FN void st_teardown(void)
{
    if (st_dir[0] != '\0') {
        nftw(st_dir, st_rm_one, 16, FTW_DEPTH | FTW_PHYS);
        st_dir[0] = '\0';
    }
}

/* Criterion init: a fresh directory, readable by everyone (for the tests
 * that drop privileges). */
ST_FN void st_setup(void)
{
    snprintf(st_dir, sizeof(st_dir), "/tmp/sluice-stage-test-XXXXXX");
    cr_assert_not_null(mkdtemp(st_dir), "mkdtemp");
    chmod(st_dir, 0755);
}

/* st_dir + "/" + name, in a rotating set of static buffers. */
ST_FN const char *st_path(const char *name)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 512, "%s/%s", st_dir, name);
    return b;
}

ST_FN void st_write(const char *name, const void *data, size_t len)
{
    FILE *f = fopen(st_path(name), "wb");
    cr_assert_not_null(f, "fopen %s", name);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

ST_FN void st_write_str(const char *name, const char *s)
{
    st_write(name, s, strlen(s));
}

/* The whole file as a NUL-terminated string (caller frees); NULL if absent. */
ST_FN char *st_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

/* printf into a static buffer (one at a time). */
static const char *st_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
ST_FN const char *st_fmt(const char *fmt, ...)
{
    static char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return buf;
}

/* A harness with these options, created and initialised successfully. */
ST_FN sl_harness *st_harness(const sl_stage_desc *desc, const char *yaml)
{
    sl_harness *h = NULL;
    int rc = sl_harness_create(desc, yaml, &h);
    cr_assert_eq(rc, 0, "create: %s", h != NULL ? sl_harness_config_error(h) : "");
    rc = sl_harness_init(h);
    cr_assert_eq(rc, 0, "init: %s (%s)", sl_error_name(rc), sl_harness_last_error(h));
    return h;
}

/* Emitted record i's payload as a string (static copy). */
ST_FN const char *st_payload(sl_harness *h, size_t i)
{
    static char buf[65536];
    sl_record *r = sl_harness_emitted(h, i);
    cr_assert_not_null(r, "no emitted record %zu", i);
    size_t len;
    const char *p = sl_record_payload(r, &len);
    if (p == NULL)
        len = 0;
    cr_assert_lt(len, sizeof(buf));
    memcpy(buf, p != NULL ? p : "", len);
    buf[len] = '\0';
    return buf;
}

/* Emitted record i's fields as compact JSON (static copy). */
ST_FN const char *st_fields(sl_harness *h, size_t i)
{
    static char buf[65536];
    sl_record *r = sl_harness_emitted(h, i);
    cr_assert_not_null(r, "no emitted record %zu", i);
    sl_buf b;
    sl_buf_init(&b);
    cr_assert_eq(sl_json_dump(sl_record_fields(r), &b), 0);
    cr_assert_lt(b.len, sizeof(buf));
    memcpy(buf, b.data != NULL ? b.data : "", b.len);
    buf[b.len] = '\0';
    sl_buf_fini(&b);
    return buf;
}

/* A record with this payload and position. */
ST_FN sl_record *st_record_at(const char *payload, const char *locator, int64_t seq)
{
    sl_record *r = sl_record_new_payload(payload, strlen(payload));
    cr_assert_not_null(r);
    cr_assert_eq(sl_record_set_position(r, "read", locator, -1, seq), 0);
    return r;
}

/* A record whose fields are parsed from JSON text. */
ST_FN sl_record *st_record_json(const char *json)
{
    sl_value *v = NULL;
    cr_assert_eq(sl_json_parse(json, strlen(json), NULL, &v, NULL), 0, "bad test JSON %s", json);
    sl_record *r = sl_record_new();
    cr_assert_not_null(r);
    cr_assert_eq(sl_record_set_fields(r, v), 0);
    return r;
}

/* Run the rest of the test as an unprivileged user when running as root,
 * so permission checks apply. Returns true if privileges were dropped. */
ST_FN bool st_drop_root(void)
{
    if (geteuid() != 0)
        return false;
    cr_assert_eq(setegid(65534), 0);
    cr_assert_eq(seteuid(65534), 0);
    return true;
}

ST_FN void st_regain_root(bool dropped)
{
    if (dropped) {
        cr_assert_eq(seteuid(0), 0);
        cr_assert_eq(setegid(0), 0);
    }
}

#endif
