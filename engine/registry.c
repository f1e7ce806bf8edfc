/*
 * Stage types: the built-in table and stage plugins. See registry.h.
 *
 * Built-ins come from stages/builtin.def, expanded twice: once to declare
 * each descriptor, once to list them. Plugins come from dlopen() and their
 * sluice_plugin() table. Both go through the same checks and are copied
 * into zeroed descriptors the registry owns.
 */
#include "engine/registry.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/plugin_file.h"
#include "sluice/error.h"

/* ------------------------------------------------------------------ */
/* The built-in table                                                  */
/* ------------------------------------------------------------------ */

#define X(sym) extern const sl_stage_desc sym;
#include "stages/builtin.def"
#undef X

static const sl_stage_desc *const builtin_table[] = {
#define X(sym) &sym,
#include "stages/builtin.def"
#undef X
    NULL,
};

/* ------------------------------------------------------------------ */

/* Size of each ABI version's structs: what a stage must at least provide. */
#define STAGE_DESC_SIZE_1_0 \
    (offsetof(sl_stage_desc, destroy) + sizeof(((sl_stage_desc *)0)->destroy))
#define PLUGIN_SIZE_1_0 \
    (offsetof(sl_plugin, stages) + sizeof(((sl_plugin *)0)->stages))

#define MAX_PLUGIN_STAGES 1024
#define MAX_OPTIONS 512
#define MAX_STATE_SIZE (64u << 20)
#define MAX_TYPE_NAME 64

typedef struct entry {
    sl_stage_desc desc;   /* zeroed copy of the stage's descriptor */
    const char *origin;   /* "built-in" or the plugin path (owned by plugin) */
    bool builtin;         /* from the built-in table */
} entry;

typedef struct plugin_handle {
    void *dl;             /* dlopen handle */
    char *path;           /* as given */
} plugin_handle;

struct sl_registry {
    entry **entries;          /* owned, sorted by (name, form) */
    size_t n;
    size_t cap;
    const char **names;       /* distinct names + NULL; owned array */
    plugin_handle *plugins;   /* loaded shared objects */
    size_t n_plugins;
    char **origins;           /* plugin origin strings added without dlopen */
    size_t n_origins;
};

const char *sl__stage_kind_name(sl_stage_kind kind)
{
    switch (kind) {
    case SL_STAGE_SOURCE:
        return "source";
    case SL_STAGE_TRANSFORM:
        return "transform";
    case SL_STAGE_SINK:
        return "sink";
    }
    return "unknown";
}

const char *sl__opt_type_name(sl_opt_type type)
{
    switch (type) {
    case SL_OPT_BOOL:
        return "bool";
    case SL_OPT_INT:
        return "int";
    case SL_OPT_DOUBLE:
        return "number";
    case SL_OPT_STRING:
        return "string";
    case SL_OPT_DURATION:
        return "duration";
    case SL_OPT_RATE:
        return "rate";
    case SL_OPT_SIZE:
        return "size";
    case SL_OPT_ENUM:
        return "enum";
    case SL_OPT_EXPR:
        return "expression";
    case SL_OPT_STRING_LIST:
        return "list of strings";
    case SL_OPT_STRING_MAP:
        return "map of strings";
    case SL_OPT_EXPR_MAP:
        return "map of expressions";
    }
    return "unknown";
}

/* Size of the C value an option type stores, 0 for an unknown type. */
static size_t opt_value_size(sl_opt_type type)
{
    switch (type) {
    case SL_OPT_BOOL:
        return sizeof(bool);
    case SL_OPT_INT:
    case SL_OPT_DURATION:
    case SL_OPT_SIZE:
        return sizeof(int64_t);
    case SL_OPT_DOUBLE:
    case SL_OPT_RATE:
        return sizeof(double);
    case SL_OPT_STRING:
        return sizeof(char *);
    case SL_OPT_ENUM:
        return sizeof(int);
    case SL_OPT_EXPR:
        return sizeof(sl_expr *);
    case SL_OPT_STRING_LIST:
        return sizeof(sl_strlist);
    case SL_OPT_STRING_MAP:
        return sizeof(sl_strmap);
    case SL_OPT_EXPR_MAP:
        return sizeof(sl_exprmap);
    }
    return 0;
}

static bool is_source(const sl_stage_desc *d)
{
    return d->kind == SL_STAGE_SOURCE;
}

/* Report "[file:line:col: ]plugin PATH: text" or "stage type NAME: text". */
typedef struct where {
    const char *origin;   /* plugin path, or NULL for built-ins */
    const char *file;     /* config file naming the plugin, or NULL */
    int line;
    int col;
    sl_diag *diag;        /* may be NULL */
} where;

static void report(const where *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void report(const where *w, const char *fmt, ...)
{
    if (w->diag == NULL)
        return;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (w->origin != NULL)
        sl__diag_add(w->diag, w->file, w->line, w->col, "plugin %s: %s",
                     w->origin, text);
    else
        sl__diag_add(w->diag, w->file, w->line, w->col, "built-in %s", text);
}

/*
 * Check the fields every version shares, in the stage's own memory (d may
 * be any size; only these fields are read). Returns 0, SL_EABI or
 * SL_EINVAL after reporting.
 */
static int check_header(const sl_stage_desc *d, const where *w)
{
    if (d == NULL) {
        report(w, "a stage descriptor is NULL");
        return SL_EINVAL;
    }
    /* The first three fields are in every version. */
    if (d->abi_major != SL_ABI_MAJOR) {
        report(w, "stage built for ABI %u.%u, this sluice speaks ABI %d.%d: "
                  "rebuild it against this version's headers",
               (unsigned)d->abi_major, (unsigned)d->abi_minor, SL_ABI_MAJOR,
               SL_ABI_MINOR);
        return SL_EABI;
    }
    if (d->struct_size < STAGE_DESC_SIZE_1_0) {
        report(w, "stage descriptor is %u bytes, smaller than ABI %d.0's %zu",
               (unsigned)d->struct_size, SL_ABI_MAJOR,
               (size_t)STAGE_DESC_SIZE_1_0);
        return SL_EABI;
    }
    return 0;
}

/*
 * Check the rest of a descriptor, on the registry's zeroed copy (so a
 * field the stage's version lacks reads as zero, never as whatever follows
 * the stage's struct). Returns 0 or SL_EINVAL after reporting.
 */
static int check_desc(const sl_stage_desc *d, const where *w)
{
    const char *name = d->name;
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len > MAX_TYPE_NAME ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != len ||
        (name[0] >= '0' && name[0] <= '9')) {
        report(w, "stage type name '%s' is not a lower-case identifier "
                  "(a-z, 0-9, _; at most %d characters)",
               name != NULL ? name : "(null)", MAX_TYPE_NAME);
        return SL_EINVAL;
    }
    switch (d->kind) {
    case SL_STAGE_SOURCE:
        if (d->run == NULL) {
            report(w, "stage type '%s': a source needs a run callback", name);
            return SL_EINVAL;
        }
        break;
    case SL_STAGE_TRANSFORM:
    case SL_STAGE_SINK:
        if (d->process == NULL) {
            report(w, "stage type '%s': a %s needs a process callback", name,
                   sl__stage_kind_name(d->kind));
            return SL_EINVAL;
        }
        break;
    default:
        report(w, "stage type '%s': unknown kind %d", name, (int)d->kind);
        return SL_EINVAL;
    }
    if (d->state_size > MAX_STATE_SIZE) {
        report(w, "stage type '%s': state_size %zu is unreasonably large",
               name, d->state_size);
        return SL_EINVAL;
    }
    if (d->options == NULL)
        return 0;
    for (size_t i = 0;; i++) {
        if (i == MAX_OPTIONS) {
            report(w, "stage type '%s': option table has no end "
                      "(SL_OPTIONS_END) within %d rows", name, MAX_OPTIONS);
            return SL_EINVAL;
        }
        const sl_option *o = &d->options[i];
        if (o->key == NULL)
            break;
        size_t size = opt_value_size(o->type);
        if (size == 0) {
            report(w, "stage type '%s': option '%s' has unknown type %d", name,
                   o->key, (int)o->type);
            return SL_EINVAL;
        }
        if (o->offset > d->state_size || d->state_size - o->offset < size) {
            report(w, "stage type '%s': option '%s' lies outside the state "
                      "(offset %zu + %zu > state_size %zu)",
                   name, o->key, o->offset, size, d->state_size);
            return SL_EINVAL;
        }
        if (o->type == SL_OPT_ENUM && (o->choices == NULL || !*o->choices)) {
            report(w, "stage type '%s': enum option '%s' lists no choices",
                   name, o->key);
            return SL_EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(d->options[j].key, o->key) == 0) {
                report(w, "stage type '%s': option '%s' declared twice", name,
                       o->key);
                return SL_EINVAL;
            }
        }
    }
    return 0;
}

/* A zeroed copy of what the stage knows; unknown later fields stay 0. */
static entry *copy_desc(const sl_stage_desc *d, const char *origin,
                        bool builtin)
{
    entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    size_t n = d->struct_size < sizeof(e->desc) ? d->struct_size
                                                 : sizeof(e->desc);
    memcpy(&e->desc, d, n);
    e->origin = origin;
    e->builtin = builtin;
    return e;
}

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a;
    const entry *y = *(const entry *const *)b;
    int c = strcmp(x->desc.name, y->desc.name);
    if (c != 0)
        return c;
    return (int)!is_source(&x->desc) - (int)!is_source(&y->desc);
}

/* Find the entry for (name, source form). */
static entry *find_form(const sl_registry *r, const char *name, bool source)
{
    for (size_t i = 0; i < r->n; i++) {
        entry *e = r->entries[i];
        if (strcmp(e->desc.name, name) == 0 && is_source(&e->desc) == source)
            return e;
    }
    return NULL;
}

static bool name_is_builtin(const sl_registry *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->entries[i]->builtin && strcmp(r->entries[i]->desc.name, name) == 0)
            return true;
    return false;
}

/* Rebuild the sorted distinct name list. */
static int rebuild_names(sl_registry *r)
{
    const char **names = malloc((r->n + 1) * sizeof(*names));
    if (names == NULL)
        return SL_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++) {
        const char *nm = r->entries[i]->desc.name;
        if (k == 0 || strcmp(names[k - 1], nm) != 0)
            names[k++] = nm;
    }
    names[k] = NULL;
    free(r->names);
    r->names = names;
    return 0;
}

/*
 * Add n checked entries at once (all or nothing): grow, append, sort,
 * rebuild the names. Takes ownership of the entries on success and frees
 * them on failure.
 */
static int add_entries(sl_registry *r, entry **es, size_t n)
{
    if (n == 0)
        return 0;
    if (r->n + n > r->cap) {
        size_t ncap = r->cap ? r->cap : 16;
        while (ncap < r->n + n)
            ncap *= 2;
        entry **ne = realloc(r->entries, ncap * sizeof(*ne));
        if (ne == NULL)
            goto out_free;
        r->entries = ne;
        r->cap = ncap;
    }
    memcpy(r->entries + r->n, es, n * sizeof(*es));
    r->n += n;
    qsort(r->entries, r->n, sizeof(*r->entries), cmp_entry);
    if (rebuild_names(r) != 0) {
        /* keep the entries (sorted and consistent); names stay stale */
        return SL_ENOMEM;
    }
    return 0;
out_free:
    for (size_t i = 0; i < n; i++)
        free(es[i]);
    return SL_ENOMEM;
}

/*
 * Check and copy a set of descriptors from one origin, refusing a name
 * clash with anything registered or with each other.
 */
static int add_descs(sl_registry *r, const sl_stage_desc *const *descs,
                     size_t n, const char *origin, bool builtin,
                     const where *w)
{
    int rc = 0;
    entry **es = calloc(n > 0 ? n : 1, sizeof(*es));
    if (es == NULL)
        return SL_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        rc = check_header(descs[i], w);
        if (rc != 0)
            goto out_free;
        es[k] = copy_desc(descs[i], origin, builtin);
        if (es[k] == NULL) {
            rc = SL_ENOMEM;
            goto out_free;
        }
        const sl_stage_desc *d = &es[k]->desc;
        k++;   /* es[k - 1] is freed on failure from here on */
        rc = check_desc(d, w);
        if (rc != 0)
            goto out_free;
        if (!builtin && name_is_builtin(r, d->name)) {
            report(w, "stage type '%s' clashes with the built-in '%s' "
                      "(a plugin cannot replace a built-in type)",
                   d->name, d->name);
            rc = SL_EEXISTS;
            goto out_free;
        }
        entry *prev = find_form(r, d->name, is_source(d));
        if (prev != NULL) {
            report(w, "stage type '%s' (%s form) is already defined by %s",
                   d->name, is_source(d) ? "fetch" : "consuming",
                   prev->origin);
            rc = SL_EEXISTS;
            goto out_free;
        }
        for (size_t j = 0; j + 1 < k; j++) {
            if (strcmp(es[j]->desc.name, d->name) == 0 &&
                is_source(&es[j]->desc) == is_source(d)) {
                report(w, "stage type '%s' (%s form) is defined twice",
                       d->name, is_source(d) ? "fetch" : "consuming");
                rc = SL_EEXISTS;
                goto out_free;
            }
        }
    }
    rc = add_entries(r, es, k);
    free(es);
    return rc;
out_free:
    for (size_t j = 0; j < k; j++)
        free(es[j]);
    free(es);
    return rc;
}

int sl__registry_create(sl_diag *diag, sl_registry **out)
{
    sl_registry *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return SL_ENOMEM;
    size_t n = sizeof(builtin_table) / sizeof(builtin_table[0]) - 1;
    where w = {.diag = diag};
    int rc = add_descs(r, builtin_table, n, "built-in", true, &w);
    if (rc == 0 && r->names == NULL)
        rc = rebuild_names(r);
    if (rc != 0) {
        sl__registry_destroy(r);
        return rc == SL_ENOMEM ? SL_ENOMEM : SL_EINTERNAL;
    }
    *out = r;
    return 0;
}

void sl__registry_destroy(sl_registry *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->entries[i]);
    free(r->entries);
    free(r->names);
    for (size_t i = 0; i < r->n_plugins; i++) {
        dlclose(r->plugins[i].dl);
        free(r->plugins[i].path);
    }
    free(r->plugins);
    for (size_t i = 0; i < r->n_origins; i++)
        free(r->origins[i]);
    free(r->origins);
    free(r);
}

/* Check the plugin table itself, then its stages. */
static int add_plugin(sl_registry *r, const sl_plugin *p, const char *origin,
                      const where *w)
{
    if (p == NULL) {
        report(w, "sluice_plugin() returned NULL");
        return SL_EINVAL;
    }
    if (p->abi_major != SL_ABI_MAJOR) {
        report(w, "built for sluice plugin ABI %u.%u, this sluice speaks ABI "
                  "%d.%d: rebuild the plugin against this version's headers",
               (unsigned)p->abi_major, (unsigned)p->abi_minor, SL_ABI_MAJOR,
               SL_ABI_MINOR);
        return SL_EABI;
    }
    if (p->struct_size < PLUGIN_SIZE_1_0) {
        report(w, "plugin table is %u bytes, smaller than ABI %d.0's %zu",
               (unsigned)p->struct_size, SL_ABI_MAJOR,
               (size_t)PLUGIN_SIZE_1_0);
        return SL_EABI;
    }
    sl_plugin copy;
    memset(&copy, 0, sizeof(copy));
    memcpy(&copy, p, p->struct_size < sizeof(copy) ? p->struct_size
                                                    : sizeof(copy));
    if (copy.n_stages == 0 || copy.stages == NULL) {
        report(w, "declares no stage types");
        return SL_EINVAL;
    }
    if (copy.n_stages > MAX_PLUGIN_STAGES) {
        report(w, "declares %zu stage types, more than %d", copy.n_stages,
               MAX_PLUGIN_STAGES);
        return SL_EINVAL;
    }
    return add_descs(r, copy.stages, copy.n_stages, origin, false, w);
}

int sl__registry_add_plugin(sl_registry *r, const sl_plugin *p,
                            const char *origin, sl_diag *diag)
{
    char *o = strdup(origin != NULL ? origin : "(unnamed)");
    if (o == NULL)
        return SL_ENOMEM;
    char **no = realloc(r->origins, (r->n_origins + 1) * sizeof(*no));
    if (no == NULL) {
        free(o);
        return SL_ENOMEM;
    }
    r->origins = no;
    r->origins[r->n_origins++] = o;
    where w = {.origin = o, .diag = diag};
    return add_plugin(r, p, o, &w);
}

int sl__registry_load_plugin(sl_registry *r, const char *path,
                             const char *file, int line, int col,
                             sl_diag *diag)
{
    where w = {.origin = path, .file = file, .line = line, .col = col,
               .diag = diag};
    if (path == NULL || *path == '\0') {
        w.origin = "''";
        report(&w, "empty path");
        return SL_EINVAL;
    }
    /* Find the file (SLUICE_PLUGIN_PATH for a bare name) and refuse what
     * cannot be a shared object before dlopen sees it; from here on the
     * messages name the file found. */
    char why[512];
    char *dlpath = NULL;
    int rc = sl__plugin_locate(path, &dlpath, why, sizeof(why));
    if (rc == SL_ENOMEM)
        return rc;
    if (rc != 0) {
        report(&w, "cannot load: %s", why);
        return rc;
    }
    w.origin = dlpath;
    dlerror();
    void *dl = dlopen(dlpath, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        sl__plugin_dlerror_text(dlpath, dlerror(), why, sizeof(why));
        report(&w, "%s", why);
        free(dlpath);
        return SL_ENOTFOUND;
    }
    for (size_t i = 0; i < r->n_plugins; i++) {
        if (r->plugins[i].dl == dl) {
            dlclose(dl);   /* drop the extra reference; already registered */
            free(dlpath);
            return 0;
        }
    }
    union {
        void *obj;
        const sl_plugin *(*fn)(void);
    } sym;
    dlerror();
    sym.obj = dlsym(dl, SL_PLUGIN_SYMBOL);
    if (sym.obj == NULL) {
        report(&w, "no '%s' function: not a sluice plugin (define it with "
                   "SL_PLUGIN_EXPORT)", SL_PLUGIN_SYMBOL);
        rc = SL_ENOTFOUND;
        goto out_close;
    }
    plugin_handle *np = realloc(r->plugins,
                                (r->n_plugins + 1) * sizeof(*np));
    if (np == NULL) {
        rc = SL_ENOMEM;
        goto out_close;
    }
    r->plugins = np;
    rc = add_plugin(r, sym.fn(), dlpath, &w);
    if (rc != 0)
        goto out_close;
    r->plugins[r->n_plugins].dl = dl;
    r->plugins[r->n_plugins].path = dlpath;
    r->n_plugins++;
    return 0;
out_close:
    dlclose(dl);
    free(dlpath);
    return rc;
}

bool sl__registry_forms(const sl_registry *r, const char *type,
                        const sl_stage_desc **source,
                        const sl_stage_desc **consumer)
{
    entry *s = type != NULL ? find_form(r, type, true) : NULL;
    entry *c = type != NULL ? find_form(r, type, false) : NULL;
    if (source != NULL)
        *source = s != NULL ? &s->desc : NULL;
    if (consumer != NULL)
        *consumer = c != NULL ? &c->desc : NULL;
    return s != NULL || c != NULL;
}

const sl_stage_desc *sl__registry_find(const sl_registry *r, const char *type,
                                       bool has_input)
{
    const sl_stage_desc *s, *c;
    if (!sl__registry_forms(r, type, &s, &c))
        return NULL;
    if (has_input)
        return c != NULL ? c : s;
    return s != NULL ? s : c;
}

size_t sl__registry_count(const sl_registry *r)
{
    return r->n;
}

const sl_stage_desc *sl__registry_at(const sl_registry *r, size_t i)
{
    return i < r->n ? &r->entries[i]->desc : NULL;
}

const char *sl__registry_origin(const sl_registry *r, size_t i)
{
    return i < r->n ? r->entries[i]->origin : NULL;
}

const char *const *sl__registry_names(const sl_registry *r)
{
    static const char *const none[] = {NULL};
    return r->names != NULL ? (const char *const *)r->names : none;
}
/* ------------------------------------------------------------------ */
/* The adapter config.c uses                                           */
/* ------------------------------------------------------------------ */

static bool adapter_forms(void *arg, const char *type,
                          const sl_stage_desc **source,
                          const sl_stage_desc **consumer)
{
    return sl__registry_forms(arg, type, source, consumer);
}

static const char *const *adapter_names(void *arg)
{
    return sl__registry_names(arg);
}

static int adapter_load_plugins(void *arg, const sl_config *cfg,
                                sl_diag *diag)
{
    int first = 0;
    for (size_t i = 0; i < cfg->n_plugins; i++) {
        const sl_plugin_conf *pc = &cfg->plugins[i];
        int rc = sl__registry_load_plugin(arg, pc->path, cfg->file,
                                          pc->pos.line, pc->pos.col, diag);
        if (rc != 0 && first == 0)
            first = rc;
    }
    return first;
}

void sl__registry_adapter(sl_registry *r, sl_stage_registry *out)
{
    out->arg = r;
    out->forms = adapter_forms;
    out->names = adapter_names;
    out->load_plugins = adapter_load_plugins;
}
