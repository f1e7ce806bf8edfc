/*
 * The built-in functions of the expression language: the name table the
 * parser resolves calls against, and their implementations.
 *
 * Missing data stays quiet: a null argument (a missing field) gives null
 * from lower, upper, to_int, to_float; false from contains and
 * starts_with; 0 from len. Any other wrong type is an SL_ETYPE error that
 * names the function and the type it got.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine/expr_internal.h"
#include "sluice/error.h"

/* Name and arity of each function; the parser checks calls against it. */
const sl__xfunc sl__xfuncs[SL__F_COUNT_] = {
    [SL__F_LEN] = {"len", 1, 1},
    [SL__F_LOWER] = {"lower", 1, 1},
    [SL__F_UPPER] = {"upper", 1, 1},
    [SL__F_CONTAINS] = {"contains", 2, 2},
    [SL__F_STARTS_WITH] = {"starts_with", 2, 2},
    [SL__F_TO_INT] = {"to_int", 1, 1},
    [SL__F_TO_FLOAT] = {"to_float", 1, 1},
    [SL__F_TO_STRING] = {"to_string", 1, 1},
    [SL__F_NOW] = {"now", 0, 0},
    [SL__F_SEQ] = {"seq", 0, 0},
};

/* Exact, case-sensitive lookup of name[0..len). */
int sl__xfunc_find(const char *name, size_t len)
{
    for (int i = 0; i < SL__F_COUNT_; i++)
        if (strlen(sl__xfuncs[i].name) == len &&
            memcmp(sl__xfuncs[i].name, name, len) == 0)
            return i;
    return -1;
}

/* Edit distance between a[0..n) (compared case-insensitively) and b,
 * capped: anything above 3 reads as 3. */
static size_t distance(const char *a, size_t n, const char *b)
{
    size_t m = strlen(b);
    if (n > 32 || m > 32)
        return 3;
    size_t row[33];
    for (size_t j = 0; j <= m; j++)
        row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m] > 3 ? 3 : row[m];
}

/*
 * The nearest name within two edits; failing that, a name that the given
 * one starts with, or that starts with it (length -> len, to_str ->
 * to_string), at least three characters long.
 */
const char *sl__xfunc_suggest(const char *name, size_t len)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (int i = 0; i < SL__F_COUNT_; i++) {
        size_t d = distance(name, len, sl__xfuncs[i].name);
        if (d < best_d && d < strlen(sl__xfuncs[i].name)) {
            best = sl__xfuncs[i].name;
            best_d = d;
        }
    }
    if (best != NULL || len < 3)
        return best;
    for (int i = 0; i < SL__F_COUNT_; i++) {
        const char *f = sl__xfuncs[i].name;
        size_t flen = strlen(f);
        size_t n = len < flen ? len : flen;
        if (n >= 3 && strncasecmp(name, f, n) == 0)
            return f;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static const char *fname(const sl__xnode *n)
{
    return sl__xfuncs[n->u.call.fn].name;
}

static int wrong_type(sl__xeval *E, const sl__xnode *n, const char *wanted,
                      const sl__xval *got)
{
    return sl__xeval_error(E, n, SL_ETYPE, "%s needs %s, not %s", fname(n),
                           wanted, sl__xtype_name(got->t));
}

/* Up to 40 bytes of s for a message, then "...". */
static void quote(char *buf, size_t size, const sl__xval *s)
{
    size_t n = s->u.s.n > 40 ? 40 : s->u.s.n;
    snprintf(buf, size, "\"%.*s%s\"", (int)n, s->u.s.p,
             s->u.s.n > 40 ? "..." : "");
}

double sl__xstrtod(const char *s, char **end);

/*
 * Is s[0..n) a decimal number: [+-]?digits[.digits][(e|E)[+-]digits],
 * surrounded by optional ASCII spaces? Sets *is_int when there is neither a
 * fraction nor an exponent, and the trimmed span in *b / *e.
 */
static bool decimal_syntax(const char *s, size_t n, bool *is_int,
                           size_t *b, size_t *e)
{
    size_t i = 0;
    while (i < n && isspace((unsigned char)s[i]))
        i++;
    while (n > i && isspace((unsigned char)s[n - 1]))
        n--;
    *b = i;
    *e = n;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    size_t digits = i;
    while (i < n && isdigit((unsigned char)s[i]))
        i++;
    if (i == digits)
        return false;
    *is_int = true;
    if (i < n && s[i] == '.') {
        i++;
        size_t frac = i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i == frac)
            return false;
        *is_int = false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t exp = i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i == exp)
            return false;
        *is_int = false;
    }
    return i == n;
}

/* A double to an int64 by truncation; false when out of range or NaN. */
static bool double_to_int(double d, int64_t *out)
{
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
        return false;
    *out = (int64_t)d;
    return true;
}

/* Parse a decimal string as a double; a copy makes it NUL-terminated. */
static int parse_double(sl__xeval *E, const char *s, size_t n, double *out)
{
    char buf[128];
    if (n >= sizeof(buf))
        return SL_ERANGE;
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = sl__xstrtod(buf, NULL);
    (void)E;
    return isfinite(*out) ? 0 : SL_ERANGE;
}

/* ------------------------------------------------------------------ */
/* The functions                                                       */
/* ------------------------------------------------------------------ */

static int fn_len(const sl__xnode *n, sl__xeval *E, const sl__xval *a,
                  sl__xval *out)
{
    out->t = SL__XV_INT;
    switch (a->t) {
    case SL__XV_NULL:
        out->u.i = 0;
        return 0;
    case SL__XV_STRING: {
        int64_t chars = 0;
        for (size_t i = 0; i < a->u.s.n; i++)
            if (((unsigned char)a->u.s.p[i] & 0xC0) != 0x80)
                chars++;
        out->u.i = chars;
        return 0;
    }
    case SL__XV_ARRAY:
        out->u.i = (int64_t)sl_array_len(a->u.v);
        return 0;
    case SL__XV_OBJECT:
        out->u.i = (int64_t)sl_object_len(a->u.v);
        return 0;
    default:
        return wrong_type(E, n, "a string, array or object", a);
    }
}

static int fn_case(const sl__xnode *n, sl__xeval *E, const sl__xval *a,
                   bool upper, sl__xval *out)
{
    if (a->t == SL__XV_NULL) {
        out->t = SL__XV_NULL;
        return 0;
    }
    if (a->t != SL__XV_STRING)
        return wrong_type(E, n, "a string", a);
    const char *s = a->u.s.p;
    size_t len = a->u.s.n, i = 0;
    /* Borrow the argument when nothing changes (the common case). */
    for (; i < len; i++) {
        char c = s[i];
        if (upper ? (c >= 'a' && c <= 'z') : (c >= 'A' && c <= 'Z'))
            break;
    }
    *out = *a;
    if (i == len)
        return 0;
    char *d = sl__xscratch_alloc(&E->scratch, len);
    if (d == NULL)
        return sl__xeval_error(E, n, SL_ENOMEM, "out of memory");
    memcpy(d, s, i);
    for (; i < len; i++) {
        char c = s[i];
        if (upper && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (!upper && c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        d[i] = c;
    }
    d[len] = '\0';
    out->u.s.p = d;
    return 0;
}

static int fn_contains(const sl__xnode *n, sl__xeval *E, const sl__xval *a,
                       const sl__xval *b, sl__xval *out)
{
    out->t = SL__XV_BOOL;
    out->u.b = false;
    switch (a->t) {
    case SL__XV_NULL:
        return 0;
    case SL__XV_STRING:
        if (b->t == SL__XV_NULL)
            return 0;
        if (b->t != SL__XV_STRING)
            return sl__xeval_error(E, n, SL_ETYPE, "contains(string, x) "
                                   "needs x to be a string, not %s",
                                   sl__xtype_name(b->t));
        out->u.b = b->u.s.n == 0 ||
                   memmem(a->u.s.p, a->u.s.n, b->u.s.p, b->u.s.n) != NULL;
        return 0;
    case SL__XV_ARRAY: {
        size_t len = sl_array_len(a->u.v);
        for (size_t i = 0; i < len; i++) {
            sl__xval item;
            sl__xval_from_value(sl_array_get(a->u.v, i), &item);
            if (sl__xval_equal(&item, b)) {
                out->u.b = true;
                break;
            }
        }
        return 0;
    }
    case SL__XV_OBJECT:
        if (b->t != SL__XV_STRING)
            return sl__xeval_error(E, n, SL_ETYPE, "contains(object, key) "
                                   "needs key to be a string, not %s",
                                   sl__xtype_name(b->t));
        out->u.b = sl_object_getn(a->u.v, b->u.s.p, b->u.s.n) != NULL;
        return 0;
    default:
        return wrong_type(E, n, "a string, array or object", a);
    }
}

static int fn_starts_with(const sl__xnode *n, sl__xeval *E, const sl__xval *a,
                          const sl__xval *b, sl__xval *out)
{
    out->t = SL__XV_BOOL;
    out->u.b = false;
    if (a->t == SL__XV_NULL || b->t == SL__XV_NULL)
        return 0;
    if (a->t != SL__XV_STRING || b->t != SL__XV_STRING)
        return sl__xeval_error(E, n, SL_ETYPE, "starts_with needs two "
                               "strings, not %s and %s",
                               sl__xtype_name(a->t), sl__xtype_name(b->t));
    out->u.b = a->u.s.n >= b->u.s.n &&
               memcmp(a->u.s.p, b->u.s.p, b->u.s.n) == 0;
    return 0;
}

static int fn_to_int(const sl__xnode *n, sl__xeval *E, const sl__xval *a,
                     sl__xval *out)
{
    char q[64];
    out->t = SL__XV_INT;
    switch (a->t) {
    case SL__XV_NULL:
        out->t = SL__XV_NULL;
        return 0;
    case SL__XV_BOOL:
        out->u.i = a->u.b ? 1 : 0;
        return 0;
    case SL__XV_INT:
        out->u.i = a->u.i;
        return 0;
    case SL__XV_DOUBLE:
        if (!double_to_int(a->u.d, &out->u.i))
            return sl__xeval_error(E, n, SL_ERANGE, "to_int: %g is out of "
                                   "the int range", a->u.d);
        return 0;
    case SL__XV_STRING: {
        bool is_int = false;
        size_t b, e;
        if (!decimal_syntax(a->u.s.p, a->u.s.n, &is_int, &b, &e)) {
            quote(q, sizeof(q), a);
            return sl__xeval_error(E, n, SL_ETYPE, "to_int: %s is not a "
                                   "number", q);
        }
        if (is_int) {
            const char *s = a->u.s.p;
            bool neg = s[b] == '-';
            size_t i = (s[b] == '-' || s[b] == '+') ? b + 1 : b;
            uint64_t v = 0, lim = neg ? (UINT64_C(1) << 63)
                                      : (uint64_t)INT64_MAX;
            for (; i < e; i++) {
                uint64_t d = (uint64_t)(s[i] - '0');
                if (v > (lim - d) / 10) {
                    quote(q, sizeof(q), a);
                    return sl__xeval_error(E, n, SL_ERANGE, "to_int: %s is "
                                           "out of the int range", q);
                }
                v = v * 10 + d;
            }
            out->u.i = neg ? (int64_t)(0 - v) : (int64_t)v;
            return 0;
        }
        double d;
        if (parse_double(E, a->u.s.p + b, e - b, &d) < 0 ||
            !double_to_int(d, &out->u.i)) {
            quote(q, sizeof(q), a);
            return sl__xeval_error(E, n, SL_ERANGE, "to_int: %s is out of "
                                   "the int range", q);
        }
        return 0;
    }
    default:
        return wrong_type(E, n, "a number, string or bool", a);
    }
}

static int fn_to_float(const sl__xnode *n, sl__xeval *E, const sl__xval *a,
                       sl__xval *out)
{
    char q[64];
    out->t = SL__XV_DOUBLE;
    switch (a->t) {
    case SL__XV_NULL:
        out->t = SL__XV_NULL;
        return 0;
    case SL__XV_BOOL:
        out->u.d = a->u.b ? 1.0 : 0.0;
        return 0;
    case SL__XV_INT:
        out->u.d = (double)a->u.i;
        return 0;
    case SL__XV_DOUBLE:
        out->u.d = a->u.d;
        return 0;
    case SL__XV_STRING: {
        bool is_int;
        size_t b, e;
        quote(q, sizeof(q), a);
        if (!decimal_syntax(a->u.s.p, a->u.s.n, &is_int, &b, &e))
            return sl__xeval_error(E, n, SL_ETYPE, "to_float: %s is not a "
                                   "number", q);
        if (parse_double(E, a->u.s.p + b, e - b, &out->u.d) < 0)
            return sl__xeval_error(E, n, SL_ERANGE, "to_float: %s is out of "
                                   "the double range", q);
        return 0;
    }
    default:
        return wrong_type(E, n, "a number, string or bool", a);
    }
}

static int64_t wall_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * INT64_C(1000000000) + ts.tv_nsec;
}

/* Dispatch a call; args holds n->u.call.nargs evaluated arguments. */
int sl__xcall(const sl__xnode *n, sl__xeval *E, const sl__xval *args,
              sl__xval *out)
{
    switch (n->u.call.fn) {
    case SL__F_LEN:
        return fn_len(n, E, &args[0], out);
    case SL__F_LOWER:
        return fn_case(n, E, &args[0], false, out);
    case SL__F_UPPER:
        return fn_case(n, E, &args[0], true, out);
    case SL__F_CONTAINS:
        return fn_contains(n, E, &args[0], &args[1], out);
    case SL__F_STARTS_WITH:
        return fn_starts_with(n, E, &args[0], &args[1], out);
    case SL__F_TO_INT:
        return fn_to_int(n, E, &args[0], out);
    case SL__F_TO_FLOAT:
        return fn_to_float(n, E, &args[0], out);
    case SL__F_TO_STRING:
        if (sl__xval_format(&args[0], &E->scratch, out) < 0)
            return sl__xeval_error(E, n, SL_ENOMEM, "out of memory");
        return 0;
    case SL__F_NOW:
        out->t = SL__XV_INT;
        out->u.i = E->env != NULL && E->env->now_ns != 0 ? E->env->now_ns
                                                         : wall_clock_ns();
        return 0;
    case SL__F_SEQ:
        out->t = SL__XV_INT;
        out->u.i = E->env != NULL ? E->env->seq : 0;
        return 0;
    case SL__F_COUNT_:
        break;
    }
    return sl__xeval_error(E, n, SL_EINTERNAL, "unknown function");
}
