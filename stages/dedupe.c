/*
 * dedupe: drop records whose key was seen recently.
 *
 * The `key` expression is evaluated per record and its value turned into a
 * canonical byte string, so keys compare by value: 1 and 1.0 are the same
 * key, and so are objects with the same members in another order. The last
 * `window` distinct keys are remembered in a hash set; when a new key would
 * exceed the window, the oldest remembered key is forgotten (first in,
 * first out), so memory stays bounded whatever the input. A record whose
 * key is null (e.g. the field is missing) has nothing to compare and passes.
 *
 * One window per stage: dedupe runs with a single worker.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/plugin.h"

typedef struct dd_entry {
    struct dd_entry *hnext;     /* hash chain */
    struct dd_entry *younger;   /* FIFO: the key remembered after this one */
    uint64_t hash;
    size_t len;
    unsigned char key[];        /* canonical key bytes */
} dd_entry;

typedef struct dedupe_state {
    sl_expr *key;               /* option: key expression (engine-owned) */
    int64_t window;             /* option: distinct keys remembered */
    dd_entry **table;           /* power-of-two buckets */
    size_t table_size;
    size_t count;               /* keys remembered */
    dd_entry *oldest;           /* FIFO head: forgotten first */
    dd_entry *newest;           /* FIFO tail */
    uint64_t seed;              /* hash seed */
    sl_buf buf;                 /* scratch for the canonical key */
} dedupe_state;

static const sl_option dedupe_options[] = {
    {SL_OPT_EXPR, "key", NULL, SL_OPT_REQUIRED,
     offsetof(dedupe_state, key), 0, 0, NULL,
     "expression giving each record's identity, e.g. id or user + \":\" + to_string(day)"},
    {SL_OPT_INT, "window", "100000", 0,
     offsetof(dedupe_state, window), 1, 1e8, NULL,
     "how many distinct recent keys to remember; older ones are forgotten first"},
    SL_OPTIONS_END,
};

#define DD_INITIAL_TABLE 64

/* ------------------------------------------------------------------ */
/* Canonical keys                                                      */
/* ------------------------------------------------------------------ */

static int canon_value(const sl_value *v, sl_buf *b);

static int canon_int(int64_t i, sl_buf *b)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "i%lld;", (long long)i);
    return sl_buf_append(b, tmp, (size_t)n);
}

static int canon_string(const char *s, size_t len, sl_buf *b)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "s%zu:", len);
    int rc = sl_buf_append(b, tmp, (size_t)n);
    if (rc == 0 && len > 0)
        rc = sl_buf_append(b, s, len);
    return rc;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(sl_object_iter_key(*(void *const *)a),
                  sl_object_iter_key(*(void *const *)b));
}

/* Members sorted by key, so member order does not matter. */
static int canon_object(const sl_value *o, sl_buf *b)
{
    size_t n = sl_object_len(o);
    int rc = sl_buf_putc(b, '{');
    if (rc != 0)
        return rc;
    if (n == 0)
        return sl_buf_putc(b, '}');
    void **its = malloc(n * sizeof(*its));
    if (its == NULL)
        return SL_ENOMEM;
    size_t k = 0;
    for (void *it = sl_object_iter(o); it != NULL && k < n; it = sl_object_next(o, it))
        its[k++] = it;
    qsort(its, k, sizeof(*its), cmp_keys);
    for (size_t i = 0; i < k && rc == 0; i++) {
        const char *key = sl_object_iter_key(its[i]);
        rc = canon_string(key, strlen(key), b);
        if (rc == 0)
            rc = canon_value(sl_object_iter_value(its[i]), b);
    }
    free(its);
    return rc != 0 ? rc : sl_buf_putc(b, '}');
}

/*
 * Append a byte string that is equal for two values exactly when the
 * values are equal: numbers with an integral value print as integers.
 */
static int canon_value(const sl_value *v, sl_buf *b)
{
    switch (sl_value_type(v)) {
    case SL_TYPE_NULL:
        return sl_buf_putc(b, 'n');
    case SL_TYPE_BOOL:
        return sl_buf_putc(b, sl_value_get_bool(v) ? 't' : 'f');
    case SL_TYPE_INT:
        return canon_int(sl_value_get_int(v), b);
    case SL_TYPE_DOUBLE: {
        double d = sl_value_get_double(v);
        if (d == trunc(d) && d >= -0x1p63 && d < 0x1p63)
            return canon_int((int64_t)d, b);
        char tmp[40];
        int n = snprintf(tmp, sizeof(tmp), "d%.17g;", d);
        return sl_buf_append(b, tmp, (size_t)n);
    }
    case SL_TYPE_STRING: {
        size_t len = 0;
        const char *s = sl_value_get_string(v, &len);
        return canon_string(s, len, b);
    }
    case SL_TYPE_ARRAY: {
        int rc = sl_buf_putc(b, '[');
        for (size_t i = 0; i < sl_array_len(v) && rc == 0; i++)
            rc = canon_value(sl_array_get(v, i), b);
        return rc != 0 ? rc : sl_buf_putc(b, ']');
    }
    case SL_TYPE_OBJECT:
        return canon_object(v, b);
    }
    return SL_ETYPE;
}

/* ------------------------------------------------------------------ */
/* The window: hash set + FIFO                                         */
/* ------------------------------------------------------------------ */

/* FNV-1a over the bytes from a seeded basis, then a 64-bit finaliser. */
static uint64_t dd_hash(uint64_t seed, const unsigned char *p, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325) ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

static dd_entry *dd_find(const dedupe_state *st, uint64_t h,
                         const unsigned char *key, size_t len)
{
    for (dd_entry *e = st->table[h & (st->table_size - 1)]; e != NULL; e = e->hnext)
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

/* Forget the oldest key. */
static void dd_forget_oldest(dedupe_state *st)
{
    dd_entry *e = st->oldest;
    dd_entry **pp = &st->table[e->hash & (st->table_size - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    st->oldest = e->younger;
    if (st->oldest == NULL)
        st->newest = NULL;
    st->count--;
    free(e);
}

/* Double the buckets; on allocation failure keep the old ones. */
static void dd_grow(dedupe_state *st)
{
    size_t size = st->table_size * 2;
    dd_entry **t = calloc(size, sizeof(*t));
    if (t == NULL)
        return;
    for (size_t i = 0; i < st->table_size; i++) {
        dd_entry *e = st->table[i];
        while (e != NULL) {
            dd_entry *next = e->hnext;
            e->hnext = t[e->hash & (size - 1)];
            t[e->hash & (size - 1)] = e;
            e = next;
        }
    }
    free(st->table);
    st->table = t;
    st->table_size = size;
}

/* Remember a new key, forgetting the oldest when the window is full. */
static int dd_remember(dedupe_state *st, uint64_t h, const unsigned char *key,
                       size_t len)
{
    dd_entry *e = malloc(sizeof(*e) + len);
    if (e == NULL)
        return SL_ENOMEM;
    if (st->count >= (size_t)st->window)
        dd_forget_oldest(st);
    e->hash = h;
    e->len = len;
    memcpy(e->key, key, len);
    e->younger = NULL;
    size_t slot = h & (st->table_size - 1);
    e->hnext = st->table[slot];
    st->table[slot] = e;
    if (st->newest != NULL)
        st->newest->younger = e;
    else
        st->oldest = e;
    st->newest = e;
    st->count++;
    if (st->count > st->table_size / 4 * 3)
        dd_grow(st);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Callbacks                                                           */
/* ------------------------------------------------------------------ */

static int dedupe_init(void *state, sl_stage_ctx *sc)
{
    dedupe_state *st = state;
    sl_buf_init(&st->buf);
    if (sl_stage_worker_count(sc) > 1)
        return sl_stage_error(sc, SL_ECONFIG,
                              "keeps one window of keys: run it with workers: 1");
    st->table = calloc(DD_INITIAL_TABLE, sizeof(*st->table));
    if (st->table == NULL)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    st->table_size = DD_INITIAL_TABLE;
    /* Any varying seed will do: it only spreads keys over the buckets. */
    st->seed = (uint64_t)sl_clock_now(NULL) ^ (uint64_t)(uintptr_t)st;
    return 0;
}

static int dedupe_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    dedupe_state *st = state;
    const sl_position *pos = sl_record_position(rec);
    sl_expr_env env = {.seq = pos != NULL ? pos->seq : 0, .now_ns = 0};
    sl_expr_error err = {0};
    sl_value *key = NULL;
    int rc = sl_expr_eval(st->key, rec, &env, &key, &err);
    if (rc != 0)
        return sl_stage_error(sc, rc, "key %s: %s", sl_expr_source(st->key),
                              err.text);
    if (sl_value_type(key) == SL_TYPE_NULL) {
        sl_value_unref(key);
        sl_emit(sc, rec);
        return 0;
    }
    sl_buf_reset(&st->buf);
    rc = canon_value(key, &st->buf);
    sl_value_unref(key);
    if (rc != 0)
        return sl_stage_error(sc, rc, "out of memory building the key");

    const unsigned char *k = (const unsigned char *)st->buf.data;
    uint64_t h = dd_hash(st->seed, k, st->buf.len);
    if (dd_find(st, h, k, st->buf.len) != NULL) {
        sl_record_drop(sc, rec);
        return 0;
    }
    rc = dd_remember(st, h, k, st->buf.len);
    if (rc != 0)
        return sl_stage_error(sc, rc, "out of memory remembering a key");
    sl_emit(sc, rec);   /* on failure the run is ending; rec is gone */
    return 0;
}

static void dedupe_destroy(void *state)
{
    dedupe_state *st = state;
    dd_entry *e = st->oldest;
    while (e != NULL) {
        dd_entry *next = e->younger;
        free(e);
        e = next;
    }
    st->oldest = st->newest = NULL;
    st->count = 0;
    free(st->table);
    st->table = NULL;
    sl_buf_fini(&st->buf);
}

const sl_stage_desc sl_stage_dedupe = {
    SL_STAGE_DESC_HEADER,
    .name = "dedupe",
    .kind = SL_STAGE_TRANSFORM,
    .summary = "drop records whose key was seen among the last `window` distinct keys",
    .options = dedupe_options,
    .state_size = sizeof(dedupe_state),
    .init = dedupe_init,
    .process = dedupe_process,
    .destroy = dedupe_destroy,
};
