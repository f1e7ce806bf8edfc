/*
 * YAML text -> a tree of sl_node, with positions, using libyaml's event API.
 *
 * The loader is written for hostile input: it never expands aliases, stops
 * at the first node past a limit (size, depth, node count, scalar length),
 * and allocates nodes from an arena freed in one go, so a bad file costs
 * little time and bounded memory however it is built.
 */
#include "engine/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "sluice/error.h"

/* ------------------------------------------------------------------ */
/* Arena                                                               */
/* ------------------------------------------------------------------ */

typedef struct sl_arena_block {
    struct sl_arena_block *next;  /* older block */
    size_t used;                  /* bytes handed out */
    size_t size;                  /* bytes in data */
    _Alignas(max_align_t) unsigned char data[]; /* the memory */
} sl_arena_block;

#define SL_ARENA_BLOCK (64u * 1024u)

struct sl_yaml {
    char *file;                   /* name for messages */
    sl_node *root;                /* NULL for an empty document */
    size_t n_nodes;               /* nodes in the tree */
    sl_arena_block *blocks;       /* every node, array and string */
};

/* size bytes from the arena, aligned for any type; NULL on out of memory. */
static void *arena_alloc(sl_yaml *y, size_t size)
{
    const size_t align = _Alignof(max_align_t);
    size = (size + align - 1) & ~(align - 1);
    sl_arena_block *b = y->blocks;
    if (b == NULL || b->size - b->used < size) {
        size_t bsize = size > SL_ARENA_BLOCK / 4 ? size : SL_ARENA_BLOCK;
        sl_arena_block *nb = malloc(sizeof(*nb) + bsize);
        if (nb == NULL)
            return NULL;
        nb->used = 0;
        nb->size = bsize;
        if (bsize != SL_ARENA_BLOCK && b != NULL) {
            /* A big one-off: keep filling the current block afterwards. */
            nb->next = b->next;
            b->next = nb;
            nb->used = size;
            return nb->data;
        }
        nb->next = b;
        y->blocks = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

static char *arena_strndup(sl_yaml *y, const char *s, size_t len)
{
    char *p = arena_alloc(y, len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void sl__yaml_destroy(sl_yaml *y)
{
    if (y == NULL)
        return;
    sl_arena_block *b = y->blocks;
    while (b != NULL) {
        sl_arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(y->file);
    free(y);
}

sl_node *sl__yaml_root(const sl_yaml *y)
{
    return y->root;
}

size_t sl__yaml_node_count(const sl_yaml *y)
{
    return y->n_nodes;
}

/* ------------------------------------------------------------------ */
/* Node helpers                                                        */
/* ------------------------------------------------------------------ */

sl_node *sl__node_get(const sl_node *map, const char *key)
{
    if (map == NULL || map->kind != SL_NODE_MAPPING)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i < map->n; i++) {
        const sl_node *k = map->keys[i];
        if (k->len == klen && memcmp(k->text, key, klen) == 0)
            return map->items[i];
    }
    return NULL;
}

bool sl__node_is_null(const sl_node *n)
{
    if (n == NULL)
        return true;
    if (n->kind != SL_NODE_SCALAR || n->style != SL_SCALAR_PLAIN)
        return false;
    const char *t = n->text;
    return n->len == 0 || strcmp(t, "~") == 0 || strcmp(t, "null") == 0
           || strcmp(t, "Null") == 0 || strcmp(t, "NULL") == 0;
}

const char *sl__node_describe(const sl_node *n)
{
    if (n == NULL || sl__node_is_null(n))
        return "null";
    switch (n->kind) {
    case SL_NODE_SCALAR:
        return "a scalar";
    case SL_NODE_SEQUENCE:
        return "a list";
    case SL_NODE_MAPPING:
        return "a mapping";
    }
    return "a node";
}

/* ------------------------------------------------------------------ */
/* Interpolation                                                       */
/* ------------------------------------------------------------------ */

/* The value of name[0..nlen) from set ("VAR=value") or the environment. */
static const char *lookup_var(const char *name, size_t nlen,
                              const char *const *set, bool no_env)
{
    if (set != NULL) {
        /* The last --set of a name wins, as on most command lines. */
        const char *found = NULL;
        for (size_t i = 0; set[i] != NULL; i++) {
            if (strncmp(set[i], name, nlen) == 0 && set[i][nlen] == '=')
                found = set[i] + nlen + 1;
        }
        if (found != NULL)
            return found;
    }
    if (no_env)
        return NULL;
    char buf[256];
    if (nlen >= sizeof(buf))
        return NULL;
    memcpy(buf, name, nlen);
    buf[nlen] = '\0';
    return getenv(buf);
}

typedef struct sl_ibuf {
    char *p;       /* bytes */
    size_t len;    /* used */
    size_t cap;    /* allocated */
} sl_ibuf;

static int buf_put(sl_ibuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return SL_ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static bool is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

int sl__interpolate(const char *in, size_t len, const char *const *set,
                    bool no_env, char **out, size_t *out_len,
                    char *err, size_t err_size, size_t *err_at)
{
    sl_ibuf b = {0};
    size_t i = 0;
    int rc;

    if ((rc = buf_put(&b, "", 0)) != 0)
        return rc;
    while (i < len) {
        const char *dollar = memchr(in + i, '$', len - i);
        size_t lit = dollar ? (size_t)(dollar - (in + i)) : len - i;
        if ((rc = buf_put(&b, in + i, lit)) != 0)
            goto out_free;
        i += lit;
        if (i >= len)
            break;
        /* in[i] == '$' */
        if (i + 1 < len && in[i + 1] == '$') {
            if ((rc = buf_put(&b, "$", 1)) != 0)
                goto out_free;
            i += 2;
            continue;
        }
        if (i + 1 >= len || in[i + 1] != '{') {
            if ((rc = buf_put(&b, "$", 1)) != 0)
                goto out_free;
            i += 1;
            continue;
        }
        const char *close = memchr(in + i + 2, '}', len - i - 2);
        *err_at = i;
        if (close == NULL) {
            snprintf(err, err_size, "unterminated '${' (missing '}')");
            rc = SL_ECONFIG;
            goto out_free;
        }
        const char *name = in + i + 2;
        size_t nlen = 0;
        size_t inner = (size_t)(close - name);
        if (inner > 0 && is_name_start(name[0])) {
            nlen = 1;
            while (nlen < inner && is_name_char(name[nlen]))
                nlen++;
        }
        if (nlen == 0 || nlen > 200) {
            snprintf(err, err_size,
                     "invalid variable name in '${%.*s}' (letters, digits and "
                     "'_', not starting with a digit)",
                     (int)(inner > 40 ? 40 : inner), name);
            rc = SL_ECONFIG;
            goto out_free;
        }
        const char *mod = name + nlen;
        size_t mlen = inner - nlen;
        const char *val = lookup_var(name, nlen, set, no_env);
        if (mlen == 0) {
            if (val == NULL) {
                snprintf(err, err_size,
                         "variable '%.*s' is not set (use --set %.*s=VALUE, "
                         "or ${%.*s:-default} for a default)",
                         (int)nlen, name, (int)nlen, name, (int)nlen, name);
                rc = SL_ECONFIG;
                goto out_free;
            }
            if ((rc = buf_put(&b, val, strlen(val))) != 0)
                goto out_free;
        } else if (mlen >= 2 && mod[0] == ':' && mod[1] == '-') {
            if (val == NULL || val[0] == '\0')
                rc = buf_put(&b, mod + 2, mlen - 2);
            else
                rc = buf_put(&b, val, strlen(val));
            if (rc != 0)
                goto out_free;
        } else if (mlen >= 2 && mod[0] == ':' && mod[1] == '?') {
            if (val == NULL || val[0] == '\0') {
                if (mlen > 2)
                    snprintf(err, err_size, "variable '%.*s' is not set: %.*s",
                             (int)nlen, name, (int)(mlen - 2 > 200 ? 200 : mlen - 2),
                             mod + 2);
                else
                    snprintf(err, err_size, "variable '%.*s' is not set",
                             (int)nlen, name);
                rc = SL_ECONFIG;
                goto out_free;
            }
            if ((rc = buf_put(&b, val, strlen(val))) != 0)
                goto out_free;
        } else {
            snprintf(err, err_size,
                     "unexpected '%c' after '${%.*s'; expected '}', ':-' or ':?'",
                     mod[0], (int)nlen, name);
            rc = SL_ECONFIG;
            goto out_free;
        }
        i = (size_t)(close - in) + 1;
        if (b.len > SL_YAML_MAX_SCALAR) {
            snprintf(err, err_size, "value longer than %u bytes after "
                     "interpolation", SL_YAML_MAX_SCALAR);
            rc = SL_ECONFIG;
            goto out_free;
        }
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
out_free:
    free(b.p);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Loader                                                              */
/* ------------------------------------------------------------------ */

/* A collection being built. */
typedef struct sl_frame {
    sl_node *node;        /* the sequence or mapping */
    sl_node **items;      /* children so far (values for a mapping) */
    sl_node **keys;       /* mapping keys so far */
    size_t n;             /* children so far */
    size_t cap;           /* allocated in items/keys */
    sl_node *pending_key; /* mapping: key waiting for its value */
} sl_frame;

typedef struct sl_loader {
    sl_yaml *y;                       /* the tree being built */
    const char *text;                 /* the input */
    size_t len;                       /* its length */
    const sl_yaml_opts *opts;         /* how to load */
    sl_diag *diag;                    /* where messages go */
    sl_frame stack[SL_YAML_MAX_DEPTH];/* open collections */
    int depth;                        /* frames in use */
    int documents;                    /* documents started */
    size_t aliases;                   /* aliases met (only the first is
                                         reported in full) */
    int alias_line, alias_col;        /* where the last one is */
    bool stop;                        /* a hard error ended loading */
    int rc;                           /* the hard error's code */
} sl_loader;

static void hard_error(sl_loader *L, int line, int col, int rc,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void hard_error(sl_loader *L, int line, int col, int rc,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl__diag_vadd(L->diag, L->y->file, line, col, fmt, ap);
    va_end(ap);
    L->stop = true;
    L->rc = rc;
}

/* Byte offset of a 0-based line/column (columns count characters). */
static size_t offset_of(const char *text, size_t len, size_t line, size_t col)
{
    size_t off = 0;
    for (size_t l = 0; l < line && off < len; off++) {
        if (text[off] == '\n')
            l++;
    }
    for (size_t c = 0; c < col && off < len; off++) {
        if (((unsigned char)text[off] & 0xC0) != 0x80)
            c++;
    }
    /* skip continuation bytes of the last counted character */
    while (off < len && ((unsigned char)text[off] & 0xC0) == 0x80)
        off++;
    return off;
}

/* 1-based line/column of a byte offset. */
static void position_of(const char *text, size_t len, size_t offset,
                        int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* Report libyaml's error with its position, as a hard error. */
static void parser_error(sl_loader *L, const yaml_parser_t *p)
{
    int line, col;
    if (p->error == YAML_MEMORY_ERROR) {
        hard_error(L, 0, 0, SL_ENOMEM, "out of memory while reading YAML");
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        position_of(L->text, L->len, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            hard_error(L, line, col, SL_ECONFIG,
                       "not valid YAML text: %s (byte 0x%02X)",
                       p->problem ? p->problem : "unreadable input",
                       (unsigned)p->problem_value & 0xFFu);
        else
            hard_error(L, line, col, SL_ECONFIG, "not valid YAML text: %s",
                       p->problem ? p->problem : "unreadable input");
        return;
    }
    line = (int)p->problem_mark.line + 1;
    col = (int)p->problem_mark.column + 1;
    size_t off = offset_of(L->text, L->len, p->problem_mark.line,
                           p->problem_mark.column);
    const char *hint = "";
    if (off < L->len && L->text[off] == '\t')
        hint = "; tabs cannot be used for indentation, use spaces";
    else if (p->problem_mark.column > 1024 && p->problem != NULL
             && strstr(p->problem, "mapping values are not allowed") != NULL)
        hint = "; a mapping key may be at most 1024 characters long";
    if (p->context != NULL)
        hard_error(L, line, col, SL_ECONFIG, "YAML syntax error: %s %s%s",
                   p->context, p->problem ? p->problem : "", hint);
    else
        hard_error(L, line, col, SL_ECONFIG, "YAML syntax error: %s%s",
                   p->problem ? p->problem : "unknown problem", hint);
}

static sl_node *new_node(sl_loader *L, sl_node_kind kind,
                         const yaml_mark_t *mark)
{
    if (L->y->n_nodes >= SL_YAML_MAX_NODES) {
        hard_error(L, (int)mark->line + 1, (int)mark->column + 1, SL_ECONFIG,
                   "too many YAML nodes (more than %d)", SL_YAML_MAX_NODES);
        return NULL;
    }
    sl_node *n = arena_alloc(L->y, sizeof(*n));
    if (n == NULL) {
        hard_error(L, 0, 0, SL_ENOMEM, "out of memory while reading YAML");
        return NULL;
    }
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->file = L->y->file;
    n->line = (int)mark->line + 1;
    n->col = (int)mark->column + 1;
    L->y->n_nodes++;
    return n;
}

/* Column of byte `at` inside scalar n, if it can be told; else n's column. */
static int scalar_column(const sl_node *n, const char *raw, size_t at)
{
    if (memchr(raw, '\n', at) != NULL)
        return n->col;
    if (n->style == SL_SCALAR_LITERAL || n->style == SL_SCALAR_FOLDED)
        return n->col;
    int c = n->col + (n->style == SL_SCALAR_PLAIN ? 0 : 1);
    for (size_t i = 0; i < at; i++) {
        if (((unsigned char)raw[i] & 0xC0) != 0x80)
            c++;
    }
    return c;
}

/* Push child into the innermost open collection, or make it the root. */
static void attach(sl_loader *L, sl_node *child)
{
    if (L->depth == 0) {
        L->y->root = child;
        return;
    }
    sl_frame *f = &L->stack[L->depth - 1];
    if (f->node->kind == SL_NODE_MAPPING && f->pending_key == NULL) {
        f->pending_key = child;
        return;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        sl_node **items = realloc(f->items, cap * sizeof(*items));
        if (items == NULL)
            goto out_nomem;
        f->items = items;
        if (f->node->kind == SL_NODE_MAPPING) {
            sl_node **keys = realloc(f->keys, cap * sizeof(*keys));
            if (keys == NULL)
                goto out_nomem;
            f->keys = keys;
        }
        f->cap = cap;
    }
    if (f->node->kind == SL_NODE_MAPPING) {
        f->keys[f->n] = f->pending_key;
        f->pending_key = NULL;
    }
    f->items[f->n++] = child;
    return;
out_nomem:
    hard_error(L, 0, 0, SL_ENOMEM, "out of memory while reading YAML");
}

/* True if the next node of the innermost collection is a mapping key. */
static bool expecting_key(const sl_loader *L)
{
    if (L->depth == 0)
        return false;
    const sl_frame *f = &L->stack[L->depth - 1];
    return f->node->kind == SL_NODE_MAPPING && f->pending_key == NULL;
}

static void on_scalar(sl_loader *L, const yaml_event_t *ev)
{
    bool is_key = expecting_key(L);
    size_t len = ev->data.scalar.length;
    const char *raw = (const char *)ev->data.scalar.value;
    int line = (int)ev->start_mark.line + 1;
    int col = (int)ev->start_mark.column + 1;

    if (is_key && len > SL_YAML_MAX_KEY) {
        hard_error(L, line, col, SL_ECONFIG,
                   "mapping key longer than %d bytes", SL_YAML_MAX_KEY);
        return;
    }
    if (len > SL_YAML_MAX_SCALAR) {
        hard_error(L, line, col, SL_ECONFIG,
                   "value longer than %u bytes", SL_YAML_MAX_SCALAR);
        return;
    }
    sl_node *n = new_node(L, SL_NODE_SCALAR, &ev->start_mark);
    if (n == NULL)
        return;
    switch (ev->data.scalar.style) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
        n->style = SL_SCALAR_SINGLE;
        break;
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        n->style = SL_SCALAR_DOUBLE;
        break;
    case YAML_LITERAL_SCALAR_STYLE:
        n->style = SL_SCALAR_LITERAL;
        break;
    case YAML_FOLDED_SCALAR_STYLE:
        n->style = SL_SCALAR_FOLDED;
        break;
    default:
        n->style = SL_SCALAR_PLAIN;
        break;
    }

    const char *text = raw;
    size_t tlen = len;
    char *expanded = NULL;
    if (!is_key && !L->opts->no_interpolate && memchr(raw, '$', len) != NULL) {
        char err[400];
        size_t at = 0;
        int rc = sl__interpolate(raw, len, L->opts->set, L->opts->no_env,
                                 &expanded, &tlen, err, sizeof(err), &at);
        if (rc == SL_ENOMEM) {
            hard_error(L, 0, 0, SL_ENOMEM, "out of memory while reading YAML");
            return;
        }
        if (rc != 0) {
            sl__diag_add(L->diag, L->y->file, line, scalar_column(n, raw, at),
                         "%s", err);
            n->invalid = true;
            tlen = len;
        } else {
            text = expanded;
            n->interpolated = tlen != len || memcmp(expanded, raw, len) != 0;
        }
    }
    n->text = arena_strndup(L->y, text, tlen);
    n->len = tlen;
    free(expanded);
    if (n->text == NULL) {
        hard_error(L, 0, 0, SL_ENOMEM, "out of memory while reading YAML");
        return;
    }
    attach(L, n);
}

static void on_alias(sl_loader *L, const yaml_event_t *ev)
{
    int line = (int)ev->start_mark.line + 1;
    int col = (int)ev->start_mark.column + 1;
    /* One message says it; a file full of aliases (the "billion laughs")
       gets a count at the end instead of one line each. */
    L->alias_line = line;
    L->alias_col = col;
    if (L->aliases++ == 0)
        sl__diag_add(L->diag, L->y->file, line, col,
                     "YAML aliases ('*%.64s') are not supported; write the "
                     "value out in full", (const char *)ev->data.alias.anchor);
    if (expecting_key(L)) {
        /* A key we cannot name: nothing sensible to continue with. */
        L->stop = true;
        L->rc = SL_ECONFIG;
        return;
    }
    sl_node *n = new_node(L, SL_NODE_SCALAR, &ev->start_mark);
    if (n == NULL)
        return;
    n->text = arena_strndup(L->y, "", 0);
    if (n->text == NULL) {
        hard_error(L, 0, 0, SL_ENOMEM, "out of memory while reading YAML");
        return;
    }
    n->invalid = true;
    attach(L, n);
}

static void on_collection_start(sl_loader *L, const yaml_event_t *ev,
                                sl_node_kind kind)
{
    int line = (int)ev->start_mark.line + 1;
    int col = (int)ev->start_mark.column + 1;
    if (expecting_key(L)) {
        hard_error(L, line, col, SL_ECONFIG,
                   "a mapping key must be a plain value, not %s",
                   kind == SL_NODE_MAPPING ? "a mapping" : "a list");
        return;
    }
    if (L->depth >= SL_YAML_MAX_DEPTH) {
        hard_error(L, line, col, SL_ECONFIG,
                   "nesting deeper than %d levels", SL_YAML_MAX_DEPTH);
        return;
    }
    sl_node *n = new_node(L, kind, &ev->start_mark);
    if (n == NULL)
        return;
    sl_frame *f = &L->stack[L->depth++];
    memset(f, 0, sizeof(*f));
    f->node = n;
}

/* Order of key indices by text, then by position in the mapping. */
typedef struct sl_keyref {
    const sl_node *key;   /* the key */
    size_t index;         /* its place in the mapping */
} sl_keyref;

static int keyref_cmp(const void *a, const void *b)
{
    const sl_keyref *x = a, *y = b;
    size_t n = x->key->len < y->key->len ? x->key->len : y->key->len;
    int c = memcmp(x->key->text, y->key->text, n);
    if (c != 0)
        return c;
    if (x->key->len != y->key->len)
        return x->key->len < y->key->len ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

static int size_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : (x > y);
}

/*
 * Report keys that repeat an earlier key of the same mapping, naming both
 * lines, and drop the repeats (the first one wins) so consumers see each
 * key once. Sorting keeps this O(n log n) for huge mappings.
 */
static void check_duplicates(sl_loader *L, sl_frame *f)
{
    if (f->n < 2)
        return;
    sl_keyref *refs = malloc(f->n * sizeof(*refs));
    size_t *dups = malloc(f->n * sizeof(*dups));
    size_t *first = malloc(f->n * sizeof(*first));
    if (refs == NULL || dups == NULL || first == NULL) {
        hard_error(L, 0, 0, SL_ENOMEM, "out of memory while reading YAML");
        goto out_free;
    }
    for (size_t i = 0; i < f->n; i++) {
        refs[i].key = f->keys[i];
        refs[i].index = i;
    }
    qsort(refs, f->n, sizeof(*refs), keyref_cmp);
    size_t nd = 0;
    size_t group = 0;
    for (size_t i = 1; i < f->n; i++) {
        const sl_node *a = refs[group].key, *b = refs[i].key;
        if (a->len == b->len && memcmp(a->text, b->text, a->len) == 0) {
            first[refs[i].index] = refs[group].index;
            dups[nd++] = refs[i].index;
        } else {
            group = i;
        }
    }
    if (nd == 0)
        goto out_free;
    qsort(dups, nd, sizeof(*dups), size_cmp);
    for (size_t d = 0; d < nd; d++) {
        const sl_node *k = f->keys[dups[d]];
        const sl_node *k0 = f->keys[first[dups[d]]];
        sl__diag_add(L->diag, L->y->file, k->line, k->col,
                     "duplicate key '%.64s' (first defined at line %d, "
                     "column %d)", k->text, k0->line, k0->col);
    }
    /* Compact, keeping first occurrences in order. */
    size_t w = 0, d = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (d < nd && dups[d] == i) {
            d++;
            continue;
        }
        f->keys[w] = f->keys[i];
        f->items[w] = f->items[i];
        w++;
    }
    f->n = w;
out_free:
    free(refs);
    free(dups);
    free(first);
}

static void on_collection_end(sl_loader *L)
{
    sl_frame *f = &L->stack[L->depth - 1];
    sl_node *n = f->node;
    if (n->kind == SL_NODE_MAPPING)
        check_duplicates(L, f);
    if (!L->stop && f->n > 0) {
        n->items = arena_alloc(L->y, f->n * sizeof(*n->items));
        if (n->items == NULL)
            goto out_nomem;
        memcpy(n->items, f->items, f->n * sizeof(*n->items));
        if (n->kind == SL_NODE_MAPPING) {
            n->keys = arena_alloc(L->y, f->n * sizeof(*n->keys));
            if (n->keys == NULL)
                goto out_nomem;
            memcpy(n->keys, f->keys, f->n * sizeof(*n->keys));
        }
        n->n = f->n;
    }
    free(f->items);
    free(f->keys);
    L->depth--;
    if (!L->stop)
        attach(L, n);
    return;
out_nomem:
    hard_error(L, 0, 0, SL_ENOMEM, "out of memory while reading YAML");
}

/* Free the scratch arrays of collections left open by a hard error. */
static void unwind(sl_loader *L)
{
    while (L->depth > 0) {
        sl_frame *f = &L->stack[--L->depth];
        free(f->items);
        free(f->keys);
    }
}

static void on_event(sl_loader *L, const yaml_event_t *ev, bool *done)
{
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_NO_EVENT:
        break;
    case YAML_DOCUMENT_START_EVENT:
        if (++L->documents > 1)
            hard_error(L, (int)ev->start_mark.line + 1,
                       (int)ev->start_mark.column + 1, SL_ECONFIG,
                       "more than one YAML document; a pipeline file holds "
                       "exactly one");
        break;
    case YAML_DOCUMENT_END_EVENT:
        break;
    case YAML_STREAM_END_EVENT:
        *done = true;
        break;
    case YAML_ALIAS_EVENT:
        on_alias(L, ev);
        break;
    case YAML_SCALAR_EVENT:
        on_scalar(L, ev);
        break;
    case YAML_SEQUENCE_START_EVENT:
        on_collection_start(L, ev, SL_NODE_SEQUENCE);
        break;
    case YAML_MAPPING_START_EVENT:
        on_collection_start(L, ev, SL_NODE_MAPPING);
        break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        on_collection_end(L);
        break;
    }
}

int sl__yaml_load_text(const char *text, size_t len, const char *file,
                       const sl_yaml_opts *opts, sl_diag *diag, sl_yaml **out)
{
    static const sl_yaml_opts defaults = {0};
    sl_loader *L;
    yaml_parser_t parser;
    int rc;

    if (opts == NULL)
        opts = &defaults;
    if (file == NULL)
        file = "<yaml>";
    if (len > SL_YAML_MAX_FILE) {
        sl__diag_add(diag, file, 0, 0, "file is larger than %u MiB",
                     SL_YAML_MAX_FILE >> 20);
        return SL_ECONFIG;
    }
    L = calloc(1, sizeof(*L));
    if (L == NULL)
        return SL_ENOMEM;
    L->y = calloc(1, sizeof(*L->y));
    if (L->y == NULL)
        goto out_nomem_loader;
    L->y->file = strdup(file);
    if (L->y->file == NULL)
        goto out_nomem_tree;
    L->text = text;
    L->len = len;
    L->opts = opts;
    L->diag = diag;

    if (!yaml_parser_initialize(&parser))
        goto out_nomem_tree;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    bool done = false;
    while (!done && !L->stop) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            parser_error(L, &parser);
            break;
        }
        on_event(L, &ev, &done);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    unwind(L);
    if (L->aliases > 1)
        sl__diag_add(diag, file, L->alias_line, L->alias_col,
                     "%zu more YAML aliases in the file, the last one here",
                     L->aliases - 1);

    if (!L->stop && L->y->root == NULL && !opts->allow_empty) {
        sl__diag_add(diag, file, 1, 1, "file is empty");
        L->stop = true;
        L->rc = SL_ECONFIG;
    }
    if (L->stop) {
        rc = L->rc;
        sl__yaml_destroy(L->y);
        free(L);
        return rc;
    }
    *out = L->y;
    free(L);
    return 0;

out_nomem_tree:
    sl__yaml_destroy(L->y);
out_nomem_loader:
    free(L);
    return SL_ENOMEM;
}

int sl__yaml_load_file(const char *path, const sl_yaml_opts *opts,
                       sl_diag *diag, sl_yaml **out)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        sl__diag_add(diag, path, 0, 0, "cannot open: %s", strerror(errno));
        return SL_EIO;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        sl__diag_add(diag, path, 0, 0, "is a directory, not a pipeline file");
        fclose(fp);
        return SL_EIO;
    }
    if (fstat(fileno(fp), &st) == 0 && st.st_size > (off_t)SL_YAML_MAX_FILE) {
        sl__diag_add(diag, path, 0, 0, "file is larger than %u MiB",
                     SL_YAML_MAX_FILE >> 20);
        fclose(fp);
        return SL_ECONFIG;
    }
    /* Read at most one byte past the limit: also right for pipes. */
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        fclose(fp);
        return SL_ENOMEM;
    }
    for (;;) {
        if (len == cap) {
            if (cap > SL_YAML_MAX_FILE)
                break;
            size_t ncap = cap * 2;
            if (ncap > (size_t)SL_YAML_MAX_FILE + 1)
                ncap = (size_t)SL_YAML_MAX_FILE + 1;
            char *nb = realloc(buf, ncap);
            if (nb == NULL) {
                free(buf);
                fclose(fp);
                return SL_ENOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0)
            break;
    }
    bool failed = ferror(fp) != 0;
    int saved = errno;
    fclose(fp);
    if (failed) {
        sl__diag_add(diag, path, 0, 0, "cannot read: %s", strerror(saved));
        free(buf);
        return SL_EIO;
    }
    int rc = sl__yaml_load_text(buf, len, path, opts, diag, out);
    free(buf);
    return rc;
}
