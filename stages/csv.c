/*
 * `csv`: parse each payload as one CSV line into fields.
 *
 * Quoting follows RFC 4180 within a line: a field that starts with '"' runs
 * to the matching '"', with "" standing for one '"', and may hold the
 * delimiter. A quote inside an unquoted field is kept as text. Because
 * records arrive one line each, a quoted field cannot span lines: an
 * unterminated quote is an error.
 *
 * Names: with `header: true` (default) the first line is the header and is
 * dropped (counted in `dropped`); when the records come from several files
 * (their positions name different files), each file's first line is its
 * header. `columns` gives the names instead: with `header: true` the header
 * line is still skipped; with `header: false` every line is data. With
 * neither, fields are named column_1, column_2, ... Every data line must
 * have as many fields as there are names; an empty header name becomes
 * column_N and a duplicate one is an error.
 *
 * Types (`infer_types: true`, default): an unquoted field that reads as a
 * decimal integer (fitting 64 bits) becomes an int, one that reads as a
 * decimal number with a fraction or exponent a double, an empty unquoted
 * field null. Everything else stays a string — a quoted field always, a
 * number with a leading zero ("007", a code or zip rather than a quantity),
 * and "true"/"false": turning those into booleans would give a column of
 * "true"/"false"/"maybe" two types, so it is left to a `map` stage.
 *
 * `header: true` needs `workers: 1`: the stage has to see the header first.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/plugin.h"

#include "record_where.h"

typedef struct csv_span {
    size_t off;             /* start: in scratch when quoted, else in the line */
    size_t len;             /* bytes */
    bool quoted;            /* the field was quoted (its bytes are in scratch) */
} csv_span;

typedef struct csv_stage {
    bool header;            /* option: the first line names the columns */
    char *delimiter;        /* option: one character */
    sl_strlist columns;     /* option: column names */
    bool infer_types;       /* option: numbers and nulls from text */
    char delim;             /* delimiter[0] */
    char **names;           /* current column names (owned) */
    size_t *name_lens;      /* their lengths */
    size_t n_names;         /* entries in names */
    char **numbered_names;  /* column_1, column_2, ... made so far (owned) */
    size_t n_numbered;      /* entries in numbered_names */
    bool have_names;        /* names are set (header seen or columns given) */
    bool numbered;          /* no names: column_1, column_2, ... by position */
    bool header_pending;    /* the next line of a new file is a header */
    char *header_locator;   /* file the current header came from, or NULL */
    const char *line;       /* the line being split (borrowed from its record) */
    sl_buf scratch;         /* quoted fields of the current line, unescaped */
    csv_span *spans;        /* fields of the current line */
    size_t cap_spans;       /* entries allocated in spans */
    sl_member_init *members; /* the fields of the current line, for sl_object_build */
    size_t cap_members;     /* entries allocated in members */
    char numbuf[64];        /* a field copied for strtoll/strtod */
} csv_stage;

static void free_names(csv_stage *cs)
{
    for (size_t i = 0; i < cs->n_names; i++)
        free(cs->names[i]);
    free(cs->names);
    free(cs->name_lens);
    cs->names = NULL;
    cs->name_lens = NULL;
    cs->n_names = 0;
}

/* Make names[i] for i in [0, n) from the given strings (NULL or "" ->
 * column_<i+1>). Rejects duplicates, naming the first one. */
static int set_names(csv_stage *cs, sl_stage_ctx *sc, const char *const *src,
                     const size_t *lens, size_t n, const char *where)
{
    char **names = calloc(n > 0 ? n : 1, sizeof(*names));
    size_t *name_lens = calloc(n > 0 ? n : 1, sizeof(*name_lens));
    if (names == NULL || name_lens == NULL) {
        free(names);
        free(name_lens);
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = lens != NULL ? lens[i] : (src[i] != NULL ? strlen(src[i]) : 0);
        if (len == 0) {
            char tmp[32];
            snprintf(tmp, sizeof(tmp), "column_%zu", i + 1);
            names[i] = strdup(tmp);
        } else {
            names[i] = strndup(src[i], len);
        }
        if (names[i] == NULL)
            goto out_nomem;
        name_lens[i] = strlen(names[i]);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(names[j], names[i]) == 0) {
                int rc = sl_stage_error(sc, SL_EPARSE, "%s: duplicate column name '%s'",
                                        where, names[i]);
                for (size_t k = 0; k <= i; k++)
                    free(names[k]);
                free(names);
                free(name_lens);
                return rc;
            }
        }
    }
    free_names(cs);
    cs->names = names;
    cs->name_lens = name_lens;
    cs->n_names = n;
    cs->have_names = true;
    return 0;
out_nomem:
    for (size_t k = 0; k < n; k++)
        free(names[k]);
    free(names);
    free(name_lens);
    return sl_stage_error(sc, SL_ENOMEM, "out of memory");
}

static int csv_init(void *state, sl_stage_ctx *sc)
{
    csv_stage *cs = state;
    sl_buf_init(&cs->scratch);
    if (cs->delimiter == NULL || strlen(cs->delimiter) != 1)
        return sl_stage_error(sc, SL_ECONFIG, "delimiter must be one character, got '%s'",
                              cs->delimiter != NULL ? cs->delimiter : "");
    cs->delim = cs->delimiter[0];
    if (cs->delim == '"' || cs->delim == '\n' || cs->delim == '\r')
        return sl_stage_error(sc, SL_ECONFIG, "delimiter cannot be a quote or a line break");
    if (cs->header && sl_stage_worker_count(sc) > 1)
        return sl_stage_error(sc, SL_ECONFIG,
                              "header: true needs workers: 1 (or use header: false with columns)");
    if (cs->columns.n > 0) {
        int rc = set_names(cs, sc, (const char *const *)cs->columns.items, NULL,
                           cs->columns.n, "columns");
        if (rc < 0)
            return rc == SL_EPARSE ? SL_ECONFIG : rc;
    } else if (!cs->header) {
        cs->numbered = true;
    }
    cs->header_pending = cs->header;
    return 0;
}

/* Room for one more span. */
static int push_span(csv_stage *cs, size_t n, size_t off, size_t len, bool quoted)
{
    if (n == cs->cap_spans) {
        size_t ncap = cs->cap_spans == 0 ? 16 : cs->cap_spans * 2;
        csv_span *ns = realloc(cs->spans, ncap * sizeof(*ns));
        if (ns == NULL)
            return SL_ENOMEM;
        cs->spans = ns;
        cs->cap_spans = ncap;
    }
    cs->spans[n] = (csv_span){off, len, quoted};
    return 0;
}

/*
 * Split line p[0..len) into fields, their spans to spans: an unquoted
 * field is read where it is, a quoted one is unescaped into scratch.
 * p stays borrowed until the fields are built. Returns the number of fields, SL_ENOMEM, or SL_EPARSE with
 * *col (1-based) and *what describing the problem.
 */
static long split_line(csv_stage *cs, const char *p, size_t len, size_t *col,
                       const char **what)
{
    sl_buf_reset(&cs->scratch);
    cs->line = p;
    if (len > 0 && p[len - 1] == '\r')
        len--;
    size_t n = 0;
    size_t i = 0;
    for (;;) {
        size_t off = cs->scratch.len, flen;
        bool quoted = false;
        bool more = false;   /* a delimiter followed this field */
        if (i < len && p[i] == '"') {
            quoted = true;
            size_t open = i;
            i++;
            for (;;) {
                const char *q = i < len ? memchr(p + i, '"', len - i) : NULL;
                if (q == NULL) {
                    *col = open + 1;
                    *what = "unterminated quoted field (quoted fields cannot span lines)";
                    return SL_EPARSE;
                }
                size_t qi = (size_t)(q - p);
                if (sl_buf_append(&cs->scratch, p + i, qi - i) < 0)
                    return SL_ENOMEM;
                if (qi + 1 < len && p[qi + 1] == '"') {
                    if (sl_buf_putc(&cs->scratch, '"') < 0)
                        return SL_ENOMEM;
                    i = qi + 2;
                    continue;
                }
                i = qi + 1;
                break;
            }
            flen = cs->scratch.len - off;
            if (i < len) {
                if (p[i] != cs->delim) {
                    *col = i + 1;
                    *what = "unexpected character after a closing quote";
                    return SL_EPARSE;
                }
                i++;
                more = true;
            }
        } else {
            const char *d = i < len ? memchr(p + i, cs->delim, len - i) : NULL;
            size_t end = d != NULL ? (size_t)(d - p) : len;
            off = i;
            flen = end - i;
            i = end;
            if (d != NULL) {
                i++;
                more = true;
            }
        }
        if (push_span(cs, n, off, flen, quoted) < 0)
            return SL_ENOMEM;
        n++;
        if (!more)
            break;
    }
    return (long)n;
}

/* The bytes of span i (valid until the next split, and while the line is). */
static const char *span_text(const csv_stage *cs, size_t i)
{
    if (!cs->spans[i].quoted)
        return cs->line + cs->spans[i].off;
    return cs->scratch.data != NULL ? cs->scratch.data + cs->spans[i].off : "";
}

/*
 * s[0..n) as an int64 when it is [+-]?digits with no leading zero (except
 * "0") and fits 64 bits: true and *out set; false otherwise. Read here
 * rather than with strtoll: no copy to terminate it, no errno.
 */
static bool parse_int(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (i == n || (s[i] == '0' && i + 1 < n))
        return false;
    uint64_t v = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v > (uint64_t)INT64_MAX + (neg ? 1 : 0))
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* 10^0 .. 10^22: every one exactly a double. */
static const double pow10_exact[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/*
 * The double of s[0..n), already checked by looks_float, when it can be
 * had exactly without strtod: at most 15 significant digits (so the digits
 * as an integer m are exact) and a decimal exponent e with |e| <= 22 (so
 * 10^|e| is exact); then m * 10^e or m / 10^-e is one correctly rounded
 * operation, the value strtod gives. false: use strtod.
 */
static bool fast_float(const char *s, size_t n, double *out)
{
    size_t i = 0;
    bool neg = false;
    if (s[i] == '-' || s[i] == '+')
        neg = s[i++] == '-';
    uint64_t m = 0;
    int digits = 0;       /* significant digits in m */
    long e = 0;           /* decimal exponent of m */
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        if (m == 0 && s[i] == '0')
            continue;
        m = m * 10 + (uint64_t)(s[i] - '0');
        digits++;
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            e--;
            if (m == 0 && s[i] == '0')
                continue;
            m = m * 10 + (uint64_t)(s[i] - '0');
            digits++;
        }
    }
    if (digits > 15)
        return false;
    if (i < n) {   /* [eE][+-]?digits */
        i++;
        bool eneg = false;
        if (s[i] == '-' || s[i] == '+')
            eneg = s[i++] == '-';
        long x = 0;
        for (; i < n; i++) {
            if (x > 1000)
                return false;
            x = x * 10 + (s[i] - '0');
        }
        e += eneg ? -x : x;
    }
    double d = (double)m;
    if (m != 0) {
        if (e < -22 || e > 22)
            return false;
        d = e < 0 ? d / pow10_exact[-e] : d * pow10_exact[e];
    }
    *out = neg ? -d : d;
    return true;
}

/* true if s[0..n) is a decimal number with a fraction and/or exponent:
 * [+-]? (digits [. digits*] | . digits) ([eE] [+-]? digits)?, no leading
 * zero before another digit. */
static bool looks_float(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    size_t int_start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    size_t int_digits = i - int_start;
    if (int_digits > 1 && s[int_start] == '0')
        return false;
    size_t frac_digits = 0;
    bool dot = false;
    if (i < n && s[i] == '.') {
        dot = true;
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            frac_digits++;
        }
    }
    if (int_digits + frac_digits == 0)
        return false;
    bool exp = false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        exp = true;
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t exp_start = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == exp_start)
            return false;
    }
    return i == n && (dot || exp);
}

/* Member m as field i: typed per the rules at the top of the file. The
 * text stays where it is (the line or scratch) until the object is built. */
static void field_init(csv_stage *cs, size_t i, sl_member_init *m)
{
    const char *s = span_text(cs, i);
    size_t n = cs->spans[i].len;
    m->v = NULL;
    if (cs->infer_types && !cs->spans[i].quoted) {
        if (n == 0) {
            m->type = SL_TYPE_NULL;
            return;
        }
        if (n < sizeof(cs->numbuf)) {
            if (parse_int(s, n, &m->u.i)) {
                m->type = SL_TYPE_INT;
                return;
            }
            if (looks_float(s, n)) {
                m->type = SL_TYPE_DOUBLE;
                if (fast_float(s, n, &m->u.d))
                    return;
                memcpy(cs->numbuf, s, n);
                cs->numbuf[n] = '\0';
                errno = 0;
                m->u.d = strtod(cs->numbuf, NULL);
                if (errno == 0)
                    return;
            }
        }
    }
    m->type = SL_TYPE_STRING;
    m->u.str.s = s;
    m->u.str.len = n;
}

/* Room for n members and, without names, the names column_1..column_n. */
static int reserve_members(csv_stage *cs, size_t n)
{
    if (n > cs->cap_members) {
        sl_member_init *nm = realloc(cs->members, n * sizeof(*nm));
        if (nm == NULL)
            return SL_ENOMEM;
        cs->members = nm;
        cs->cap_members = n;
    }
    if (cs->numbered && n > cs->n_numbered) {
        char **nn = realloc(cs->numbered_names, n * sizeof(*nn));
        if (nn == NULL)
            return SL_ENOMEM;
        cs->numbered_names = nn;
        for (; cs->n_numbered < n; cs->n_numbered++) {
            char key[32];
            snprintf(key, sizeof(key), "column_%zu", cs->n_numbered + 1);
            if ((nn[cs->n_numbered] = strdup(key)) == NULL)
                return SL_ENOMEM;
        }
    }
    return 0;
}

/* A header line: take the names from it (unless columns were given). */
static int take_header(csv_stage *cs, sl_stage_ctx *sc, sl_record *rec, size_t n,
                       const char *where)
{
    const sl_position *pos = sl_record_position(rec);
    const char *loc = pos != NULL ? pos->locator : NULL;
    free(cs->header_locator);
    cs->header_locator = NULL;
    if (loc != NULL && (cs->header_locator = strdup(loc)) == NULL)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    if (cs->columns.n == 0) {
        const char **src = malloc(n * sizeof(*src));
        size_t *lens = malloc(n * sizeof(*lens));
        if (src == NULL || lens == NULL) {
            free(src);
            free(lens);
            return sl_stage_error(sc, SL_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
            src[i] = span_text(cs, i);
            lens[i] = cs->spans[i].len;
        }
        int rc = set_names(cs, sc, src, lens, n, where);
        free(src);
        free(lens);
        if (rc < 0)
            return rc;
    }
    cs->header_pending = false;
    sl_record_drop(sc, rec);
    return 0;
}

/* Is rec the first line of a file other than the current header's? */
static bool from_new_file(const csv_stage *cs, const sl_record *rec)
{
    const sl_position *pos = sl_record_position(rec);
    const char *loc = pos != NULL ? pos->locator : NULL;
    if (loc == NULL)
        return false;
    return cs->header_locator == NULL || strcmp(loc, cs->header_locator) != 0;
}

static int csv_process(void *state, sl_stage_ctx *sc, sl_record *rec)
{
    csv_stage *cs = state;
    char where[512];
    size_t len;
    const char *p = sl_record_payload(rec, &len);
    if (p == NULL) {
        p = "";
        len = 0;
    }
    size_t col = 0;
    const char *what = NULL;
    long n = split_line(cs, p, len, &col, &what);
    if (n == SL_ENOMEM)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    if (n < 0)
        return sl_stage_error(sc, SL_EPARSE, "%s: %s at column %zu",
                              sl__record_where(rec, where, sizeof(where)), what, col);
    if (cs->header && (cs->header_pending || from_new_file(cs, rec)))
        return take_header(cs, sc, rec, (size_t)n,
                           sl__record_where(rec, where, sizeof(where)));
    if (!cs->numbered && (size_t)n != cs->n_names)
        return sl_stage_error(sc, SL_EPARSE, "%s: expected %zu columns, got %ld",
                              sl__record_where(rec, where, sizeof(where)), cs->n_names, n);
    if (reserve_members(cs, (size_t)n) < 0)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    for (size_t i = 0; i < (size_t)n; i++) {
        sl_member_init *m = &cs->members[i];
        if (cs->numbered) {
            m->key = cs->numbered_names[i];
            m->key_len = strlen(m->key);
        } else {
            m->key = cs->names[i];
            m->key_len = cs->name_lens[i];
        }
        field_init(cs, i, m);
    }
    /* One allocation for the whole row; room for a few fields a map adds. */
    sl_value *obj = sl_object_build(cs->members, (size_t)n, 4, 48);
    if (obj == NULL)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    if (sl_record_set_fields(rec, obj) < 0)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    sl_record_clear_payload(rec);
    sl_emit(sc, rec);
    return 0;
}

static void csv_destroy(void *state)
{
    csv_stage *cs = state;
    free_names(cs);
    free(cs->header_locator);
    free(cs->spans);
    free(cs->members);
    for (size_t i = 0; i < cs->n_numbered; i++)
        free(cs->numbered_names[i]);
    free(cs->numbered_names);
    sl_buf_fini(&cs->scratch);
}

static const sl_option csv_options[] = {
    {SL_OPT_BOOL, "header", "true", 0, offsetof(csv_stage, header), 0, 0, NULL,
     "the first line (of each file) names the columns and is not a record"},
    {SL_OPT_STRING, "delimiter", "\",\"", 0, offsetof(csv_stage, delimiter), 0, 0, NULL,
     "field separator, one character (\"\\t\" for tab-separated)"},
    {SL_OPT_STRING_LIST, "columns", NULL, 0, offsetof(csv_stage, columns), 0, 0, NULL,
     "column names instead of the header's; with header: false and no columns: column_1, column_2, ..."},
    {SL_OPT_BOOL, "infer_types", "true", 0, offsetof(csv_stage, infer_types), 0, 0, NULL,
     "unquoted numbers become int/double and empty fields null; the rest stay strings"},
    SL_OPTIONS_END,
};

const sl_stage_desc sl_stage_csv = {
    SL_STAGE_DESC_HEADER,
    .name = "csv",
    .kind = SL_STAGE_TRANSFORM,
    .summary = "parse each payload as a CSV line (RFC 4180 quoting) into named fields",
    .options = csv_options,
    .state_size = sizeof(csv_stage),
    .init = csv_init,
    .process = csv_process,
    .destroy = csv_destroy,
};
