/*
 * Pipeline files: the YAML tree -> sl_config, checking everything that can
 * be checked from the file and the stage registry, and reporting every
 * problem found rather than stopping at the first.
 */
#include "engine/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/options.h"
#include "sluice/error.h"

const char *const sl__stage_reserved_keys[] = {
    "name",       "type",     "inputs",     "workers",
    "ordered",    "capacity", "on_error",   "retry",
    "rate_limit", "circuit_breaker", "timeout", NULL,
};

static const char *const top_keys[] = {
    "name", "settings", "plugins", "metrics", "dead_letter", "stages", NULL,
};

#define SL_STAGE_NAME_MAX 64

_Static_assert(sizeof(sl_on_error) == sizeof(int), "enum options are int");
_Static_assert(sizeof(sl_on_stall) == sizeof(int), "enum options are int");

/* ------------------------------------------------------------------ */
/* Tables for the engine's own keys                                    */
/* ------------------------------------------------------------------ */

#define CFG(f) offsetof(sl_config, f)

static const sl_option settings_table[] = {
    {SL_OPT_INT, "channel_capacity", "1024", 0, CFG(settings.channel_capacity),
     1, 1 << 20, NULL, "records per channel between stages"},
    {SL_OPT_DURATION, "shutdown_timeout", "30s", 0,
     CFG(settings.shutdown_timeout_ns), 0, 0, NULL,
     "how long to drain after SIGINT/SIGTERM before forcing a stop"},
    {SL_OPT_DURATION, "deadline", NULL, 0, CFG(settings.deadline_ns), 0, 0,
     NULL, "whole-run timeout (0 = none)"},
    {SL_OPT_STRING, "state", NULL, 0, CFG(settings.state), 0, 0, NULL,
     "SQLite file keeping source positions, for resume"},
    {SL_OPT_DURATION, "stall_timeout", "30s", 0, CFG(settings.stall_timeout_ns),
     0, 0, NULL, "a stage silent this long is reported stuck (0 = never)"},
    {SL_OPT_ENUM, "on_stall", "warn", 0, CFG(settings.on_stall), 0, 0,
     "warn|fail", "what a stuck stage does to the run"},
    SL_OPTIONS_END,
};

static const sl_option metrics_table[] = {
    {SL_OPT_STRING, "file", NULL, 0, CFG(metrics.file), 0, 0, NULL,
     "JSON snapshot, replaced every interval and at the end"},
    {SL_OPT_DURATION, "interval", "1s", 0, CFG(metrics.interval_ns), 1e6,
     86400e9, NULL, "how often snapshots are taken"},
    {SL_OPT_STRING, "listen", NULL, 0, CFG(metrics.listen), 0, 0, NULL,
     "host:port of a Prometheus text endpoint at /metrics"},
    {SL_OPT_STRING, "history", NULL, 0, CFG(metrics.history), 0, 0, NULL,
     "JSON lines file every snapshot is appended to"},
    SL_OPTIONS_END,
};

static const sl_option dead_letter_table[] = {
    {SL_OPT_STRING, "path", NULL, SL_OPT_REQUIRED, CFG(dead_letter.path), 0, 0,
     NULL, "JSON lines file of failed records"},
    SL_OPTIONS_END,
};

#define ST(f) offsetof(sl_stage_conf, f)

/* Reserved stage keys that are plain values (the rest are parsed below). */
static const sl_option stage_table[] = {
    {SL_OPT_INT, "workers", "1", 0, ST(workers), 1, 256, NULL,
     "copies of the stage running in parallel"},
    {SL_OPT_BOOL, "ordered", "false", 0, ST(ordered), 0, 0, NULL,
     "keep input order across workers"},
    {SL_OPT_INT, "capacity", NULL, 0, ST(capacity), 1, 1 << 20, NULL,
     "records per input channel (default: settings.channel_capacity)"},
    {SL_OPT_ENUM, "on_error", "fail", 0, ST(on_error), 0, 0,
     "fail|skip|dead_letter|retry", "what a failed record does"},
    {SL_OPT_DURATION, "timeout", NULL, 0, ST(timeout_ns), 0, 0, NULL,
     "limit per record or request (0 = none)"},
    SL_OPTIONS_END,
};

static const sl_option retry_table[] = {
    {SL_OPT_INT, "attempts", "3", 0, offsetof(sl_retry_conf, attempts), 1,
     1000, NULL, "tries in total, the first included"},
    {SL_OPT_DURATION, "backoff", "100ms", 0, offsetof(sl_retry_conf, backoff_ns),
     0, 0, NULL, "first wait, doubled each time, with jitter"},
    {SL_OPT_DURATION, "max_backoff", "10s", 0,
     offsetof(sl_retry_conf, max_backoff_ns), 0, 0, NULL, "cap on one wait"},
    SL_OPTIONS_END,
};

static const sl_option rate_table[] = {
    {SL_OPT_RATE, "rate", NULL, SL_OPT_REQUIRED, offsetof(sl_rate_conf, rate),
     1e-9, 1e12, NULL, "sustained rate: 100/s, 6000/m"},
    {SL_OPT_INT, "burst", "1", 0, offsetof(sl_rate_conf, burst), 1, 1e9, NULL,
     "tokens that may be spent at once"},
    SL_OPTIONS_END,
};

static const sl_option breaker_table[] = {
    {SL_OPT_INT, "failures", "5", 0, offsetof(sl_breaker_conf, failures), 1,
     1e6, NULL, "consecutive failures that open the breaker"},
    {SL_OPT_DURATION, "cooldown", "30s", 0,
     offsetof(sl_breaker_conf, cooldown_ns), 0, 0, NULL,
     "time open before one trial call"},
    SL_OPTIONS_END,
};

const char *sl__on_error_name(sl_on_error e)
{
    switch (e) {
    case SL_ON_ERROR_FAIL:
        return "fail";
    case SL_ON_ERROR_SKIP:
        return "skip";
    case SL_ON_ERROR_DEAD_LETTER:
        return "dead_letter";
    case SL_ON_ERROR_RETRY:
        return "retry";
    }
    return "unknown";
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

typedef struct sl_loadctx {
    sl_config *cfg;                  /* being filled */
    const sl_config_opts *opts;      /* registry etc. */
    sl_diag *diag;                   /* messages */
    bool nomem;                      /* an allocation failed */
} sl_loadctx;

static void err_node(sl_loadctx *c, const sl_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err_node(sl_loadctx *c, const sl_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl__diag_vadd(c->diag, n ? n->file : c->cfg->file, n ? n->line : 0,
                  n ? n->col : 0, fmt, ap);
    va_end(ap);
}

static sl_conf_pos pos_of(const sl_node *n)
{
    sl_conf_pos p = {n ? n->line : 0, n ? n->col : 0};
    return p;
}

/* Apply a table, noting out-of-memory. */
static void apply(sl_loadctx *c, const sl_option *table, const sl_node *map,
                  const char *what, void *base)
{
    if (sl__options_apply_named(table, map, NULL, what, base, c->diag)
        == SL_ENOMEM)
        c->nomem = true;
}

/*
 * A non-null scalar string without NUL bytes, for keys the config reads
 * itself. Reports and returns NULL otherwise.
 */
static const char *want_string(sl_loadctx *c, const sl_node *v,
                               const char *key)
{
    if (v->invalid)
        return NULL;
    if (v->kind != SL_NODE_SCALAR || sl__node_is_null(v)) {
        err_node(c, v, "'%s': expected a string, got %s", key,
                 sl__node_describe(v));
        return NULL;
    }
    if (strlen(v->text) != v->len) {
        err_node(c, v, "'%s': text must not contain NUL bytes", key);
        return NULL;
    }
    return v->text;
}

static char *dup_or_nomem(sl_loadctx *c, const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        c->nomem = true;
    return d;
}

/* ------------------------------------------------------------------ */
/* Top-level blocks                                                    */
/* ------------------------------------------------------------------ */

static void load_plugins_list(sl_loadctx *c, const sl_node *v)
{
    const sl_node *const *items = (const sl_node *const *)&v;
    size_t n = 1;
    if (v->invalid || sl__node_is_null(v))
        return;
    if (v->kind == SL_NODE_SEQUENCE) {
        items = (const sl_node *const *)v->items;
        n = v->n;
    } else if (v->kind != SL_NODE_SCALAR) {
        err_node(c, v, "'plugins': expected a list of paths, got %s",
                 sl__node_describe(v));
        return;
    }
    if (n == 0)
        return;
    c->cfg->plugins = calloc(n, sizeof(*c->cfg->plugins));
    if (c->cfg->plugins == NULL) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *path = want_string(c, items[i], "plugins");
        if (path == NULL)
            continue;
        if (*path == '\0') {
            err_node(c, items[i], "'plugins': empty path");
            continue;
        }
        sl_plugin_conf *p = &c->cfg->plugins[c->cfg->n_plugins];
        p->path = dup_or_nomem(c, path);
        if (p->path == NULL)
            return;
        p->pos = pos_of(items[i]);
        c->cfg->n_plugins++;
    }
}

/* "host:port" with a numeric port; host may be empty or "[v6]". */
static bool valid_listen(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon[1] == '\0')
        return false;
    long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        port = port * 10 + (*p - '0');
        if (port > 65535)
            return false;
    }
    return true;
}

static void load_metrics(sl_loadctx *c, const sl_node *v)
{
    apply(c, metrics_table, v, "metrics", c->cfg);
    const sl_node *l = sl__node_get(v, "listen");
    if (c->cfg->metrics.listen != NULL && !valid_listen(c->cfg->metrics.listen))
        err_node(c, l, "'listen': expected host:port (e.g. 127.0.0.1:9464), "
                 "got '%s'", c->cfg->metrics.listen);
}

/* ------------------------------------------------------------------ */
/* Stages                                                              */
/* ------------------------------------------------------------------ */

static bool valid_stage_name(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char ch = s[n];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')
                  || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        if (!ok)
            return false;
    }
    return n > 0 && n <= SL_STAGE_NAME_MAX;
}

static void stage_name(sl_loadctx *c, sl_stage_conf *st, const sl_node *map,
                       size_t index)
{
    const sl_node *v = sl__node_get(map, "name");
    if (v == NULL) {
        err_node(c, map, "stage %zu: missing required key 'name'", index + 1);
        return;
    }
    const char *s = want_string(c, v, "name");
    if (s == NULL)
        return;
    if (!valid_stage_name(s)) {
        char shown[48];
        snprintf(shown, sizeof(shown), "%.40s%s", s, strlen(s) > 40 ? "..." : "");
        err_node(c, v, "invalid stage name '%s' (use 1 to %d letters, digits, "
                 "'_' or '-')", shown, SL_STAGE_NAME_MAX);
        return;
    }
    st->name = dup_or_nomem(c, s);
}

/* A stage's name and place, sorted by name then place. */
typedef struct sl_named {
    const char *name;  /* the stage's name */
    size_t index;      /* its place in the file */
} sl_named;

static int by_name(const void *a, const void *b)
{
    const sl_named *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    if (r != 0)
        return r;
    return x->index < y->index ? -1 : (x->index > y->index);
}

static int by_index(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : (x > y);
}

/*
 * Report every stage whose name an earlier stage already has, naming the
 * first one's line; the repeat's name is dropped. Sorting keeps this
 * O(n log n) for generated files with thousands of stages.
 */
static void check_duplicate_names(sl_loadctx *c)
{
    sl_config *cfg = c->cfg;
    size_t n = 0;
    sl_named *idx = calloc(cfg->n_stages + 1, sizeof(*idx));
    size_t *dups = calloc(cfg->n_stages + 1, sizeof(*dups));
    size_t *first = calloc(cfg->n_stages + 1, sizeof(*first));
    if (idx == NULL || dups == NULL || first == NULL) {
        c->nomem = true;
        goto out_free;
    }
    for (size_t i = 0; i < cfg->n_stages; i++) {
        if (cfg->stages[i].name != NULL) {
            idx[n].name = cfg->stages[i].name;
            idx[n++].index = i;
        }
    }
    qsort(idx, n, sizeof(*idx), by_name);
    size_t nd = 0, group = 0;
    for (size_t k = 1; k < n; k++) {
        if (strcmp(idx[k].name, idx[group].name) == 0) {
            first[idx[k].index] = idx[group].index;
            dups[nd++] = idx[k].index;
        } else {
            group = k;
        }
    }
    qsort(dups, nd, sizeof(*dups), by_index);
    for (size_t k = 0; k < nd; k++) {
        sl_stage_conf *st = &cfg->stages[dups[k]];
        const sl_stage_conf *o = &cfg->stages[first[dups[k]]];
        const sl_node *v = sl__node_get(st->node, "name");
        const sl_node *f = sl__node_get(o->node, "name");
        err_node(c, v, "duplicate stage name '%s' (first defined at line %d)",
                 st->name, f ? f->line : o->pos.line);
    }
    for (size_t k = 0; k < nd; k++) {
        sl_stage_conf *st = &cfg->stages[dups[k]];
        free(st->name);
        st->name = NULL;
    }
out_free:
    free(idx);
    free(dups);
    free(first);
}

static void stage_inputs(sl_loadctx *c, sl_stage_conf *st, const sl_node *v)
{
    const sl_node *const *items = (const sl_node *const *)&v;
    size_t n = 1;
    st->inputs_given = true;
    if (v->invalid)
        return;
    if (v->kind == SL_NODE_SEQUENCE) {
        items = (const sl_node *const *)v->items;
        n = v->n;
    } else if (v->kind != SL_NODE_SCALAR || sl__node_is_null(v)) {
        err_node(c, v, "'inputs': expected a stage name or a list of names, "
                 "got %s", sl__node_describe(v));
        return;
    }
    if (n == 0)
        return;
    st->inputs = calloc(n, sizeof(*st->inputs));
    st->input_pos = calloc(n, sizeof(*st->input_pos));
    if (st->inputs == NULL || st->input_pos == NULL) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = want_string(c, items[i], "inputs");
        if (s == NULL)
            continue;
        bool dup = false;
        for (size_t j = 0; j < st->n_inputs; j++) {
            if (strcmp(st->inputs[j], s) == 0) {
                err_node(c, items[i], "'inputs': '%s' is listed twice", s);
                dup = true;
            }
        }
        if (dup)
            continue;
        st->inputs[st->n_inputs] = dup_or_nomem(c, s);
        if (st->inputs[st->n_inputs] == NULL)
            return;
        st->input_pos[st->n_inputs] = pos_of(items[i]);
        st->n_inputs++;
    }
}

/*
 * Choose the stage's form from its type and wiring (DESIGN.md "Wiring"):
 * explicit non-empty inputs -> consuming form; explicit empty inputs ->
 * fetch form; no inputs -> the previous stage feeds it unless it is the
 * first stage or its type only fetches.
 */
static void stage_type(sl_loadctx *c, sl_stage_conf *st, const sl_node *map,
                       size_t index, const char *what)
{
    const sl_node *v = sl__node_get(map, "type");
    if (v == NULL) {
        err_node(c, map, "%s: missing required key 'type'", what);
        return;
    }
    /* `type: null` names the null sink; YAML would read it as a null. */
    const char *s = v->kind == SL_NODE_SCALAR && strcmp(v->text, "null") == 0
                        ? v->text
                        : want_string(c, v, "type");
    if (s == NULL)
        return;
    st->type = dup_or_nomem(c, s);
    st->type_pos = pos_of(v);
    const sl_stage_registry *reg = c->opts->registry;
    if (st->type == NULL || reg == NULL)
        return;

    const sl_stage_desc *source = NULL, *consumer = NULL;
    if (!reg->forms(reg->arg, s, &source, &consumer)
        || (source == NULL && consumer == NULL)) {
        const char *hint = NULL;
        if (reg->names != NULL)
            hint = sl__diag_suggest(s, reg->names(reg->arg), SIZE_MAX);
        if (hint != NULL)
            err_node(c, v, "unknown stage type '%s' (did you mean '%s'?)", s,
                     hint);
        else
            err_node(c, v, "unknown stage type '%s' (`sluice stages` lists "
                     "them)", s);
        return;
    }
    bool has_input;
    if (st->inputs_given)
        has_input = st->n_inputs > 0;
    else
        has_input = index > 0 && consumer != NULL;
    if (has_input && consumer == NULL) {
        const sl_node *in = sl__node_get(map, "inputs");
        err_node(c, in, "%s: type '%s' only produces records and takes no "
                 "inputs", what, s);
        return;
    }
    if (!has_input && source == NULL) {
        if (st->inputs_given)
            err_node(c, sl__node_get(map, "inputs"), "%s: type '%s' needs an "
                     "input, but 'inputs' is empty", what, s);
        else
            err_node(c, v, "%s: type '%s' needs an input, but it is the first "
                     "stage (put a source such as 'file' before it)", what, s);
        return;
    }
    st->desc = has_input ? consumer : source;
    if (!st->inputs_given && has_input) {
        const sl_stage_conf *prev = &c->cfg->stages[index - 1];
        if (prev->name == NULL)
            return;  /* the previous stage's own error says why */
        st->inputs = calloc(1, sizeof(*st->inputs));
        st->input_pos = calloc(1, sizeof(*st->input_pos));
        if (st->inputs == NULL || st->input_pos == NULL) {
            c->nomem = true;
            return;
        }
        st->inputs[0] = dup_or_nomem(c, prev->name);
        if (st->inputs[0] == NULL)
            return;
        st->input_pos[0] = st->pos;
        st->n_inputs = 1;
        st->inputs_implicit = true;
    }
}

/* Bytes a table's options reach into a state. */
static size_t table_reach(const sl_option *table)
{
    size_t reach = 0;
    for (const sl_option *o = table; o != NULL && o->key != NULL; o++) {
        size_t sz;
        switch (o->type) {
        case SL_OPT_BOOL:
            sz = sizeof(bool);
            break;
        case SL_OPT_ENUM:
            sz = sizeof(int);
            break;
        case SL_OPT_STRING_LIST:
            sz = sizeof(sl_strlist);
            break;
        case SL_OPT_STRING_MAP:
            sz = sizeof(sl_strmap);
            break;
        case SL_OPT_EXPR_MAP:
            sz = sizeof(sl_exprmap);
            break;
        default:
            sz = 8;
            break;
        }
        if (o->offset + sz > reach)
            reach = o->offset + sz;
    }
    return reach;
}

/* Apply the stage type's own options to a scratch state, then free it:
 * every option error (expressions included) is found at load time. */
static void check_stage_options(sl_loadctx *c, const sl_stage_conf *st)
{
    const sl_option *table = st->desc->options;
    size_t size = st->desc->state_size;
    size_t reach = table_reach(table);
    if (reach > size)
        size = reach;
    void *scratch = calloc(1, size ? size : 1);
    if (scratch == NULL) {
        c->nomem = true;
        return;
    }
    if (sl__config_stage_options(c->cfg, st, scratch, c->diag) == SL_ENOMEM)
        c->nomem = true;
    sl__options_free(table, scratch);
    free(scratch);
}

static void load_stage(sl_loadctx *c, sl_node *map, size_t index)
{
    sl_stage_conf *st = &c->cfg->stages[index];
    st->pos = pos_of(map);
    st->node = map;
    if (map->invalid)
        return;
    if (map->kind != SL_NODE_MAPPING) {
        err_node(c, map, "stage %zu: expected a mapping with 'name' and "
                 "'type', got %s", index + 1, sl__node_describe(map));
        st->node = NULL;
        return;
    }
    stage_name(c, st, map, index);
    char what[SL_STAGE_NAME_MAX + 16];
    if (st->name != NULL)
        snprintf(what, sizeof(what), "stage '%s'", st->name);
    else
        snprintf(what, sizeof(what), "stage %zu", index + 1);

    /* Engine keys: defaults, then the reserved keys in file order. */
    apply(c, stage_table, NULL, NULL, st);
    apply(c, retry_table, NULL, NULL, &st->retry);
    apply(c, breaker_table, NULL, NULL, &st->breaker);
    st->rate_limit.burst = 1;
    for (size_t i = 0; i < map->n; i++) {
        const char *k = map->keys[i]->text;
        sl_node *v = map->items[i];
        const sl_option *o = sl__options_find(stage_table, k);
        if (o != NULL) {
            if (!v->invalid && sl__option_set(o, v, st, c->diag) != 0)
                v->invalid = true;
        } else if (strcmp(k, "inputs") == 0) {
            stage_inputs(c, st, v);
        } else if (strcmp(k, "retry") == 0) {
            st->retry.set = true;
            apply(c, retry_table, v, "retry", &st->retry);
        } else if (strcmp(k, "rate_limit") == 0) {
            st->rate_limit.set = true;
            apply(c, rate_table, v, "rate_limit", &st->rate_limit);
        } else if (strcmp(k, "circuit_breaker") == 0) {
            st->breaker.set = true;
            apply(c, breaker_table, v, "circuit_breaker", &st->breaker);
        }
    }
    if (st->retry.max_backoff_ns < st->retry.backoff_ns) {
        const sl_node *r = sl__node_get(map, "retry");
        err_node(c, sl__node_get(r, "max_backoff") ? sl__node_get(r, "max_backoff")
                                                   : r,
                 "retry: 'max_backoff' must not be shorter than 'backoff'");
    }
    if (st->on_error == SL_ON_ERROR_DEAD_LETTER
        && c->cfg->dead_letter.path == NULL)
        err_node(c, sl__node_get(map, "on_error"), "%s: on_error is "
                 "dead_letter but the pipeline has no 'dead_letter: {path: "
                 "...}'", what);

    stage_type(c, st, map, index, what);
    /* Without a registry the stage's own keys cannot be checked here. */
    if (st->desc != NULL)
        check_stage_options(c, st);
}

static void load_stages(sl_loadctx *c, const sl_node *v, const sl_node *key)
{
    if (v == NULL) {
        sl__diag_add(c->diag, c->cfg->file, 1, 1,
                     "missing required key 'stages'");
        return;
    }
    if (v->invalid)
        return;
    if (v->kind != SL_NODE_SEQUENCE) {
        err_node(c, v, "'stages': expected a list of stages, got %s",
                 sl__node_describe(v));
        return;
    }
    if (v->n == 0) {
        err_node(c, key, "'stages': a pipeline needs at least one stage");
        return;
    }
    c->cfg->stages = calloc(v->n, sizeof(*c->cfg->stages));
    if (c->cfg->stages == NULL) {
        c->nomem = true;
        return;
    }
    c->cfg->n_stages = v->n;
    for (size_t i = 0; i < v->n && !c->nomem; i++)
        load_stage(c, v->items[i], i);
    if (!c->nomem)
        check_duplicate_names(c);
}

/* ------------------------------------------------------------------ */
/* Whole files                                                         */
/* ------------------------------------------------------------------ */

int sl__config_stage_options(const sl_config *cfg, const sl_stage_conf *st,
                             void *state, sl_diag *diag)
{
    char what[SL_STAGE_NAME_MAX + 16];
    (void)cfg;
    if (st->desc == NULL)
        return SL_EINVAL;
    snprintf(what, sizeof(what), "stage '%s'", st->name ? st->name : "?");
    return sl__options_apply_named(st->desc->options, st->node,
                                   sl__stage_reserved_keys, what, state, diag);
}

void sl__config_destroy(sl_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->n_stages; i++) {
        sl_stage_conf *st = &cfg->stages[i];
        free(st->name);
        free(st->type);
        for (size_t j = 0; j < st->n_inputs; j++)
            free(st->inputs[j]);
        free(st->inputs);
        free(st->input_pos);
    }
    free(cfg->stages);
    for (size_t i = 0; i < cfg->n_plugins; i++)
        free(cfg->plugins[i].path);
    free(cfg->plugins);
    sl__options_free(settings_table, cfg);
    sl__options_free(metrics_table, cfg);
    sl__options_free(dead_letter_table, cfg);
    free(cfg->name);
    free(cfg->file);
    sl__yaml_destroy(cfg->yaml);
    free(cfg);
}

long sl__config_find_stage(const sl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_stages; i++) {
        if (cfg->stages[i].name != NULL && strcmp(cfg->stages[i].name, name) == 0)
            return (long)i;
    }
    return -1;
}

/* Fill cfg from the document root. Problems go to c->diag. */
static void load_root(sl_loadctx *c, sl_node *root)
{
    sl_config *cfg = c->cfg;

    /* Defaults for every block, whether written or not. */
    apply(c, settings_table, NULL, NULL, cfg);
    apply(c, metrics_table, NULL, NULL, cfg);

    if (root->kind != SL_NODE_MAPPING) {
        err_node(c, root, "a pipeline file must be a mapping with 'name' and "
                 "'stages', got %s", sl__node_describe(root));
        return;
    }
    for (size_t i = 0; i < root->n; i++) {
        const sl_node *k = root->keys[i];
        bool known = false;
        for (size_t j = 0; top_keys[j] != NULL; j++)
            known = known || strcmp(k->text, top_keys[j]) == 0;
        if (known)
            continue;
        const char *hint = sl__diag_suggest(k->text, top_keys, SIZE_MAX);
        if (hint != NULL)
            err_node(c, k, "unknown key '%.64s' (did you mean '%s'?)", k->text,
                     hint);
        else
            err_node(c, k, "unknown key '%.64s' (expected name, settings, "
                     "plugins, metrics, dead_letter, stages)", k->text);
    }

    const sl_node *v = sl__node_get(root, "name");
    if (v == NULL) {
        sl__diag_add(c->diag, cfg->file, 1, 1, "missing required key 'name'");
    } else {
        const char *s = want_string(c, v, "name");
        if (s != NULL && *s == '\0')
            err_node(c, v, "'name': must not be empty");
        else if (s != NULL)
            cfg->name = dup_or_nomem(c, s);
    }
    if ((v = sl__node_get(root, "settings")) != NULL) {
        apply(c, settings_table, v, "settings", cfg);
    }
    if ((v = sl__node_get(root, "plugins")) != NULL)
        load_plugins_list(c, v);
    if ((v = sl__node_get(root, "metrics")) != NULL)
        load_metrics(c, v);
    if ((v = sl__node_get(root, "dead_letter")) != NULL)
        apply(c, dead_letter_table, v, "dead_letter", cfg);
    if (c->nomem)
        return;

    const sl_stage_registry *reg = c->opts->registry;
    if (reg != NULL && reg->load_plugins != NULL && cfg->n_plugins > 0) {
        if (reg->load_plugins(reg->arg, cfg, c->diag) == SL_ENOMEM)
            c->nomem = true;
    }
    const sl_node *skey = NULL;
    for (size_t i = 0; i < root->n; i++) {
        if (strcmp(root->keys[i]->text, "stages") == 0)
            skey = root->keys[i];
    }
    load_stages(c, sl__node_get(root, "stages"), skey);
}

/*
 * Build a config over a loaded tree (takes ownership of y). before is the
 * diag's error count before loading began: soft errors of the loader count.
 */
static int config_from_tree(sl_yaml *y, const char *file,
                            const sl_config_opts *opts, sl_diag *diag,
                            size_t before, sl_config **out)
{
    sl_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL) {
        sl__yaml_destroy(y);
        return SL_ENOMEM;
    }
    cfg->yaml = y;
    cfg->file = strdup(file);
    sl_loadctx c = {.cfg = cfg, .opts = opts, .diag = diag};
    if (cfg->file == NULL)
        c.nomem = true;
    else
        load_root(&c, sl__yaml_root(y));
    if (c.nomem) {
        sl__config_destroy(cfg);
        return SL_ENOMEM;
    }
    if (sl__diag_errors(diag) > before) {
        sl__config_destroy(cfg);
        return SL_ECONFIG;
    }
    *out = cfg;
    return 0;
}

static const sl_config_opts default_opts = {0};

int sl__config_load_text(const char *text, size_t len, const char *file,
                         const sl_config_opts *opts, sl_diag *diag,
                         sl_config **out)
{
    if (opts == NULL)
        opts = &default_opts;
    if (file == NULL)
        file = "<pipeline>";
    size_t before = sl__diag_errors(diag);
    sl_yaml_opts yo = {.set = opts->set, .no_env = opts->no_env};
    sl_yaml *y = NULL;
    int rc = sl__yaml_load_text(text, len, file, &yo, diag, &y);
    if (rc != 0)
        return rc;
    return config_from_tree(y, file, opts, diag, before, out);
}

int sl__config_load_file(const char *path, const sl_config_opts *opts,
                         sl_diag *diag, sl_config **out)
{
    if (opts == NULL)
        opts = &default_opts;
    size_t before = sl__diag_errors(diag);
    sl_yaml_opts yo = {.set = opts->set, .no_env = opts->no_env};
    sl_yaml *y = NULL;
    int rc = sl__yaml_load_file(path, &yo, diag, &y);
    if (rc != 0)
        return rc;
    return config_from_tree(y, path, opts, diag, before, out);
}
