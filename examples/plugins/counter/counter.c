/*
 * counter: an example sink plugin that counts records per key and writes
 * the counts to a JSON file each time it flushes.
 *
 *   stages:
 *     - name: per_user
 *       type: counter
 *       key: user                 # required: the field to count by
 *       path: out/per-user.json   # required: where the counts go
 *       missing: "(none)"         # optional: the key for records without it
 *
 * The file holds one JSON object, keys in the order first seen:
 *
 *   {"alice":3,"bob":5,"(none)":1}
 *
 * It is replaced whole at each flush (written aside, then renamed), so a
 * reader never sees half of it. Records count as stored once the file that
 * counts them is written. A string field counts under its text; any other
 * value under its JSON text (42, true); a missing or null field under
 * `missing`.
 *
 * Build it with nothing but the installed SDK:
 *
 *   cc -shared -fPIC $(pkg-config --cflags sluice) counter.c -o libcounter.so
 */
/* For strerror_r: stages run on several threads, and strerror() may hand
 * them one shared buffer. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sluice/plugin.h>

typedef struct counter_state {
    char *key;             /* option `key` (engine-owned) */
    char *path;            /* option `path` (engine-owned) */
    char *missing;         /* option `missing` (engine-owned) */
    sl_value *counts;      /* ours: an object, key -> count */
    sl_buf text;           /* ours: scratch for JSON */
    uint64_t pending;      /* records counted but not yet written */
    uint64_t pending_bytes; /* their size, for the bytes_out metric */
} counter_state;

static const sl_option counter_options[] = {
    {SL_OPT_STRING, "key", NULL, SL_OPT_REQUIRED, offsetof(counter_state, key),
     0, 0, NULL, "the field whose value records are counted by"},
    {SL_OPT_STRING, "path", NULL, SL_OPT_REQUIRED,
     offsetof(counter_state, path), 0, 0, NULL,
     "the JSON file the counts are written to at each flush"},
    {SL_OPT_STRING, "missing", "\"(none)\"", 0,
     offsetof(counter_state, missing), 0, 0, NULL,
     "the key counting records whose field is missing or null"},
    SL_OPTIONS_END,
};

/* errno as text in buf. glibc has two strerror_r: the POSIX one asked for
 * above, or with _GNU_SOURCE one that may return a static string. */
static const char *error_text(int e, char *buf, size_t n)
{
#ifdef _GNU_SOURCE
    return strerror_r(e, buf, n);
#else
    if (strerror_r(e, buf, n) != 0)
        snprintf(buf, n, "error %d", e);
    return buf;
#endif
}

/*
 * init: allocate what the stage owns. Whatever happens here, destroy()
 * runs afterwards, so it must cope with a half-built state (the state
 * starts zeroed, and sl_value_unref(NULL) does nothing).
 */
static int counter_init(void *state, sl_stage_ctx *sc)
{
    counter_state *c = state;
    sl_buf_init(&c->text);
    /* Each worker has its own state: two would overwrite each other's file. */
    if (sl_stage_worker_count(sc) > 1)
        return sl_stage_error(sc, SL_ECONFIG, "counter needs workers: 1");
    if (c->path[0] == '\0')
        return sl_stage_error(sc, SL_ECONFIG, "path: must not be empty");
    c->counts = sl_value_object();
    if (c->counts == NULL)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    return 0;
}

/* The key a record counts under, in c->text (NUL-terminated). */
static int key_of(counter_state *c, const sl_record *rec)
{
    const sl_value *v = sl_record_get(rec, c->key);
    sl_buf_reset(&c->text);
    size_t len = 0;
    const char *s = sl_value_get_string(v, &len);
    int rc;
    if (s != NULL)
        rc = sl_buf_append(&c->text, s, len);
    else if (sl_value_type(v) == SL_TYPE_NULL)   /* missing reads as null */
        rc = sl_buf_append(&c->text, c->missing, strlen(c->missing));
    else
        rc = sl_json_dump(v, &c->text);
    if (rc == 0)
        rc = sl_buf_putc(&c->text, '\0');
    return rc;
}

/*
 * process: count the record, then free it. A sink that keeps records until
 * a later commit counts them with sl_stage_count_stored() once committed
 * and frees them itself; this one needs nothing from the record after
 * counting it, so it frees it at once and counts it as stored at flush.
 */
static int counter_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    counter_state *c = state;
    int rc = key_of(c, rec);
    if (rc < 0)
        return sl_stage_error(sc, rc, "out of memory");
    const sl_value *old = sl_object_get(c->counts, c->text.data);
    sl_value *n = sl_value_int(sl_value_get_int(old) + 1);
    if (n == NULL)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    rc = sl_object_set(c->counts, c->text.data, n);   /* takes n */
    if (rc < 0)
        return sl_stage_error(sc, rc, "out of memory");
    c->pending++;
    c->pending_bytes += sl_record_size(rec);
    sl_record_free(rec);
    return 0;
}

/*
 * flush: called when the input runs dry for a moment and at its end — the
 * sink's moment to commit. Write the counts aside, then rename over the
 * file, and only then count the records as stored.
 */
static int counter_flush(void *state, sl_stage_ctx *sc)
{
    counter_state *c = state;
    if (c->pending == 0)
        return 0;
    sl_buf_reset(&c->text);
    if (sl_json_dump(c->counts, &c->text) < 0 || sl_buf_putc(&c->text, '\n') < 0)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");

    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", c->path) >= (int)sizeof(tmp))
        return sl_stage_error(sc, SL_EINVAL, "path: too long");
    char ebuf[128];
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return sl_stage_error(sc, SL_EIO, "%s: %s", tmp,
                              error_text(errno, ebuf, sizeof(ebuf)));
    size_t wrote = fwrite(c->text.data, 1, c->text.len, f);
    int err = wrote == c->text.len ? 0 : errno;
    if (fclose(f) != 0 && err == 0)
        err = errno;
    if (err == 0 && rename(tmp, c->path) != 0)
        err = errno;
    if (err != 0) {
        remove(tmp);
        return sl_stage_error(sc, SL_EIO, "%s: %s", c->path,
                              error_text(err, ebuf, sizeof(ebuf)));
    }
    sl_stage_count_stored(sc, c->pending, c->pending_bytes);
    c->pending = 0;
    c->pending_bytes = 0;
    return 0;
}

/* destroy: free what init() made. Never the options: they are the engine's. */
static void counter_destroy(void *state)
{
    counter_state *c = state;
    sl_value_unref(c->counts);
    sl_buf_fini(&c->text);
}

static const sl_stage_desc counter_stage = {
    SL_STAGE_DESC_HEADER,
    .name = "counter",
    .kind = SL_STAGE_SINK,
    .summary = "count records per key into a JSON file (example plugin)",
    .options = counter_options,
    .state_size = sizeof(counter_state),
    .init = counter_init,
    .process = counter_process,
    .flush = counter_flush,
    .destroy = counter_destroy,
};

SL_PLUGIN_EXPORT("counter", &counter_stage);
