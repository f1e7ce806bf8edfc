/*
 * Wiring: stage names -> indices, readers, checks, topological order, DOT.
 */
#include "engine/graph.h"

#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"

void sl__graph_destroy(sl_graph *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->n; i++) {
        free(g->nodes[i].inputs);
        free(g->nodes[i].readers);
    }
    free(g->nodes);
    free(g->order);
    free(g);
}

static const char *kind_name(sl_stage_kind k)
{
    switch (k) {
    case SL_STAGE_SOURCE:
        return "source";
    case SL_STAGE_TRANSFORM:
        return "transform";
    case SL_STAGE_SINK:
        return "sink";
    }
    return "stage";
}

/* Every stage name of cfg, NULL-terminated, for suggestions. */
static const char **stage_names(const sl_config *cfg)
{
    const char **names = calloc(cfg->n_stages + 1, sizeof(*names));
    if (names == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < cfg->n_stages; i++) {
        if (cfg->stages[i].name != NULL)
            names[k++] = cfg->stages[i].name;
    }
    return names;
}

/* A name -> index table, sorted, so wiring stays O(n log n). */
typedef struct sl_name_ix {
    const char *name;  /* a stage name */
    size_t index;      /* its stage */
} sl_name_ix;

static int name_ix_cmp(const void *a, const void *b)
{
    return strcmp(((const sl_name_ix *)a)->name, ((const sl_name_ix *)b)->name);
}

static sl_name_ix *name_index(const sl_config *cfg, size_t *n_out)
{
    sl_name_ix *ix = calloc(cfg->n_stages + 1, sizeof(*ix));
    if (ix == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_stages; i++) {
        if (cfg->stages[i].name != NULL) {
            ix[n].name = cfg->stages[i].name;
            ix[n++].index = i;
        }
    }
    qsort(ix, n, sizeof(*ix), name_ix_cmp);
    *n_out = n;
    return ix;
}

static long find_stage(const sl_name_ix *ix, size_t n, const char *name)
{
    sl_name_ix key = {name, 0};
    const sl_name_ix *hit = bsearch(&key, ix, n, sizeof(*ix), name_ix_cmp);
    return hit ? (long)hit->index : -1;
}

/* Resolve stage i's input names. Returns SL_ENOMEM or 0 (errors to diag). */
static int resolve_inputs(sl_graph *g, size_t i, const char **names,
                          const sl_name_ix *ix, size_t n_ix, sl_diag *diag)
{
    const sl_config *cfg = g->cfg;
    const sl_stage_conf *st = &cfg->stages[i];
    sl_graph_node *n = &g->nodes[i];

    if (st->n_inputs == 0)
        return 0;
    n->inputs = calloc(st->n_inputs, sizeof(*n->inputs));
    if (n->inputs == NULL)
        return SL_ENOMEM;
    for (size_t k = 0; k < st->n_inputs; k++) {
        const char *in = st->inputs[k];
        sl_conf_pos p = st->input_pos[k];
        long j = find_stage(ix, n_ix, in);
        if (j < 0) {
            /* Past the message cap nobody reads it: skip the search. */
            const char *hint = sl__diag_errors(diag) < SL_DIAG_MAX
                                   ? sl__diag_suggest(in, names, SIZE_MAX)
                                   : NULL;
            if (hint != NULL)
                sl__diag_add(diag, cfg->file, p.line, p.col,
                             "stage '%s': unknown input '%s' (did you mean "
                             "'%s'?)", st->name, in, hint);
            else
                sl__diag_add(diag, cfg->file, p.line, p.col,
                             "stage '%s': unknown input '%s' (no stage has "
                             "that name)", st->name, in);
            continue;
        }
        const sl_stage_conf *src = &cfg->stages[j];
        if (src->desc != NULL && src->desc->kind == SL_STAGE_SINK) {
            if (st->inputs_implicit)
                sl__diag_add(diag, cfg->file, p.line, p.col,
                             "stage '%s' reads from the stage before it, "
                             "'%s', which is a sink (type %s) and has no "
                             "output; give '%s' an 'inputs:' list",
                             st->name, in, src->type, st->name);
            else
                sl__diag_add(diag, cfg->file, p.line, p.col,
                             "stage '%s': input '%s' is a sink (type %s) and "
                             "has no output", st->name, in, src->type);
            continue;
        }
        n->inputs[n->n_inputs++] = (size_t)j;
    }
    return 0;
}

/* Fill every node's readers from the inputs. */
static int link_readers(sl_graph *g)
{
    size_t *count = calloc(g->n ? g->n : 1, sizeof(*count));
    if (count == NULL)
        return SL_ENOMEM;
    for (size_t i = 0; i < g->n; i++) {
        for (size_t k = 0; k < g->nodes[i].n_inputs; k++)
            count[g->nodes[i].inputs[k]]++;
    }
    int rc = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (count[i] == 0)
            continue;
        g->nodes[i].readers = calloc(count[i], sizeof(size_t));
        if (g->nodes[i].readers == NULL) {
            rc = SL_ENOMEM;
            goto out_free;
        }
    }
    for (size_t i = 0; i < g->n; i++) {
        for (size_t k = 0; k < g->nodes[i].n_inputs; k++) {
            sl_graph_node *src = &g->nodes[g->nodes[i].inputs[k]];
            src->readers[src->n_readers++] = i;
        }
    }
out_free:
    free(count);
    return rc;
}

/* Position of the entry in stage u's inputs that names stage v. */
static sl_conf_pos input_pos(const sl_graph *g, size_t u, size_t v)
{
    const sl_stage_conf *st = &g->cfg->stages[u];
    for (size_t k = 0; k < st->n_inputs; k++) {
        if (strcmp(st->inputs[k], g->cfg->stages[v].name) == 0)
            return st->input_pos[k];
    }
    return st->pos;
}

/* Report the cycle stack[j..top] closed by the edge stack[j] -> stack[top]. */
static void report_cycle(const sl_graph *g, const size_t *stack, size_t j,
                         size_t top, sl_diag *diag)
{
    char buf[1024];
    size_t off = 0;
    const sl_config *cfg = g->cfg;
    /* Data flows stack[j] -> stack[top] -> stack[top-1] -> ... -> stack[j]. */
    off += (size_t)snprintf(buf, sizeof(buf), "%s", cfg->stages[stack[j]].name);
    for (size_t k = top + 1; k-- > j && off < sizeof(buf);) {
        int w = snprintf(buf + off, sizeof(buf) - off, " -> %s",
                         cfg->stages[stack[k]].name);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    if (off >= sizeof(buf))
        memcpy(buf + sizeof(buf) - 4, "...", 4);
    sl_conf_pos p = input_pos(g, stack[top], stack[j]);
    sl__diag_add(diag, cfg->file, p.line, p.col,
                 "stages form a cycle: %s", buf);
}

/*
 * Depth-first over inputs, in file order: emits each stage after its
 * inputs (the topological order) and reports each cycle it closes.
 * Iterative, so a long chain cannot overflow the C stack.
 */
static int order_stages(sl_graph *g, sl_diag *diag)
{
    enum { WHITE, GREY, BLACK };
    size_t n = g->n;
    unsigned char *color = calloc(n ? n : 1, 1);
    size_t *stack = calloc(n ? n : 1, sizeof(*stack));
    size_t *next = calloc(n ? n : 1, sizeof(*next));
    size_t *pos = calloc(n ? n : 1, sizeof(*pos));   /* index in stack */
    g->order = calloc(n ? n : 1, sizeof(*g->order));
    if (color == NULL || stack == NULL || next == NULL || pos == NULL
        || g->order == NULL) {
        free(color);
        free(stack);
        free(next);
        free(pos);
        return SL_ENOMEM;
    }
    size_t emitted = 0;
    for (size_t s = 0; s < n; s++) {
        if (color[s] != WHITE)
            continue;
        size_t top = 0;
        stack[0] = s;
        pos[s] = 0;
        next[s] = 0;
        color[s] = GREY;
        for (;;) {
            size_t u = stack[top];
            const sl_graph_node *nu = &g->nodes[u];
            if (next[u] < nu->n_inputs) {
                size_t v = nu->inputs[next[u]++];
                if (color[v] == WHITE) {
                    color[v] = GREY;
                    next[v] = 0;
                    stack[++top] = v;
                    pos[v] = top;
                } else if (color[v] == GREY) {
                    report_cycle(g, stack, pos[v], top, diag);
                }
                continue;
            }
            color[u] = BLACK;
            g->order[emitted++] = u;
            if (top == 0)
                break;
            top--;
        }
    }
    free(color);
    free(stack);
    free(next);
    free(pos);
    return 0;
}

int sl__graph_build(const sl_config *cfg, sl_diag *diag, sl_graph **out)
{
    size_t before = sl__diag_errors(diag);
    int rc = SL_ENOMEM;
    sl_graph *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return SL_ENOMEM;
    g->cfg = cfg;
    g->n = cfg->n_stages;
    g->nodes = calloc(g->n ? g->n : 1, sizeof(*g->nodes));
    const char **names = stage_names(cfg);
    size_t n_ix = 0;
    sl_name_ix *ix = name_index(cfg, &n_ix);
    if (g->nodes == NULL || names == NULL || ix == NULL)
        goto out_free;

    for (size_t i = 0; i < g->n; i++) {
        const sl_stage_conf *st = &cfg->stages[i];
        sl_graph_node *n = &g->nodes[i];
        n->conf = st;
        n->desc = st->desc;
        if (st->desc != NULL)
            n->kind = st->desc->kind;
        else
            n->kind = st->n_inputs > 0 ? SL_STAGE_TRANSFORM : SL_STAGE_SOURCE;
        n->capacity = st->capacity > 0 ? st->capacity
                                       : cfg->settings.channel_capacity;
        if (st->name == NULL) {
            sl__diag_add(diag, cfg->file, st->pos.line, st->pos.col,
                         "stage %zu has no valid name", i + 1);
            continue;
        }
        if (resolve_inputs(g, i, names, ix, n_ix, diag) != 0)
            goto out_free;
    }
    if (link_readers(g) != 0 || order_stages(g, diag) != 0)
        goto out_free;
    if (sl__diag_errors(diag) > before) {
        rc = SL_ECONFIG;
        goto out_free;
    }
    for (size_t i = 0; i < g->n; i++) {
        sl_graph_node *n = &g->nodes[i];
        if (n->kind != SL_STAGE_SINK && n->n_readers == 0) {
            n->discarded = true;
            sl__diag_warn(diag, cfg->file, n->conf->pos.line,
                          n->conf->pos.col,
                          "stage '%s' (%s %s): nothing reads its output, so "
                          "its records are discarded", n->conf->name,
                          n->conf->type ? n->conf->type : "?",
                          kind_name(n->kind));
        }
    }
    free(names);
    free(ix);
    *out = g;
    return 0;
out_free:
    free(names);
    free(ix);
    sl__graph_destroy(g);
    return rc;
}

/* ------------------------------------------------------------------ */
/* DOT                                                                 */
/* ------------------------------------------------------------------ */

/* s as the inside of a DOT double-quoted string. */
static void dot_escaped(FILE *out, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        if (*s == '\n') {
            fputs("\\n", out);
            continue;
        }
        fputc(*s, out);
    }
}

int sl__graph_to_dot(const sl_graph *g, FILE *out)
{
    fputs("digraph \"", out);
    dot_escaped(out, g->cfg->name ? g->cfg->name : "pipeline");
    fputs("\" {\n"
          "  rankdir=LR;\n"
          "  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n"
          "  edge [fontname=\"Helvetica\", fontsize=10];\n", out);
    for (size_t k = 0; k < g->n; k++) {
        size_t i = g->order[k];
        const sl_graph_node *n = &g->nodes[i];
        const char *shape = n->kind == SL_STAGE_SOURCE ? "house"
                            : n->kind == SL_STAGE_SINK ? "cylinder"
                                                       : "box";
        fputs("  \"", out);
        dot_escaped(out, n->conf->name);
        fputs("\" [label=\"", out);
        dot_escaped(out, n->conf->name);
        fputs("\\n", out);
        dot_escaped(out, n->conf->type);
        if (n->conf->workers > 1)
            fprintf(out, " x%lld", (long long)n->conf->workers);
        fprintf(out, "\", shape=%s%s];\n", shape,
                n->kind == SL_STAGE_SOURCE ? ", orientation=270" : "");
    }
    for (size_t k = 0; k < g->n; k++) {
        size_t i = g->order[k];
        const sl_graph_node *n = &g->nodes[i];
        for (size_t j = 0; j < n->n_inputs; j++) {
            fputs("  \"", out);
            dot_escaped(out, g->nodes[n->inputs[j]].conf->name);
            fputs("\" -> \"", out);
            dot_escaped(out, n->conf->name);
            fputs("\";\n", out);
        }
    }
    fputs("}\n", out);
    return ferror(out) ? SL_EIO : 0;
}
