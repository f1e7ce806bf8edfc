/*
 * The evaluator: a walk over the compiled tree with unboxed values, and the
 * public sl_expr_eval / sl_expr_eval_bool.
 *
 * Nothing is allocated for scalar results; strings are borrowed from the
 * record or the expression where possible and otherwise built in scratch
 * memory (a stack buffer first) released when the evaluation returns.
 * Recursion depth is the tree's height, which the parser bounds.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/expr_internal.h"
#include "sluice/error.h"

int sl__xeval_error(sl__xeval *E, const sl__xnode *n, int code,
                    const char *fmt, ...)
{
    E->err->column = sl__xcolumn(E->expr->src, E->expr->src_len, n->pos);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(E->err->text, sizeof(E->err->text), fmt, ap);
    va_end(ap);
    return code;
}

/* ------------------------------------------------------------------ */
/* Fields                                                              */
/* ------------------------------------------------------------------ */

/* Array element i, counting from the end when negative; NULL if absent. */
static const sl_value *array_at(const sl_value *a, int64_t i)
{
    size_t len = sl_array_len(a);
    if (i < 0) {
        if ((uint64_t)(-(i + 1)) >= len)
            return NULL;
        return sl_array_get(a, len - (size_t)(-(i + 1)) - 1);
    }
    if ((uint64_t)i >= len)
        return NULL;
    return sl_array_get(a, (size_t)i);
}

/* Walk the path's segments from the fields object. A missing key, an
 * index out of range, or a step into a scalar all read as null. */
static void eval_field(const sl__xnode *n, const sl__xeval *E, sl__xval *out)
{
    const sl_value *v = E->fields;
    uint32_t k = 0;
    /* The fields are always an object: the first key needs no type check. */
    if (v != NULL && n->u.path.n > 0 && n->u.path.segs[0].key != NULL) {
        v = sl_object_getn(v, n->u.path.segs[0].key, n->u.path.segs[0].key_len);
        k = 1;
    }
    for (; v != NULL && k < n->u.path.n; k++) {
        const sl__xseg *s = &n->u.path.segs[k];
        sl_type t = sl_value_type(v);
        if (s->key != NULL)
            v = t == SL_TYPE_OBJECT ? sl_object_getn(v, s->key, s->key_len)
                                    : NULL;
        else
            v = t == SL_TYPE_ARRAY ? array_at(v, s->index) : NULL;
    }
    sl__xval_from_value(v, out);
}

/*
 * A child: literals and field paths (most operands) without a call through
 * the big switch.
 */
static inline int eval_kid(const sl__xnode *n, sl__xeval *E, sl__xval *out)
{
    if (n->op == SL__X_LIT) {
        *out = n->u.lit;
        return 0;
    }
    if (n->op == SL__X_FIELD) {
        eval_field(n, E, out);
        return 0;
    }
    return sl__xeval_node(n, E, out);
}

/* base[index] on a computed base or index: an int on an array, a string
 * on an object; anything else reads as null. */
static int eval_index(const sl__xnode *n, sl__xeval *E, sl__xval *out)
{
    sl__xval base, idx;
    int rc = eval_kid(n->u.kid[0], E, &base);
    if (rc == 0)
        rc = eval_kid(n->u.kid[1], E, &idx);
    if (rc < 0)
        return rc;
    const sl_value *v = NULL;
    if (base.t == SL__XV_ARRAY && idx.t == SL__XV_INT)
        v = array_at(base.u.v, idx.u.i);
    else if (base.t == SL__XV_OBJECT && idx.t == SL__XV_STRING)
        v = sl_object_getn(base.u.v, idx.u.s.p, idx.u.s.n);
    sl__xval_from_value(v, out);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Arithmetic                                                          */
/* ------------------------------------------------------------------ */

static const char *op_verb(sl__xop op)
{
    switch (op) {
    case SL__X_ADD: return "add";
    case SL__X_SUB: return "subtract";
    case SL__X_MUL: return "multiply";
    case SL__X_DIV: return "divide";
    case SL__X_MOD: return "take the remainder of";
    default: return "combine";
    }
}

static const char *op_sym(sl__xop op)
{
    switch (op) {
    case SL__X_ADD: return "+";
    case SL__X_SUB: return "-";
    case SL__X_MUL: return "*";
    case SL__X_DIV: return "/";
    case SL__X_MOD: return "%";
    default: return "?";
    }
}

/*
 * "cannot add string and int", with a note naming the operand when a null
 * came from a field (the usual cause: the field is missing).
 */
__attribute__((noinline, cold))
static int type_error(sl__xeval *E, const sl__xnode *n, const char *verb,
                      const sl__xval *a, const sl__xval *b)
{
    const sl__xnode *culprit = NULL;
    if (a->t == SL__XV_NULL && n->u.kid[0]->op == SL__X_FIELD)
        culprit = n->u.kid[0];
    else if (b != NULL && b->t == SL__XV_NULL &&
             n->u.kid[1]->op == SL__X_FIELD)
        culprit = n->u.kid[1];
    char note[80] = "";
    if (culprit != NULL) {
        int len = culprit->src_len > 40 ? 40 : (int)culprit->src_len;
        snprintf(note, sizeof(note), " (%.*s is missing or null)", len,
                 E->expr->src + culprit->src_pos);
    }
    if (b == NULL)
        return sl__xeval_error(E, n, SL_ETYPE, "cannot %s %s%s", verb,
                               sl__xtype_name(a->t), note);
    return sl__xeval_error(E, n, SL_ETYPE, "cannot %s %s and %s%s", verb,
                           sl__xtype_name(a->t), sl__xtype_name(b->t), note);
}

/* a + b for strings: borrowed when one side is empty, else in scratch. */
static int concat(const sl__xnode *n, sl__xeval *E, const sl__xval *a,
                  const sl__xval *b, sl__xval *out)
{
    size_t len = a->u.s.n + b->u.s.n;
    if (len > SL__EXPR_MAX_STRING)
        return sl__xeval_error(E, n, SL_ERANGE, "string too long (the limit "
                               "is %u bytes)", SL__EXPR_MAX_STRING);
    if (b->u.s.n == 0 || a->u.s.n == 0) {
        *out = a->u.s.n == 0 ? *b : *a;
        return 0;
    }
    char *p = sl__xscratch_alloc(&E->scratch, len);
    if (p == NULL)
        return sl__xeval_error(E, n, SL_ENOMEM, "out of memory");
    memcpy(p, a->u.s.p, a->u.s.n);
    memcpy(p + a->u.s.n, b->u.s.p, b->u.s.n);
    p[len] = '\0';
    out->t = SL__XV_STRING;
    out->u.s.p = p;
    out->u.s.n = len;
    return 0;
}

/* int op int: exact or SL_ERANGE (overflow, division by zero). */
static int int_arith(const sl__xnode *n, sl__xeval *E, int64_t a, int64_t b,
                     sl__xval *out)
{
    int64_t r = 0;
    bool overflow = false;
    switch (n->op) {
    case SL__X_ADD: overflow = __builtin_add_overflow(a, b, &r); break;
    case SL__X_SUB: overflow = __builtin_sub_overflow(a, b, &r); break;
    case SL__X_MUL: overflow = __builtin_mul_overflow(a, b, &r); break;
    case SL__X_DIV:
        if (b == 0)
            return sl__xeval_error(E, n, SL_ERANGE, "division by zero");
        if (a == INT64_MIN && b == -1)
            overflow = true;
        else
            r = a / b;
        break;
    case SL__X_MOD:
        if (b == 0)
            return sl__xeval_error(E, n, SL_ERANGE, "division by zero (in %%)");
        r = b == -1 ? 0 : a % b;    /* INT64_MIN % -1 traps in C */
        break;
    default:
        return sl__xeval_error(E, n, SL_EINTERNAL, "bad operator");
    }
    if (overflow)
        return sl__xeval_error(E, n, SL_ERANGE, "integer overflow: %lld %s "
                               "%lld", (long long)a, op_sym(n->op),
                               (long long)b);
    out->t = SL__XV_INT;
    out->u.i = r;
    return 0;
}

/* Arithmetic once either side is a double. */
static int double_arith(const sl__xnode *n, sl__xeval *E, double a, double b,
                        sl__xval *out)
{
    double r;
    switch (n->op) {
    case SL__X_ADD: r = a + b; break;
    case SL__X_SUB: r = a - b; break;
    case SL__X_MUL: r = a * b; break;
    case SL__X_DIV:
        if (b == 0.0)
            return sl__xeval_error(E, n, SL_ERANGE, "division by zero");
        r = a / b;
        break;
    case SL__X_MOD:
        if (b == 0.0)
            return sl__xeval_error(E, n, SL_ERANGE, "division by zero (in %%)");
        r = fmod(a, b);
        break;
    default:
        return sl__xeval_error(E, n, SL_EINTERNAL, "bad operator");
    }
    /* Results stay representable in JSON: no inf or nan from finite input. */
    if (!isfinite(r) && isfinite(a) && isfinite(b))
        return sl__xeval_error(E, n, SL_ERANGE, "floating-point overflow: "
                               "%g %s %g", a, op_sym(n->op), b);
    out->t = SL__XV_DOUBLE;
    out->u.d = r;
    return 0;
}

/* + - * / %: both sides evaluated, then by type (see docs/expressions.md). */
static int eval_arith(const sl__xnode *n, sl__xeval *E, sl__xval *out)
{
    sl__xval a, b;
    int rc = eval_kid(n->u.kid[0], E, &a);
    if (rc == 0)
        rc = eval_kid(n->u.kid[1], E, &b);
    if (rc < 0)
        return rc;
    if (a.t == SL__XV_INT && b.t == SL__XV_INT)
        return int_arith(n, E, a.u.i, b.u.i, out);
    if ((a.t == SL__XV_INT || a.t == SL__XV_DOUBLE) &&
        (b.t == SL__XV_INT || b.t == SL__XV_DOUBLE))
        return double_arith(n, E,
                            a.t == SL__XV_INT ? (double)a.u.i : a.u.d,
                            b.t == SL__XV_INT ? (double)b.u.i : b.u.d, out);
    if (n->op == SL__X_ADD && a.t == SL__XV_STRING && b.t == SL__XV_STRING)
        return concat(n, E, &a, &b, out);
    return type_error(E, n, op_verb(n->op), &a, &b);
}

/* ------------------------------------------------------------------ */
/* Comparison and matching                                             */
/* ------------------------------------------------------------------ */

/*
 * < <= > >=: numbers numerically, strings by bytes. A null on either side
 * (a missing field) makes the comparison false rather than an error, so
 * `status >= 500` simply rejects records without a status. NaN compares
 * false. Other mixes are type errors.
 */
static int eval_order(const sl__xnode *n, sl__xeval *E, sl__xval *out)
{
    sl__xval a, b;
    int rc = eval_kid(n->u.kid[0], E, &a);
    if (rc == 0)
        rc = eval_kid(n->u.kid[1], E, &b);
    if (rc < 0)
        return rc;
    out->t = SL__XV_BOOL;
    out->u.b = false;
    int c;
    if (a.t == SL__XV_INT && b.t == SL__XV_INT)
        c = a.u.i < b.u.i ? -1 : a.u.i > b.u.i ? 1 : 0;
    else if (!sl__xval_order(&a, &b, &c)) {
        if (a.t == SL__XV_NULL || b.t == SL__XV_NULL ||
            (a.t == SL__XV_DOUBLE && isnan(a.u.d)) ||
            (b.t == SL__XV_DOUBLE && isnan(b.u.d)))
            return 0;
        return sl__xeval_error(E, n, SL_ETYPE, "cannot compare %s and %s "
                               "(convert one with to_int, to_float or "
                               "to_string)", sl__xtype_name(a.t),
                               sl__xtype_name(b.t));
    }
    switch (n->op) {
    case SL__X_LT: out->u.b = c < 0; break;
    case SL__X_LE: out->u.b = c <= 0; break;
    case SL__X_GT: out->u.b = c > 0; break;
    default: out->u.b = c >= 0; break;
    }
    return 0;
}

/* The left side of =~ must be a string, or null (which never matches). */
static int match_subject(const sl__xnode *n, sl__xeval *E, const sl__xval *s,
                         bool negate)
{
    if (s->t == SL__XV_STRING || s->t == SL__XV_NULL)
        return 0;
    return sl__xeval_error(E, n, SL_ETYPE, "%s needs a string on the left, "
                           "not %s (convert it with to_string)",
                           negate ? "!~" : "=~", sl__xtype_name(s->t));
}

/* =~ / !~ against a pattern compiled with the expression. */
static int eval_match(const sl__xnode *n, sl__xeval *E, sl__xval *out)
{
    sl__xval s;
    int rc = eval_kid(n->u.match.lhs, E, &s);
    if (rc == 0)
        rc = match_subject(n, E, &s, n->u.match.negate);
    if (rc < 0)
        return rc;
    bool m = s.t == SL__XV_STRING &&
             sl__xregex_match(n->u.match.re, s.u.s.p, s.u.s.n);
    out->t = SL__XV_BOOL;
    out->u.b = m != n->u.match.negate;
    return 0;
}

/* A pattern computed at run time: compiled for this evaluation only. */
__attribute__((noinline))
static int eval_match_dyn(const sl__xnode *n, sl__xeval *E, sl__xval *out)
{
    sl__xval s, pat;
    bool negate = n->u.dmatch.negate;
    int rc = eval_kid(n->u.dmatch.lhs, E, &s);
    if (rc == 0)
        rc = eval_kid(n->u.dmatch.rhs, E, &pat);
    if (rc == 0)
        rc = match_subject(n, E, &s, negate);
    if (rc < 0)
        return rc;
    if (pat.t != SL__XV_STRING)
        return sl__xeval_error(E, n, SL_ETYPE, "%s needs a string (a regular "
                               "expression) on the right, not %s",
                               negate ? "!~" : "=~", sl__xtype_name(pat.t));
    if (memchr(pat.u.s.p, '\0', pat.u.s.n) != NULL)
        return sl__xeval_error(E, n, SL_EINVAL, "a regular expression cannot "
                               "contain a NUL character");
    const char *refusal;
    if (!sl__xregex_check(pat.u.s.p, pat.u.s.n, &refusal))
        return sl__xeval_error(E, n, SL_EINVAL, "invalid regular expression: "
                               "%s", refusal);
    sl__xregex re;
    memset(&re, 0, sizeof(re));
    re.kind = SL__RE_POSIX;
    int r = regcomp(&re.re, pat.u.s.p, REG_EXTENDED | REG_NOSUB);
    if (r != 0) {
        char why[100];
        regerror(r, &re.re, why, sizeof(why));
        if (r == REG_ESPACE)
            return sl__xeval_error(E, n, SL_ENOMEM, "out of memory");
        return sl__xeval_error(E, n, SL_EINVAL, "invalid regular expression: "
                               "%s", why);
    }
    bool m = s.t == SL__XV_STRING && sl__xregex_match(&re, s.u.s.p, s.u.s.n);
    regfree(&re.re);
    out->t = SL__XV_BOOL;
    out->u.b = m != negate;
    return 0;
}

/* Arguments left to right (all of them: functions do not short-circuit). */
static int eval_call(const sl__xnode *n, sl__xeval *E, sl__xval *out)
{
    sl__xval args[SL__XFUNC_MAX_ARGS];
    for (uint32_t i = 0; i < n->u.call.nargs; i++) {
        int rc = eval_kid(n->u.call.args[i], E, &args[i]);
        if (rc < 0)
            return rc;
    }
    return sl__xcall(n, E, args, out);
}

/* ------------------------------------------------------------------ */
/* The walk                                                            */
/* ------------------------------------------------------------------ */

int sl__xeval_node(const sl__xnode *n, sl__xeval *E, sl__xval *out)
{
    sl__xval a;
    int rc;
    switch (n->op) {
    case SL__X_LIT:
        *out = n->u.lit;
        return 0;
    case SL__X_FIELD:
        eval_field(n, E, out);
        return 0;
    case SL__X_INDEX:
        return eval_index(n, E, out);
    case SL__X_NEG:
        rc = eval_kid(n->u.kid[0], E, &a);
        if (rc < 0)
            return rc;
        if (a.t == SL__XV_INT) {
            if (a.u.i == INT64_MIN)
                return sl__xeval_error(E, n, SL_ERANGE, "integer overflow: "
                                       "-(%lld)", (long long)a.u.i);
            out->t = SL__XV_INT;
            out->u.i = -a.u.i;
            return 0;
        }
        if (a.t == SL__XV_DOUBLE) {
            out->t = SL__XV_DOUBLE;
            out->u.d = -a.u.d;
            return 0;
        }
        return type_error(E, n, "negate", &a, NULL);
    case SL__X_NOT:
        rc = eval_kid(n->u.kid[0], E, &a);
        if (rc < 0)
            return rc;
        out->t = SL__XV_BOOL;
        out->u.b = !sl__xval_truthy(&a);
        return 0;
    case SL__X_ADD:
    case SL__X_SUB:
    case SL__X_MUL:
    case SL__X_DIV:
    case SL__X_MOD:
        return eval_arith(n, E, out);
    case SL__X_EQ:
    case SL__X_NE: {
        sl__xval b;
        rc = eval_kid(n->u.kid[0], E, &a);
        if (rc == 0)
            rc = eval_kid(n->u.kid[1], E, &b);
        if (rc < 0)
            return rc;
        out->t = SL__XV_BOOL;
        out->u.b = sl__xval_equal(&a, &b) == (n->op == SL__X_EQ);
        return 0;
    }
    case SL__X_LT:
    case SL__X_LE:
    case SL__X_GT:
    case SL__X_GE:
        return eval_order(n, E, out);
    case SL__X_AND:
    case SL__X_OR:
        rc = eval_kid(n->u.kid[0], E, &a);
        if (rc < 0)
            return rc;
        out->t = SL__XV_BOOL;
        if ((a.t == SL__XV_BOOL ? a.u.b : sl__xval_truthy(&a)) ==
            (n->op == SL__X_OR)) {
            out->u.b = n->op == SL__X_OR;    /* decided by the left side */
            return 0;
        }
        rc = eval_kid(n->u.kid[1], E, &a);
        if (rc < 0)
            return rc;
        out->t = SL__XV_BOOL;
        out->u.b = a.t == SL__XV_BOOL ? a.u.b : sl__xval_truthy(&a);
        return 0;
    case SL__X_COND:
        rc = eval_kid(n->u.kid[0], E, &a);
        if (rc < 0)
            return rc;
        return eval_kid(n->u.kid[sl__xval_truthy(&a) ? 1 : 2], E, out);
    case SL__X_MATCH:
        return eval_match(n, E, out);
    case SL__X_MATCH_DYN:
        return eval_match_dyn(n, E, out);
    case SL__X_CALL:
        return eval_call(n, E, out);
    }
    return sl__xeval_error(E, n, SL_EINTERNAL, "unknown node");
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */
/* ------------------------------------------------------------------ */

#define SL__XSCRATCH_INLINE 256

/* Evaluate, then box the result (the only allocation for a scalar). */
int sl_expr_eval(const sl_expr *e, const sl_record *rec,
                 const sl_expr_env *env, sl_value **out, sl_expr_error *err)
{
    sl_expr_error local;
    if (err == NULL)
        err = &local;
    if (e == NULL || out == NULL) {
        err->column = 0;
        snprintf(err->text, sizeof(err->text), "no expression given");
        return SL_EINVAL;
    }
    char buf[SL__XSCRATCH_INLINE];
    sl__xeval E = {
        .expr = e,
        .fields = rec != NULL ? sl_record_fields(rec) : NULL,
        .env = env,
        .err = err,
        .scratch = {.buf = buf, .cap = sizeof(buf)},
    };
    sl__xval v;
    int rc = eval_kid(e->root, &E, &v);
    if (rc == 0) {
        sl_value *boxed = sl__xval_to_value(&v);
        if (boxed == NULL) {
            err->column = 0;
            snprintf(err->text, sizeof(err->text), "out of memory");
            rc = SL_ENOMEM;
        } else {
            *out = boxed;
        }
    }
    if (E.scratch.heap.head != NULL)
        sl__xscratch_fini(&E.scratch);
    return rc;
}

/* Evaluate and take the truth of the result; nothing is boxed. */
int sl_expr_eval_bool(const sl_expr *e, const sl_record *rec,
                      const sl_expr_env *env, bool *result, sl_expr_error *err)
{
    sl_expr_error local;
    if (err == NULL)
        err = &local;
    if (e == NULL || result == NULL) {
        err->column = 0;
        snprintf(err->text, sizeof(err->text), "no expression given");
        return SL_EINVAL;
    }
    char buf[SL__XSCRATCH_INLINE];
    sl__xeval E = {
        .expr = e,
        .fields = rec != NULL ? sl_record_fields(rec) : NULL,
        .env = env,
        .err = err,
        .scratch = {.buf = buf, .cap = sizeof(buf)},
    };
    sl__xval v;
    int rc = eval_kid(e->root, &E, &v);
    if (rc == 0)
        *result = v.t == SL__XV_BOOL ? v.u.b : sl__xval_truthy(&v);
    if (E.scratch.heap.head != NULL)
        sl__xscratch_fini(&E.scratch);
    return rc;
}
