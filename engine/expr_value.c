/*
 * Evaluation values (sl__xval): reading them from stored values, boxing
 * results, truthiness, equality, ordering and text conversion. Numbers are
 * formatted and parsed in the "C" locale whatever the process's locale is,
 * so 2.5 never turns into "2,5".
 */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/expr_internal.h"
#include "sluice/error.h"

const char *sl__xtype_name(sl__xtype t)
{
    switch (t) {
    case SL__XV_NULL: return "null";
    case SL__XV_BOOL: return "bool";
    case SL__XV_INT: return "int";
    case SL__XV_DOUBLE: return "double";
    case SL__XV_STRING: return "string";
    case SL__XV_ARRAY: return "array";
    case SL__XV_OBJECT: return "object";
    }
    return "value";
}

/* ------------------------------------------------------------------ */
/* The "C" locale                                                      */
/* ------------------------------------------------------------------ */

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;   /* immutable after c_locale_once; 0 if unavailable */

static void c_locale_init(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* strtod as in the "C" locale. Thread: any. */
double sl__xstrtod(const char *s, char **end)
{
    pthread_once(&c_locale_once, c_locale_init);
    if (c_locale != (locale_t)0)
        return strtod_l(s, end, c_locale);
    return strtod(s, end);
}

/* snprintf("%.*g") as in the "C" locale. Thread: any. */
static void format_g(char *buf, size_t size, int prec, double d)
{
    pthread_once(&c_locale_once, c_locale_init);
    locale_t old = (locale_t)0;
    if (c_locale != (locale_t)0)
        old = uselocale(c_locale);
    snprintf(buf, size, "%.*g", prec, d);
    if (old != (locale_t)0)
        uselocale(old);
}

/* ------------------------------------------------------------------ */
/* Boxing and unboxing                                                 */
/* ------------------------------------------------------------------ */

void sl__xval_from_value(const sl_value *v, sl__xval *out)
{
    switch (sl_value_type(v)) {
    case SL_TYPE_NULL:
        out->t = SL__XV_NULL;
        return;
    case SL_TYPE_BOOL:
        out->t = SL__XV_BOOL;
        out->u.b = sl_value_get_bool(v);
        return;
    case SL_TYPE_INT:
        out->t = SL__XV_INT;
        out->u.i = sl_value_get_int(v);
        return;
    case SL_TYPE_DOUBLE:
        out->t = SL__XV_DOUBLE;
        out->u.d = sl_value_get_double(v);
        return;
    case SL_TYPE_STRING:
        out->t = SL__XV_STRING;
        out->u.s.p = sl_value_get_string(v, &out->u.s.n);
        return;
    case SL_TYPE_ARRAY:
        out->t = SL__XV_ARRAY;
        out->u.v = v;
        return;
    case SL_TYPE_OBJECT:
        out->t = SL__XV_OBJECT;
        out->u.v = v;
        return;
    }
    out->t = SL__XV_NULL;
}

sl_value *sl__xval_to_value(const sl__xval *x)
{
    switch (x->t) {
    case SL__XV_NULL: return sl_value_null();
    case SL__XV_BOOL: return sl_value_bool(x->u.b);
    case SL__XV_INT: return sl_value_int(x->u.i);
    case SL__XV_DOUBLE: return sl_value_double(x->u.d);
    case SL__XV_STRING: return sl_value_string(x->u.s.p, x->u.s.n);
    case SL__XV_ARRAY:
    case SL__XV_OBJECT:
        /* Shared, not copied: values are copy-on-write (value.h). */
        return sl_value_ref((sl_value *)x->u.v);
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Truth, equality, order                                              */
/* ------------------------------------------------------------------ */

bool sl__xval_truthy(const sl__xval *x)
{
    switch (x->t) {
    case SL__XV_NULL: return false;
    case SL__XV_BOOL: return x->u.b;
    case SL__XV_INT: return x->u.i != 0;
    case SL__XV_DOUBLE: return x->u.d != 0.0 && !isnan(x->u.d);
    case SL__XV_STRING: return x->u.s.n != 0;
    case SL__XV_ARRAY:
    case SL__XV_OBJECT: return true;
    }
    return false;
}

/*
 * Exact comparison of an int64 with a (non-NaN) double: converting the int
 * to double would round above 2^53 and call unequal numbers equal.
 */
static int cmp_int_double(int64_t i, double d)
{
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    int64_t t = (int64_t)d;           /* exact: |d| < 2^63, truncated */
    if (i != t)
        return i < t ? -1 : 1;
    double frac = d - (double)t;      /* exact for doubles in this range */
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static bool is_number(const sl__xval *x)
{
    return x->t == SL__XV_INT || x->t == SL__XV_DOUBLE;
}

bool sl__xval_order(const sl__xval *a, const sl__xval *b, int *cmp)
{
    if (a->t == SL__XV_INT && b->t == SL__XV_INT) {
        *cmp = a->u.i < b->u.i ? -1 : a->u.i > b->u.i ? 1 : 0;
        return true;
    }
    if (is_number(a) && is_number(b)) {
        if (a->t == SL__XV_DOUBLE && b->t == SL__XV_DOUBLE) {
            if (isnan(a->u.d) || isnan(b->u.d))
                return false;
            *cmp = a->u.d < b->u.d ? -1 : a->u.d > b->u.d ? 1 : 0;
            return true;
        }
        if (a->t == SL__XV_INT) {
            if (isnan(b->u.d))
                return false;
            *cmp = cmp_int_double(a->u.i, b->u.d);
            return true;
        }
        if (isnan(a->u.d))
            return false;
        *cmp = -cmp_int_double(b->u.i, a->u.d);
        return true;
    }
    if (a->t == SL__XV_STRING && b->t == SL__XV_STRING) {
        size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
        int c = n > 0 ? memcmp(a->u.s.p, b->u.s.p, n) : 0;
        if (c == 0)
            c = a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n ? 1 : 0;
        *cmp = c < 0 ? -1 : c > 0 ? 1 : 0;
        return true;
    }
    return false;
}

bool sl__xval_equal(const sl__xval *a, const sl__xval *b)
{
    if (is_number(a) && is_number(b)) {
        int c;
        return sl__xval_order(a, b, &c) && c == 0;
    }
    if (a->t != b->t)
        return false;
    switch (a->t) {
    case SL__XV_NULL:
        return true;
    case SL__XV_BOOL:
        return a->u.b == b->u.b;
    case SL__XV_STRING:
        return a->u.s.n == b->u.s.n &&
               (a->u.s.n == 0 || memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0);
    case SL__XV_ARRAY:
    case SL__XV_OBJECT:
        return a->u.v == b->u.v || sl_value_equal(a->u.v, b->u.v);
    default:
        return false;
    }
}

/* ------------------------------------------------------------------ */
/* Text                                                                */
/* ------------------------------------------------------------------ */

/*
 * The shortest text that reads back as the same double, with ".0" added
 * to integral values so they still look like doubles ("2.0", "1e+20").
 */
static size_t format_double(double d, char *buf, size_t size)
{
    if (isnan(d))
        return (size_t)snprintf(buf, size, "nan");
    if (isinf(d))
        return (size_t)snprintf(buf, size, d < 0 ? "-inf" : "inf");
    for (int prec = 1; prec <= 17; prec++) {
        format_g(buf, size, prec, d);
        if (sl__xstrtod(buf, NULL) == d)
            break;
    }
    size_t n = strlen(buf);
    if (strpbrk(buf, ".e") == NULL && n + 2 < size) {
        memcpy(buf + n, ".0", 3);
        n += 2;
    }
    return n;
}

int sl__xval_format(const sl__xval *x, sl__xscratch *s, sl__xval *out)
{
    out->t = SL__XV_STRING;
    switch (x->t) {
    case SL__XV_NULL:
        out->u.s.p = "null";
        out->u.s.n = 4;
        return 0;
    case SL__XV_BOOL:
        out->u.s.p = x->u.b ? "true" : "false";
        out->u.s.n = x->u.b ? 4 : 5;
        return 0;
    case SL__XV_STRING:
        *out = *x;
        return 0;
    case SL__XV_INT: {
        /* Digits by hand: snprintf costs more than the rest of a typical
         * `"u" + to_string(n)` put together. */
        char tmp[24];
        size_t n = 0;
        uint64_t u = x->u.i < 0 ? 0 - (uint64_t)x->u.i : (uint64_t)x->u.i;
        do {
            tmp[n++] = (char)('0' + u % 10);
            u /= 10;
        } while (u != 0);
        if (x->u.i < 0)
            tmp[n++] = '-';
        char *p = sl__xscratch_alloc(s, n);
        if (p == NULL)
            return SL_ENOMEM;
        for (size_t i = 0; i < n; i++)
            p[i] = tmp[n - 1 - i];
        p[n] = '\0';
        out->u.s.p = p;
        out->u.s.n = n;
        return 0;
    }
    case SL__XV_DOUBLE: {
        char *p = sl__xscratch_alloc(s, 40);
        if (p == NULL)
            return SL_ENOMEM;
        out->u.s.n = format_double(x->u.d, p, 41);
        out->u.s.p = p;
        return 0;
    }
    case SL__XV_ARRAY:
    case SL__XV_OBJECT: {
        sl_buf b;
        sl_buf_init(&b);
        if (sl_json_dump(x->u.v, &b) < 0) {
            sl_buf_fini(&b);
            return SL_ENOMEM;
        }
        char *p = sl__xscratch_alloc(s, b.len);
        if (p == NULL) {
            sl_buf_fini(&b);
            return SL_ENOMEM;
        }
        if (b.len > 0)
            memcpy(p, b.data, b.len);
        p[b.len] = '\0';
        out->u.s.p = p;
        out->u.s.n = b.len;
        sl_buf_fini(&b);
        return 0;
    }
    }
    return SL_EINTERNAL;
}
