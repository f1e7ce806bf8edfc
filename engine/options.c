/*
 * Option tables applied to YAML: defaults, types, ranges, unknown keys, and
 * the value syntaxes shared by every stage (durations, rates, sizes).
 */
#include "engine/options.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config.h"
#include "sluice/error.h"

/* ------------------------------------------------------------------ */
/* Numbers with units                                                  */
/* ------------------------------------------------------------------ */

/*
 * Read an unsigned decimal number "12", "1.5", ".5" at *p into *v and move
 * *p past it. False if there are no digits. The digits are gathered as an
 * integer and scaled once, so "0.3" is as close to 0.3 as long double gets
 * (no error piles up digit by digit).
 */
static bool read_decimal(const char **p, long double *v)
{
    const char *s = *p;
    long double mant = 0;
    int frac = 0;
    bool digits = false;
    while (*s >= '0' && *s <= '9') {
        mant = mant * 10 + (*s - '0');
        s++;
        digits = true;
    }
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            if (frac < 30) {
                mant = mant * 10 + (*s - '0');
                frac++;
            }
            s++;
            digits = true;
        }
    }
    if (!digits)
        return false;
    long double scale = 1;
    for (int i = 0; i < frac; i++)
        scale *= 10;
    *p = s;
    *v = mant / scale;
    return true;
}

typedef struct sl_unit {
    const char *name;   /* as written */
    long double scale;  /* multiplier */
} sl_unit;

static const sl_unit duration_units[] = {
    {"ns", 1.0L},
    {"us", 1e3L},
    {"\xC2\xB5s", 1e3L},  /* µs */
    {"ms", 1e6L},
    {"s", 1e9L},
    {"m", 60e9L},
    {"h", 3600e9L},
    {NULL, 0},
};

/* The longest unit name in units that s starts with. */
static const sl_unit *match_unit(const sl_unit *units, const char *s,
                                 bool nocase)
{
    const sl_unit *best = NULL;
    size_t best_len = 0;
    for (const sl_unit *u = units; u->name != NULL; u++) {
        size_t n = strlen(u->name);
        bool eq = nocase ? strncasecmp(s, u->name, n) == 0
                         : strncmp(s, u->name, n) == 0;
        if (eq && n > best_len) {
            best = u;
            best_len = n;
        }
    }
    return best;
}

int sl__parse_duration(const char *s, int64_t *ns)
{
    if (s == NULL || *s == '\0')
        return SL_EINVAL;
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    long double total = 0;
    const char *p = s;
    while (*p != '\0') {
        long double v;
        if (!read_decimal(&p, &v))
            return SL_EINVAL;
        const sl_unit *u = match_unit(duration_units, p, false);
        if (u == NULL)
            return SL_EINVAL;
        p += strlen(u->name);
        total += v * u->scale;
        if (total >= 9223372036854775807.0L)
            return SL_ERANGE;
    }
    *ns = (int64_t)roundl(total);
    return 0;
}

static const sl_unit rate_units[] = {
    {"s", 1.0L},
    {"sec", 1.0L},
    {"second", 1.0L},
    {"m", 60.0L},
    {"min", 60.0L},
    {"minute", 60.0L},
    {"h", 3600.0L},
    {"hour", 3600.0L},
    {NULL, 0},
};

int sl__parse_rate(const char *s, double *per_s)
{
    if (s == NULL)
        return SL_EINVAL;
    const char *p = s;
    long double v;
    if (!read_decimal(&p, &v))
        return SL_EINVAL;
    long double per = 1.0L;
    if (*p == '/') {
        p++;
        const sl_unit *u = NULL;
        for (const sl_unit *c = rate_units; c->name != NULL; c++) {
            if (strcmp(p, c->name) == 0)
                u = c;
        }
        if (u == NULL)
            return SL_EINVAL;
        per = u->scale;
        p += strlen(u->name);
    }
    if (*p != '\0')
        return SL_EINVAL;
    long double r = v / per;
    if (r > 1e300L)
        return SL_ERANGE;
    *per_s = (double)r;
    return 0;
}

static const sl_unit size_units[] = {
    {"B", 1.0L},
    {"KB", 1e3L},
    {"MB", 1e6L},
    {"GB", 1e9L},
    {"TB", 1e12L},
    {"KiB", 1024.0L},
    {"MiB", 1048576.0L},
    {"GiB", 1073741824.0L},
    {"TiB", 1099511627776.0L},
    {NULL, 0},
};

int sl__parse_size(const char *s, int64_t *bytes)
{
    if (s == NULL)
        return SL_EINVAL;
    const char *p = s;
    long double v;
    if (!read_decimal(&p, &v))
        return SL_EINVAL;
    long double scale = 1.0L;
    if (*p == ' ')
        p++;
    if (*p != '\0') {
        const sl_unit *u = match_unit(size_units, p, true);
        if (u == NULL || p[strlen(u->name)] != '\0')
            return SL_EINVAL;
        scale = u->scale;
    } else if (p != s && p[-1] == ' ') {
        return SL_EINVAL;
    }
    long double b = roundl(v * scale);
    if (b >= 9223372036854775807.0L)
        return SL_ERANGE;
    *bytes = (int64_t)b;
    return 0;
}

void sl__format_duration(int64_t ns, char *buf, size_t size)
{
    static const struct {
        const char *unit;
        int64_t ns;
    } parts[] = {
        {"h", 3600000000000LL}, {"m", 60000000000LL}, {"s", 1000000000LL},
        {"ms", 1000000LL},      {"us", 1000LL},       {"ns", 1LL},
    };
    if (ns == 0) {
        snprintf(buf, size, "0s");
        return;
    }
    if (ns < 0) {
        snprintf(buf, size, "%lldns", (long long)ns);
        return;
    }
    /* Below a minute: one unit with up to three decimals ("1.5s"). */
    if (ns < 60000000000LL) {
        for (size_t i = 2; i < sizeof(parts) / sizeof(parts[0]); i++) {
            if (ns >= parts[i].ns) {
                if (ns % parts[i].ns == 0)
                    snprintf(buf, size, "%lld%s",
                             (long long)(ns / parts[i].ns), parts[i].unit);
                else
                    snprintf(buf, size, "%.3g%s",
                             (double)ns / (double)parts[i].ns, parts[i].unit);
                return;
            }
        }
    }
    /* Otherwise whole hours, minutes, seconds; finer parts rounded away. */
    size_t off = 0;
    int64_t rest = ns;
    for (size_t i = 0; i < 3 && off < size; i++) {
        int64_t q = rest / parts[i].ns;
        rest %= parts[i].ns;
        if (q > 0) {
            int k = snprintf(buf + off, size - off, "%lld%s", (long long)q,
                             parts[i].unit);
            if (k < 0)
                break;
            off += (size_t)k;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Table helpers                                                       */
/* ------------------------------------------------------------------ */

const sl_option *sl__options_find(const sl_option *table, const char *key)
{
    if (table == NULL)
        return NULL;
    for (const sl_option *o = table; o->key != NULL; o++) {
        if (strcmp(o->key, key) == 0)
            return o;
    }
    return NULL;
}

static bool in_list(const char *const *list, const char *key)
{
    if (list == NULL)
        return false;
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strcmp(list[i], key) == 0)
            return true;
    }
    return false;
}

const char *sl__options_suggest(const sl_option *table,
                                const char *const *extra, const char *key)
{
    size_t n = 0;
    if (table != NULL) {
        for (const sl_option *o = table; o->key != NULL; o++)
            n++;
    }
    if (extra != NULL) {
        for (size_t i = 0; extra[i] != NULL; i++)
            n++;
    }
    const char **cands = malloc((n + 1) * sizeof(*cands));
    if (cands == NULL)
        return NULL;
    size_t k = 0;
    if (table != NULL) {
        for (const sl_option *o = table; o->key != NULL; o++)
            cands[k++] = o->key;
    }
    if (extra != NULL) {
        for (size_t i = 0; extra[i] != NULL; i++)
            cands[k++] = extra[i];
    }
    cands[k] = NULL;
    const char *best = sl__diag_suggest(key, cands, k);
    free(cands);
    return best;
}

/* Address of the option's value inside state. */
static void *slot(const sl_option *o, void *state)
{
    return (char *)state + o->offset;
}

static void free_strlist(sl_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static void free_strmap(sl_strmap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    m->keys = NULL;
    m->values = NULL;
    m->n = 0;
}

static void free_exprmap(sl_exprmap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->keys[i]);
        sl_expr_destroy(m->exprs[i]);
    }
    free(m->keys);
    free(m->exprs);
    m->keys = NULL;
    m->exprs = NULL;
    m->n = 0;
}

/* Release one option's value in state, leaving it zeroed. */
static void free_value(const sl_option *o, void *state)
{
    void *p = slot(o, state);
    switch (o->type) {
    case SL_OPT_STRING:
        free(*(char **)p);
        *(char **)p = NULL;
        break;
    case SL_OPT_EXPR:
        sl_expr_destroy(*(sl_expr **)p);
        *(sl_expr **)p = NULL;
        break;
    case SL_OPT_STRING_LIST:
        free_strlist(p);
        break;
    case SL_OPT_STRING_MAP:
        free_strmap(p);
        break;
    case SL_OPT_EXPR_MAP:
        free_exprmap(p);
        break;
    default:
        break;
    }
}

void sl__options_free(const sl_option *table, void *state)
{
    if (table == NULL || state == NULL)
        return;
    for (const sl_option *o = table; o->key != NULL; o++)
        free_value(o, state);
}

/* ------------------------------------------------------------------ */
/* One value                                                           */
/* ------------------------------------------------------------------ */

/* A scalar's text for messages: at most 60 bytes, "..." when cut. */
static const char *shown(const sl_node *n, char *buf, size_t size)
{
    if (n->len < 60 && memchr(n->text, '\n', n->len) == NULL)
        return n->text;
    size_t k = 0;
    while (k < n->len && k < 57 && k + 4 < size && n->text[k] != '\n')
        k++;
    /* do not cut a UTF-8 sequence in half */
    while (k > 0 && ((unsigned char)n->text[k] & 0xC0) == 0x80)
        k--;
    memcpy(buf, n->text, k);
    memcpy(buf + k, "...", 4);
    return buf;
}

static void err_at(sl_diag *d, const sl_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err_at(sl_diag *d, const sl_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl__diag_vadd(d, n ? n->file : NULL, n ? n->line : 0, n ? n->col : 0, fmt,
                  ap);
    va_end(ap);
}

/*
 * The node as a scalar for option o: reports and returns false for a
 * collection, for null (unless allow_null), and for text holding NUL bytes.
 */
static bool want_scalar(const sl_option *o, const sl_node *v, const char *what,
                        sl_diag *d)
{
    if (v->kind != SL_NODE_SCALAR) {
        err_at(d, v, "'%s': expected %s, got %s", o->key, what,
               sl__node_describe(v));
        return false;
    }
    if (sl__node_is_null(v)) {
        err_at(d, v, "'%s': expected %s, got null", o->key, what);
        return false;
    }
    if (strlen(v->text) != v->len) {
        err_at(d, v, "'%s': text must not contain NUL bytes", o->key);
        return false;
    }
    return true;
}

static int parse_bool(const char *s, bool *b)
{
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};
    for (size_t i = 0; yes[i] != NULL; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *b = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *b = false;
            return 0;
        }
    }
    return SL_EINVAL;
}

/* Decimal or 0x hex int64 with optional sign; SL_EINVAL or SL_ERANGE. */
static int parse_int(const char *s, int64_t *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        base = 16;
    if (!isdigit((unsigned char)*p))
        return SL_EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, base);
    if (end == s || *end != '\0')
        return SL_EINVAL;
    if (errno == ERANGE)
        return SL_ERANGE;
    *out = (int64_t)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (*s == '\0' || isspace((unsigned char)*s))
        return SL_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0')
        return SL_EINVAL;
    /* Reject inf/nan spellings strtod accepts; numbers in YAML are finite. */
    if (!isfinite(v))
        return errno == ERANGE ? SL_ERANGE : SL_EINVAL;
    for (const char *p = s; *p; p++) {
        if (isalpha((unsigned char)*p) && *p != 'e' && *p != 'E')
            return SL_EINVAL;
    }
    *out = v;
    return 0;
}

/* Describe a value of o's type for a range message. */
static void show_number(const sl_option *o, double v, char *buf, size_t size)
{
    if (o->type == SL_OPT_DURATION) {
        sl__format_duration((int64_t)v, buf, size);
    } else if (o->type == SL_OPT_RATE) {
        snprintf(buf, size, "%g/s", v);
    } else if (fabs(v) < 1e15 && v == floor(v)) {
        snprintf(buf, size, "%.0f", v);
    } else {
        snprintf(buf, size, "%g", v);
    }
}

static bool in_range(const sl_option *o, const sl_node *v, double x,
                     sl_diag *d)
{
    if (o->min == o->max || (x >= o->min && x <= o->max))
        return true;
    char lo[48], hi[48], got[48];
    show_number(o, o->min, lo, sizeof(lo));
    show_number(o, o->max, hi, sizeof(hi));
    show_number(o, x, got, sizeof(got));
    err_at(d, v, "'%s' must be between %s and %s, got %s", o->key, lo, hi,
           got);
    return false;
}

/* Column of expression column ecol inside scalar v, when it can be told. */
static int expr_column(const sl_node *v, int ecol)
{
    if (v->interpolated || memchr(v->text, '\n', v->len) != NULL)
        return v->col;
    switch (v->style) {
    case SL_SCALAR_PLAIN:
        return v->col + ecol - 1;
    case SL_SCALAR_SINGLE:
    case SL_SCALAR_DOUBLE:
        /* exact unless escapes come before the column */
        return v->col + ecol;
    default:
        return v->col;
    }
}

static int compile_expr(const sl_option *o, const sl_node *v, sl_expr **out,
                        sl_diag *d)
{
    sl_expr_error e;
    memset(&e, 0, sizeof(e));
    int rc = sl_expr_compile(v->text, out, &e);
    if (rc == SL_ENOMEM) {
        err_at(d, v, "'%s': out of memory compiling the expression", o->key);
        return rc;
    }
    if (rc != 0) {
        int ecol = e.column > 0 ? e.column : 1;
        sl__diag_add(d, v->file, v->line, expr_column(v, ecol),
                     "'%s': expression syntax error at column %d of '%s': %s",
                     o->key, ecol, v->len < 80 ? v->text : "...", e.text);
        return SL_ECONFIG;
    }
    return 0;
}

/* A list item or map value: a non-null scalar without NUL bytes. */
static bool want_item(const sl_option *o, const sl_node *v, const char *what,
                      sl_diag *d)
{
    if (v->invalid)
        return false;
    if (v->kind != SL_NODE_SCALAR || sl__node_is_null(v)) {
        err_at(d, v, "'%s': expected %s, got %s", o->key, what,
               sl__node_describe(v));
        return false;
    }
    if (strlen(v->text) != v->len) {
        err_at(d, v, "'%s': text must not contain NUL bytes", o->key);
        return false;
    }
    return true;
}

static int set_list(const sl_option *o, const sl_node *v, sl_strlist *out,
                    sl_diag *d)
{
    const sl_node *const *items = (const sl_node *const *)&v;
    size_t n = 1;
    if (v->kind == SL_NODE_SEQUENCE) {
        items = (const sl_node *const *)v->items;
        n = v->n;
    } else if (v->kind != SL_NODE_SCALAR || sl__node_is_null(v)) {
        err_at(d, v, "'%s': expected a list, got %s", o->key,
               sl__node_describe(v));
        return SL_ECONFIG;
    }
    sl_strlist l = {0, NULL};
    int rc = 0;
    if (n > 0) {
        l.items = calloc(n, sizeof(*l.items));
        if (l.items == NULL)
            return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (!want_item(o, items[i], "a list of strings", d)) {
            rc = SL_ECONFIG;
            continue;
        }
        char *s = strdup(items[i]->text);
        if (s == NULL) {
            rc = SL_ENOMEM;
            break;
        }
        l.items[l.n++] = s;
    }
    if (rc != 0) {
        free_strlist(&l);
        return rc;
    }
    *out = l;
    return 0;
}

static int set_map(const sl_option *o, const sl_node *v, void *out,
                   sl_diag *d)
{
    bool exprs = o->type == SL_OPT_EXPR_MAP;
    if (v->kind != SL_NODE_MAPPING) {
        err_at(d, v, "'%s': expected a mapping, got %s", o->key,
               sl__node_describe(v));
        return SL_ECONFIG;
    }
    size_t n = v->n;
    char **keys = calloc(n ? n : 1, sizeof(*keys));
    void **vals = calloc(n ? n : 1, sizeof(*vals));
    size_t k = 0;
    int rc = 0;
    if (keys == NULL || vals == NULL) {
        rc = SL_ENOMEM;
        goto out_free;
    }
    for (size_t i = 0; i < n; i++) {
        const sl_node *val = v->items[i];
        if (!want_item(o, val, exprs ? "an expression" : "a string", d)) {
            rc = SL_ECONFIG;
            continue;
        }
        if (strlen(v->keys[i]->text) != v->keys[i]->len) {
            err_at(d, v->keys[i], "'%s': keys must not contain NUL bytes",
                   o->key);
            rc = SL_ECONFIG;
            continue;
        }
        void *value = NULL;
        if (exprs) {
            int erc = compile_expr(o, val, (sl_expr **)&value, d);
            if (erc != 0) {
                rc = rc == SL_ENOMEM ? rc : erc;
                continue;
            }
        } else {
            value = strdup(val->text);
        }
        keys[k] = strdup(v->keys[i]->text);
        if (value == NULL || keys[k] == NULL) {
            free(keys[k]);
            if (exprs)
                sl_expr_destroy(value);
            else
                free(value);
            rc = SL_ENOMEM;
            break;
        }
        vals[k++] = value;
    }
    if (rc == 0) {
        if (exprs) {
            sl_exprmap *m = out;
            m->n = k;
            m->keys = keys;
            m->exprs = (sl_expr **)vals;
        } else {
            sl_strmap *m = out;
            m->n = k;
            m->keys = keys;
            m->values = (char **)vals;
        }
        return 0;
    }
out_free:
    for (size_t i = 0; i < k; i++) {
        free(keys[i]);
        if (exprs)
            sl_expr_destroy(vals[i]);
        else
            free(vals[i]);
    }
    free(keys);
    free(vals);
    return rc;
}

/* The index of v's text among o->choices ("a|b|c"), or -1. */
static int enum_index(const sl_option *o, const char *s)
{
    const char *c = o->choices;
    size_t slen = strlen(s);
    int idx = 0;
    while (c != NULL && *c != '\0') {
        const char *bar = strchr(c, '|');
        size_t n = bar ? (size_t)(bar - c) : strlen(c);
        if (n == slen && memcmp(c, s, n) == 0)
            return idx;
        idx++;
        if (bar == NULL)
            break;
        c = bar + 1;
    }
    return -1;
}

static void enum_error(const sl_option *o, const sl_node *v, sl_diag *d)
{
    char list[256];
    char words[16][48];
    const char *cands[17];
    size_t nc = 0, off = 0;
    const char *c = o->choices ? o->choices : "";
    list[0] = '\0';
    while (*c != '\0') {
        const char *bar = strchr(c, '|');
        size_t n = bar ? (size_t)(bar - c) : strlen(c);
        if (nc < 16 && n < sizeof(words[0])) {
            memcpy(words[nc], c, n);
            words[nc][n] = '\0';
            cands[nc] = words[nc];
            nc++;
        }
        int k = snprintf(list + off, sizeof(list) - off, "%s%.*s",
                         off ? ", " : "", (int)n, c);
        if (k > 0 && (size_t)k < sizeof(list) - off)
            off += (size_t)k;
        if (bar == NULL)
            break;
        c = bar + 1;
    }
    cands[nc] = NULL;
    char buf[64];
    const char *hint = sl__diag_suggest(v->text, cands, nc);
    if (hint != NULL)
        err_at(d, v, "'%s': expected one of %s, got '%s' (did you mean '%s'?)",
               o->key, list, shown(v, buf, sizeof(buf)), hint);
    else
        err_at(d, v, "'%s': expected one of %s, got '%s'", o->key, list,
               shown(v, buf, sizeof(buf)));
}

int sl__option_set(const sl_option *o, const sl_node *v, void *state,
                   sl_diag *d)
{
    char buf[64];
    int rc;
    void *p = slot(o, state);

    if (v->invalid)
        return SL_ECONFIG;
    switch (o->type) {
    case SL_OPT_BOOL: {
        bool b;
        if (!want_scalar(o, v, "true or false", d))
            return SL_ECONFIG;
        if (parse_bool(v->text, &b) != 0) {
            err_at(d, v, "'%s': expected true or false, got '%s'", o->key,
                   shown(v, buf, sizeof(buf)));
            return SL_ECONFIG;
        }
        *(bool *)p = b;
        return 0;
    }
    case SL_OPT_INT: {
        int64_t x;
        double dx;
        if (!want_scalar(o, v, "a number", d))
            return SL_ECONFIG;
        rc = parse_int(v->text, &x);
        if (rc == SL_ERANGE) {
            err_at(d, v, "'%s': %s is out of range for a 64-bit integer",
                   o->key, shown(v, buf, sizeof(buf)));
            return SL_ECONFIG;
        }
        if (rc != 0) {
            if (parse_double(v->text, &dx) == 0)
                err_at(d, v, "'%s': expected a whole number, got '%s'",
                       o->key, shown(v, buf, sizeof(buf)));
            else
                err_at(d, v, "'%s': expected a number, got '%s'", o->key,
                       shown(v, buf, sizeof(buf)));
            return SL_ECONFIG;
        }
        if (!in_range(o, v, (double)x, d))
            return SL_ECONFIG;
        *(int64_t *)p = x;
        return 0;
    }
    case SL_OPT_DOUBLE: {
        double x;
        if (!want_scalar(o, v, "a number", d))
            return SL_ECONFIG;
        rc = parse_double(v->text, &x);
        if (rc != 0) {
            if (rc == SL_ERANGE)
                err_at(d, v, "'%s': %s is out of range", o->key,
                       shown(v, buf, sizeof(buf)));
            else
                err_at(d, v, "'%s': expected a number, got '%s'", o->key,
                       shown(v, buf, sizeof(buf)));
            return SL_ECONFIG;
        }
        if (!in_range(o, v, x, d))
            return SL_ECONFIG;
        *(double *)p = x;
        return 0;
    }
    case SL_OPT_STRING: {
        if (!want_scalar(o, v, "a string", d))
            return SL_ECONFIG;
        char *s = strdup(v->text);
        if (s == NULL)
            return SL_ENOMEM;
        free(*(char **)p);
        *(char **)p = s;
        return 0;
    }
    case SL_OPT_DURATION: {
        int64_t ns;
        if (!want_scalar(o, v, "a duration", d))
            return SL_ECONFIG;
        rc = sl__parse_duration(v->text, &ns);
        if (rc == SL_ERANGE) {
            err_at(d, v, "'%s': duration '%s' is too long", o->key,
                   shown(v, buf, sizeof(buf)));
            return SL_ECONFIG;
        }
        if (rc != 0) {
            err_at(d, v, "'%s': invalid duration '%s' (write a number and a "
                   "unit: ns, us, ms, s, m, h; e.g. 250ms, 5s, 1.5m, 1h30m)",
                   o->key, shown(v, buf, sizeof(buf)));
            return SL_ECONFIG;
        }
        if (!in_range(o, v, (double)ns, d))
            return SL_ECONFIG;
        *(int64_t *)p = ns;
        return 0;
    }
    case SL_OPT_RATE: {
        double r;
        if (!want_scalar(o, v, "a rate", d))
            return SL_ECONFIG;
        rc = sl__parse_rate(v->text, &r);
        if (rc != 0) {
            err_at(d, v, "'%s': invalid rate '%s' (write a count per unit of "
                   "time: 100/s, 6000/m, 5/h)", o->key,
                   shown(v, buf, sizeof(buf)));
            return SL_ECONFIG;
        }
        if (!in_range(o, v, r, d))
            return SL_ECONFIG;
        *(double *)p = r;
        return 0;
    }
    case SL_OPT_SIZE: {
        int64_t b;
        if (!want_scalar(o, v, "a size", d))
            return SL_ECONFIG;
        rc = sl__parse_size(v->text, &b);
        if (rc == SL_ERANGE) {
            err_at(d, v, "'%s': size '%s' is too large", o->key,
                   shown(v, buf, sizeof(buf)));
            return SL_ECONFIG;
        }
        if (rc != 0) {
            err_at(d, v, "'%s': invalid size '%s' (write bytes, or a number "
                   "and a unit: B, KB, KiB, MB, MiB, GB, GiB, TB, TiB)",
                   o->key, shown(v, buf, sizeof(buf)));
            return SL_ECONFIG;
        }
        if (!in_range(o, v, (double)b, d))
            return SL_ECONFIG;
        *(int64_t *)p = b;
        return 0;
    }
    case SL_OPT_ENUM: {
        if (!want_scalar(o, v, "a choice", d))
            return SL_ECONFIG;
        int idx = enum_index(o, v->text);
        if (idx < 0) {
            enum_error(o, v, d);
            return SL_ECONFIG;
        }
        *(int *)p = idx;
        return 0;
    }
    case SL_OPT_EXPR: {
        sl_expr *e = NULL;
        if (!want_scalar(o, v, "an expression", d))
            return SL_ECONFIG;
        rc = compile_expr(o, v, &e, d);
        if (rc != 0)
            return rc;
        sl_expr_destroy(*(sl_expr **)p);
        *(sl_expr **)p = e;
        return 0;
    }
    case SL_OPT_STRING_LIST: {
        sl_strlist l;
        rc = set_list(o, v, &l, d);
        if (rc != 0)
            return rc;
        free_strlist(p);
        *(sl_strlist *)p = l;
        return 0;
    }
    case SL_OPT_STRING_MAP: {
        sl_strmap m;
        rc = set_map(o, v, &m, d);
        if (rc != 0)
            return rc;
        free_strmap(p);
        *(sl_strmap *)p = m;
        return 0;
    }
    case SL_OPT_EXPR_MAP: {
        sl_exprmap m;
        rc = set_map(o, v, &m, d);
        if (rc != 0)
            return rc;
        free_exprmap(p);
        *(sl_exprmap *)p = m;
        return 0;
    }
    }
    err_at(d, v, "'%s': option has an unknown type %d", o->key, (int)o->type);
    return SL_EINTERNAL;
}

/* ------------------------------------------------------------------ */
/* Whole tables                                                        */
/* ------------------------------------------------------------------ */

/* Apply o's default_yaml, if any. Problems are the table author's. */
static int apply_default(const sl_option *o, void *state, sl_diag *d)
{
    if (o->default_yaml == NULL)
        return 0;
    char file[96];
    /* Most defaults are plain words ("5s", "1024", "jsonl"): no parser. */
    const char *dy = o->default_yaml;
    size_t dlen = strlen(dy);
    if (dlen > 0 && dlen < 256 && strpbrk(dy, "[]{}'\"#:,&*!|>%@`\n\t") == NULL
        && dy[0] != ' ' && dy[dlen - 1] != ' ' && dy[0] != '-'
        && dy[0] != '?' && dy[0] != '~' && strcmp(dy, "null") != 0) {
        char text[256];
        memcpy(text, dy, dlen + 1);
        snprintf(file, sizeof(file), "<default of '%.40s'>", o->key);
        sl_node n;
        memset(&n, 0, sizeof(n));
        n.kind = SL_NODE_SCALAR;
        n.file = file;
        n.line = 1;
        n.col = 1;
        n.text = text;
        n.len = dlen;
        n.style = SL_SCALAR_PLAIN;
        return sl__option_set(o, &n, state, d);
    }
    snprintf(file, sizeof(file), "<default of '%.40s'>", o->key);
    sl_yaml_opts yo = {.no_interpolate = true, .allow_empty = true};
    sl_yaml *y = NULL;
    int rc = sl__yaml_load_text(o->default_yaml, strlen(o->default_yaml), file,
                                &yo, d, &y);
    if (rc != 0)
        return rc;
    if (sl__yaml_root(y) != NULL)
        rc = sl__option_set(o, sl__yaml_root(y), state, d);
    sl__yaml_destroy(y);
    return rc;
}

int sl__options_apply_named(const sl_option *table, const sl_node *map,
                            const char *const *reserved, const char *what,
                            void *state, sl_diag *diag)
{
    size_t before = sl__diag_errors(diag);
    bool nomem = false;
    const sl_node *at = map;   /* where "missing" is reported */

    if (map != NULL && map->invalid)
        map = NULL;
    if (map != NULL && map->kind != SL_NODE_MAPPING && !sl__node_is_null(map)) {
        err_at(diag, map, "expected a mapping of options%s%s, got %s",
               what ? " for " : "", what ? what : "", sl__node_describe(map));
        map = NULL;
    }
    if (map != NULL && map->kind != SL_NODE_MAPPING)
        map = NULL;

    if (table != NULL) {
        for (const sl_option *o = table; o->key != NULL; o++) {
            if (apply_default(o, state, diag) == SL_ENOMEM)
                nomem = true;
        }
    }
    for (size_t i = 0; map != NULL && i < map->n; i++) {
        const sl_node *k = map->keys[i];
        const sl_option *o = sl__options_find(table, k->text);
        if (o != NULL) {
            if (sl__option_set(o, map->items[i], state, diag) == SL_ENOMEM)
                nomem = true;
            continue;
        }
        if (in_list(reserved, k->text))
            continue;
        char buf[64];
        const char *hint = sl__options_suggest(table, reserved, k->text);
        sl__diag_add(diag, k->file, k->line, k->col,
                     "unknown key '%s'%s%s%s%s%s", shown(k, buf, sizeof(buf)),
                     what ? " in " : "", what ? what : "",
                     hint ? " (did you mean '" : "", hint ? hint : "",
                     hint ? "'?)" : "");
    }
    if (table != NULL) {
        for (const sl_option *o = table; o->key != NULL; o++) {
            if (!(o->flags & SL_OPT_REQUIRED))
                continue;
            const sl_node *v = sl__node_get(map, o->key);
            bool given = v != NULL && (v->invalid || !sl__node_is_null(v));
            if (given)
                continue;
            if (what != NULL)
                sl__diag_add(diag, at ? at->file : NULL, at ? at->line : 0,
                             at ? at->col : 0,
                             "%s: missing required option '%s'", what, o->key);
            else
                sl__diag_add(diag, at ? at->file : NULL, at ? at->line : 0,
                             at ? at->col : 0,
                             "missing required option '%s'", o->key);
        }
    }
    if (nomem)
        return SL_ENOMEM;
    return sl__diag_errors(diag) > before ? SL_ECONFIG : 0;
}

int sl__options_apply(const sl_option *table, const sl_node *map,
                      const char *const *reserved, void *state, sl_diag *diag)
{
    return sl__options_apply_named(table, map, reserved, NULL, state, diag);
}

int sl__options_apply_text(const sl_option *table, const char *yaml,
                           const char *file, void *state, sl_diag *diag)
{
    size_t before = sl__diag_errors(diag);
    sl_yaml *y = NULL;
    if (yaml != NULL) {
        sl_yaml_opts yo = {.allow_empty = true};
        int rc = sl__yaml_load_text(yaml, strlen(yaml),
                                    file ? file : "<options>", &yo, diag, &y);
        if (rc != 0)
            return rc;
    }
    int rc = sl__options_apply(table, y ? sl__yaml_root(y) : NULL, NULL, state,
                               diag);
    if (rc == 0 && sl__diag_errors(diag) > before)
        rc = SL_ECONFIG;
    sl__yaml_destroy(y);
    return rc;
}
