/*
 * map: reshape records — compute fields, rename, delete, keep a subset.
 *
 * The four options apply in this order, each seeing the result of the one
 * before:
 *   set     field -> expression, in the order written; each expression sees
 *           the assignments above it (set: {a: 1, b: a + 1} gives b = 2).
 *           A new field goes last; an existing one keeps its place.
 *   rename  old -> new, in order; the field keeps its place, and a field
 *           already called `new` is replaced. A missing `old` is skipped.
 *   delete  these fields go; missing ones are ignored.
 *   keep    only these fields stay, in the order listed; missing ones are
 *           not created.
 *
 * If a `set` expression fails, the record's assignments are undone and the
 * record goes to the on_error policy as it came in, with the reason
 * ("set latency_s: cannot divide null and double ..., at column 12").
 * Modifications go through sl_record_fields_mut, so a record shared with
 * another branch (a tee) is copied first and the other branch sees nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "sluice/plugin.h"

typedef struct sl__map_undo {
    const char *key;        /* borrowed from the set option */
    sl_value *old;          /* the replaced value (owned), or NULL if new */
} sl__map_undo;

typedef struct sl__map {
    sl_exprmap set;         /* options; immutable */
    sl_strmap rename;
    sl_strlist del;
    sl_strlist keep;
    sl__map_undo *undo;     /* set.n entries, reused per record */
} sl__map;

static const sl_option map_options[] = {
    {SL_OPT_EXPR_MAP, "set", NULL, 0, offsetof(sl__map, set), 0, 0, NULL,
     "field -> expression, applied in order; each sees the ones before it"},
    {SL_OPT_STRING_MAP, "rename", NULL, 0, offsetof(sl__map, rename), 0, 0,
     NULL, "old name -> new name, applied after set; the field keeps its place"},
    {SL_OPT_STRING_LIST, "delete", NULL, 0, offsetof(sl__map, del), 0, 0, NULL,
     "fields to remove, after set and rename"},
    {SL_OPT_STRING_LIST, "keep", NULL, 0, offsetof(sl__map, keep), 0, 0, NULL,
     "fields to keep (in this order), applied last; all others are removed"},
    SL_OPTIONS_END,
};

static int map_init(void *state, sl_stage_ctx *sc)
{
    sl__map *m = state;
    if (m->set.n > 0) {
        m->undo = calloc(m->set.n, sizeof(*m->undo));
        if (m->undo == NULL)
            return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    }
    return 0;
}

static void map_destroy(void *state)
{
    sl__map *m = state;
    free(m->undo);
    m->undo = NULL;
}

/* Put back the first n replaced values, newest first. */
static void undo_set(sl__map *m, sl_value *fields, size_t n)
{
    while (n-- > 0) {
        sl__map_undo *u = &m->undo[n];
        if (u->old != NULL)
            sl_object_set(fields, u->key, u->old);   /* takes u->old */
        else
            sl_object_del(fields, u->key);
        u->old = NULL;
    }
}

static void forget_undo(sl__map *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sl_value_unref(m->undo[i].old);
        m->undo[i].old = NULL;
    }
}

static int apply_set(sl__map *m, sl_stage_ctx *sc, sl_record *rec)
{
    sl_value *fields = sl_record_fields_mut(rec);
    if (fields == NULL)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    sl_expr_env env = {.seq = sl_record_position(rec)->seq, .now_ns = 0};
    for (size_t i = 0; i < m->set.n; i++) {
        const char *key = m->set.keys[i];
        sl_value *v = NULL;
        sl_expr_error err;
        int rc = sl_expr_eval(m->set.exprs[i], rec, &env, &v, &err);
        if (rc == 0 && v == fields) {
            /* `$`: a snapshot, or the object would contain itself. */
            sl_value *copy = sl_value_copy(v);
            sl_value_unref(v);
            v = copy;
            if (v == NULL)
                rc = SL_ENOMEM;
        }
        if (rc < 0) {
            undo_set(m, fields, i);
            if (rc == SL_ENOMEM)
                return sl_stage_error(sc, rc, "set %s: out of memory", key);
            return sl_stage_error(sc, rc, "set %s: %s, at column %d", key,
                                  err.text, err.column);
        }
        m->undo[i].key = key;
        m->undo[i].old = sl_value_ref(sl_object_get(fields, key));
        rc = sl_object_set(fields, key, v);
        if (rc < 0) {
            undo_set(m, fields, i + 1);
            return sl_stage_error(sc, rc, "set %s: out of memory", key);
        }
    }
    forget_undo(m, m->set.n);
    return 0;
}

/*
 * A copy of fields with `from` renamed to `to` in place, and any other
 * field called `to` left out. Values are shared, not copied.
 */
static sl_value *renamed(const sl_value *fields, const char *from,
                         const char *to)
{
    sl_value *o = sl_value_object();
    if (o == NULL)
        return NULL;
    for (void *it = sl_object_iter(fields); it != NULL;
         it = sl_object_next(fields, it)) {
        const char *k = sl_object_iter_key(it);
        if (strcmp(k, to) == 0)
            continue;
        const char *name = strcmp(k, from) == 0 ? to : k;
        if (sl_object_set(o, name, sl_value_ref(sl_object_iter_value(it))) < 0) {
            sl_value_unref(o);
            return NULL;
        }
    }
    return o;
}

static int apply_rename(const sl__map *m, sl_stage_ctx *sc, sl_record *rec)
{
    for (size_t i = 0; i < m->rename.n; i++) {
        const char *from = m->rename.keys[i], *to = m->rename.values[i];
        const sl_value *fields = sl_record_fields(rec);
        if (strcmp(from, to) == 0 || sl_object_get(fields, from) == NULL)
            continue;
        sl_value *o = renamed(fields, from, to);
        if (o == NULL || sl_record_set_fields(rec, o) < 0)
            return sl_stage_error(sc, SL_ENOMEM, "rename %s: out of memory",
                                  from);
    }
    return 0;
}

static int apply_delete(const sl__map *m, sl_stage_ctx *sc, sl_record *rec)
{
    const sl_value *fields = sl_record_fields(rec);
    bool any = false;
    for (size_t i = 0; i < m->del.n && !any; i++)
        any = sl_object_get(fields, m->del.items[i]) != NULL;
    if (!any)
        return 0;     /* nothing to do: leave a shared record unshared */
    sl_value *mut = sl_record_fields_mut(rec);
    if (mut == NULL)
        return sl_stage_error(sc, SL_ENOMEM, "delete: out of memory");
    for (size_t i = 0; i < m->del.n; i++)
        sl_object_del(mut, m->del.items[i]);    /* SL_ENOTFOUND is fine */
    return 0;
}

static int apply_keep(const sl__map *m, sl_stage_ctx *sc, sl_record *rec)
{
    const sl_value *fields = sl_record_fields(rec);
    sl_value *o = sl_value_object();
    if (o == NULL)
        return sl_stage_error(sc, SL_ENOMEM, "keep: out of memory");
    for (size_t i = 0; i < m->keep.n; i++) {
        sl_value *v = sl_object_get(fields, m->keep.items[i]);
        if (v != NULL && sl_object_set(o, m->keep.items[i], sl_value_ref(v)) < 0) {
            sl_value_unref(o);
            return sl_stage_error(sc, SL_ENOMEM, "keep: out of memory");
        }
    }
    if (sl_record_set_fields(rec, o) < 0)
        return sl_stage_error(sc, SL_ENOMEM, "keep: out of memory");
    return 0;
}

static int map_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    sl__map *m = state;
    int rc = 0;
    if (m->set.n > 0)
        rc = apply_set(m, sc, rec);
    if (rc == 0 && m->rename.n > 0)
        rc = apply_rename(m, sc, rec);
    if (rc == 0 && m->del.n > 0)
        rc = apply_delete(m, sc, rec);
    if (rc == 0 && m->keep.n > 0)
        rc = apply_keep(m, sc, rec);
    if (rc < 0)
        return rc;
    return sl_emit(sc, rec);
}

const sl_stage_desc sl_stage_map = {
    SL_STAGE_DESC_HEADER,
    .name = "map",
    .kind = SL_STAGE_TRANSFORM,
    .summary = "reshape records: compute, rename, delete or keep fields",
    .options = map_options,
    .state_size = sizeof(sl__map),
    .init = map_init,
    .process = map_process,
    .destroy = map_destroy,
};
