/*
 * The expression parser and the public compile/destroy calls.
 *
 * Grammar, lowest precedence first (recursive descent):
 *
 *   expr     := or ( '?' expr ':' expr )?            right-associative
 *   or       := and ( '||' and )*
 *   and      := cmp ( '&&' cmp )*
 *   cmp      := add ( cmpop add )?                   cmpop: == != < <= > >= =~ !~
 *   add      := mul ( ('+' | '-') mul )*
 *   mul      := unary ( ('*' | '/' | '%') unary )*
 *   unary    := ('!' | '-') unary | postfix
 *   postfix  := primary ( '.' name | '[' expr ']' )*
 *   primary  := number | string | true | false | null | '$'
 *             | name | name '(' args? ')' | '(' expr ')'
 *
 * Comparisons do not chain (a < b < c is an error that suggests &&).
 * A field path whose segments are names or literal keys/indices becomes one
 * SL__X_FIELD node with its segments resolved; a computed index becomes an
 * SL__X_INDEX node. A literal right side of =~ is compiled here, once.
 * Nesting is limited to SL__EXPR_MAX_DEPTH both in the parser's recursion
 * and in the height of the tree (which bounds the evaluator's recursion).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/expr_internal.h"
#include "sluice/error.h"

typedef struct sl__xparser {
    sl_expr *e;
    sl__xlexer lx;
    sl__xtok tok;              /* current token */
    size_t prev_end;           /* end of the token before tok */
    sl_expr_error *err;
    int depth;                 /* recursion depth */
    sl__xnode *min_literal;    /* 9223372036854775808 awaiting a '-' */
} sl__xparser;

static int parse_expr(sl__xparser *p, sl__xnode **out);

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Move to the next token, remembering where the current one ended. */
static int advance(sl__xparser *p)
{
    p->prev_end = p->tok.end;
    return sl__xlex_next(&p->lx, &p->tok);
}

static int fail(sl__xparser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Describe a syntax error at byte offset pos; returns SL_EPARSE. */
static int fail(sl__xparser *p, size_t pos, const char *fmt, ...)
{
    p->err->column = sl__xcolumn(p->e->src, p->e->src_len, pos);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->text, sizeof(p->err->text), fmt, ap);
    va_end(ap);
    return SL_EPARSE;
}

/* The nesting limit was passed at pos. */
static int too_deep(sl__xparser *p, size_t pos)
{
    return fail(p, pos, "expression is nested too deeply (the limit is %d "
                "levels)", SL__EXPR_MAX_DEPTH);
}

/*
 * How the current token reads in "unexpected ..." messages: names are
 * quoted, and the words people try for operators get a hint.
 */
static void describe_tok(const sl__xparser *p, char *buf, size_t size)
{
    const sl__xtok *t = &p->tok;
    if (t->kind != SL__T_IDENT) {
        snprintf(buf, size, "%s", sl__xtok_describe(t->kind));
        return;
    }
    int n = t->len > 40 ? 40 : (int)t->len;
    const char *hint = "";
    if (t->len == 3 && memcmp(t->str, "and", 3) == 0)
        hint = " (use && for 'and')";
    else if (t->len == 2 && memcmp(t->str, "or", 2) == 0)
        hint = " (use || for 'or')";
    else if (t->len == 3 && memcmp(t->str, "not", 3) == 0)
        hint = " (use ! for 'not')";
    snprintf(buf, size, "name '%.*s'%s", n, t->str, hint);
}

/* "unexpected <token><hint>"; hint is "" or starts with a space. */
static int unexpected(sl__xparser *p, const char *hint)
{
    if (p->tok.kind == SL__T_EOF)
        return fail(p, p->tok.pos, "unexpected end of expression%s", hint);
    char what[96];
    describe_tok(p, what, sizeof(what));
    return fail(p, p->tok.pos, "unexpected %s%s", what, hint);
}

/* A zeroed node spanning from src_pos to the end of the last token. */
static sl__xnode *new_node(sl__xparser *p, sl__xop op, size_t pos,
                           size_t src_pos)
{
    sl__xnode *n = sl__xarena_alloc(&p->e->arena, sizeof(*n));
    if (n == NULL)
        return NULL;
    memset(n, 0, sizeof(*n));
    n->op = op;
    n->depth = 1;
    n->pos = (uint32_t)pos;
    n->src_pos = (uint32_t)src_pos;
    size_t end = p->prev_end > src_pos ? p->prev_end : src_pos;
    n->src_len = (uint32_t)(end - src_pos);
    return n;
}

/* Set n's height from its children; SL_EPARSE when over the limit. */
static int set_depth(sl__xparser *p, sl__xnode *n, const sl__xnode *a,
                     const sl__xnode *b, const sl__xnode *c)
{
    uint32_t d = 0;
    if (a != NULL && a->depth > d)
        d = a->depth;
    if (b != NULL && b->depth > d)
        d = b->depth;
    if (c != NULL && c->depth > d)
        d = c->depth;
    n->depth = d + 1;
    if (n->depth > SL__EXPR_MAX_DEPTH)
        return too_deep(p, n->pos);
    return 0;
}

/* A binary operator node over l and r, its column that of the operator. */
static int binary(sl__xparser *p, sl__xop op, size_t pos, sl__xnode *l,
                  sl__xnode *r, sl__xnode **out)
{
    sl__xnode *n = new_node(p, op, pos, l->src_pos);
    if (n == NULL)
        return SL_ENOMEM;
    n->u.kid[0] = l;
    n->u.kid[1] = r;
    int rc = set_depth(p, n, l, r, NULL);
    if (rc < 0)
        return rc;
    *out = n;
    return 0;
}

/* s[0..n) NUL-terminated in the expression's arena. */
static char *arena_strndup(sl__xparser *p, const char *s, size_t n)
{
    char *d = sl__xarena_alloc(&p->e->arena, n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* ------------------------------------------------------------------ */
/* Primary expressions                                                 */
/* ------------------------------------------------------------------ */

/*
 * name '(' args ')' with the current token at name. The name is resolved
 * first, so an unknown function is reported at its own column before its
 * arguments are looked at; the arity is checked once they are parsed.
 */
static int parse_call(sl__xparser *p, sl__xnode **out)
{
    sl__xtok name = p->tok;
    int fn = sl__xfunc_find(name.str, name.len);
    int nlen = name.len > 40 ? 40 : (int)name.len;
    if (fn < 0) {
        char nm[48];
        snprintf(nm, sizeof(nm), "%.*s", nlen, name.str);
        const char *near = sl__xfunc_suggest(name.str, name.len);
        if (near != NULL)
            return fail(p, name.pos,
                        "unknown function '%s' (did you mean '%s'?)", nm, near);
        return fail(p, name.pos, "unknown function '%s' (functions: len, "
                    "lower, upper, contains, starts_with, to_int, to_float, "
                    "to_string, now, seq)", nm);
    }
    const sl__xfunc *f = &sl__xfuncs[fn];
    int rc = advance(p);              /* the name */
    if (rc == 0)
        rc = advance(p);              /* '(' */
    if (rc < 0)
        return rc;

    sl__xnode *args[SL__XFUNC_MAX_ARGS];   /* extra ones are only counted */
    size_t nargs = 0;
    uint32_t maxd = 0;
    if (p->tok.kind != SL__T_RPAREN) {
        for (;;) {
            sl__xnode *a = NULL;
            rc = parse_expr(p, &a);
            if (rc < 0)
                return rc;
            if (nargs < sizeof(args) / sizeof(args[0]))
                args[nargs] = a;
            nargs++;
            if (a->depth > maxd)
                maxd = a->depth;
            if (p->tok.kind == SL__T_COMMA) {
                rc = advance(p);
                if (rc < 0)
                    return rc;
                continue;
            }
            if (p->tok.kind == SL__T_RPAREN)
                break;
            char what[96];
            describe_tok(p, what, sizeof(what));
            return fail(p, p->tok.pos, "expected ')' after arguments to %s, "
                        "found %s", f->name, what);
        }
    }
    rc = advance(p);                  /* ')' */
    if (rc < 0)
        return rc;
    if ((int)nargs < f->min_args || (int)nargs > f->max_args) {
        char msg[64];
        if (f->max_args == 0)
            snprintf(msg, sizeof(msg), "takes no arguments, got %zu", nargs);
        else if (f->min_args == f->max_args)
            snprintf(msg, sizeof(msg), "takes %d argument%s, got %zu",
                     f->min_args, f->min_args == 1 ? "" : "s", nargs);
        else
            snprintf(msg, sizeof(msg), "takes %d to %d arguments, got %zu",
                     f->min_args, f->max_args, nargs);
        return fail(p, name.pos, "%s %s", f->name, msg);
    }
    sl__xnode *n = new_node(p, SL__X_CALL, name.pos, name.pos);
    if (n == NULL)
        return SL_ENOMEM;
    sl__xnode **argv = NULL;
    if (nargs > 0) {
        argv = sl__xarena_alloc(&p->e->arena, nargs * sizeof(*argv));
        if (argv == NULL)
            return SL_ENOMEM;
        memcpy(argv, args, nargs * sizeof(*argv));
    }
    n->u.call.fn = (sl__xfn)fn;
    n->u.call.nargs = (uint32_t)nargs;
    n->u.call.args = (const sl__xnode *const *)argv;
    n->depth = maxd + 1;
    if (n->depth > SL__EXPR_MAX_DEPTH)
        return too_deep(p, name.pos);
    *out = n;
    return 0;
}

/*
 * Literals, names (field paths or calls), '$' and parenthesised
 * expressions. An integer literal of 2^63 is let through as INT64_MIN and
 * remembered, to be accepted only if a unary minus takes it.
 */
static int parse_primary(sl__xparser *p, sl__xnode **out)
{
    sl__xtok t = p->tok;
    sl__xnode *n = NULL;
    int rc;
    switch (t.kind) {
    case SL__T_INT:
    case SL__T_DOUBLE:
    case SL__T_STRING:
    case SL__T_TRUE:
    case SL__T_FALSE:
    case SL__T_NULL:
        rc = advance(p);
        if (rc < 0)
            return rc;
        n = new_node(p, SL__X_LIT, t.pos, t.pos);
        if (n == NULL)
            return SL_ENOMEM;
        if (t.kind == SL__T_INT) {
            n->u.lit.t = SL__XV_INT;
            if (t.u64 > (uint64_t)INT64_MAX) {
                /* Only valid negated: -9223372036854775808. */
                if (p->min_literal != NULL)
                    return fail(p, p->min_literal->pos, "integer literal is "
                                "too large (the limit is "
                                "9223372036854775807)");
                n->u.lit.u.i = INT64_MIN;
                p->min_literal = n;
            } else {
                n->u.lit.u.i = (int64_t)t.u64;
            }
        } else if (t.kind == SL__T_DOUBLE) {
            n->u.lit.t = SL__XV_DOUBLE;
            n->u.lit.u.d = t.d;
        } else if (t.kind == SL__T_STRING) {
            n->u.lit.t = SL__XV_STRING;
            n->u.lit.u.s.p = t.str;
            n->u.lit.u.s.n = t.len;
        } else if (t.kind == SL__T_NULL) {
            n->u.lit.t = SL__XV_NULL;
        } else {
            n->u.lit.t = SL__XV_BOOL;
            n->u.lit.u.b = t.kind == SL__T_TRUE;
        }
        *out = n;
        return 0;
    case SL__T_LPAREN: {
        rc = advance(p);
        if (rc < 0)
            return rc;
        rc = parse_expr(p, &n);
        if (rc < 0)
            return rc;
        if (p->tok.kind != SL__T_RPAREN) {
            char what[96];
            describe_tok(p, what, sizeof(what));
            return fail(p, p->tok.pos, "expected ')' to close the '(' at "
                        "column %d, found %s",
                        sl__xcolumn(p->e->src, p->e->src_len, t.pos), what);
        }
        rc = advance(p);
        if (rc < 0)
            return rc;
        *out = n;
        return 0;
    }
    case SL__T_IDENT: {
        /* A name followed by '(' is a call, otherwise a field path. */
        size_t i = t.end;
        while (i < p->e->src_len && strchr(" \t\n\r\f\v", p->e->src[i]))
            i++;
        if (i < p->e->src_len && p->e->src[i] == '(')
            return parse_call(p, out);
        sl__xseg *seg = sl__xarena_alloc(&p->e->arena, sizeof(*seg));
        if (seg == NULL)
            return SL_ENOMEM;
        seg->key = arena_strndup(p, t.str, t.len);
        seg->key_len = t.len;
        seg->index = 0;
        if (seg->key == NULL)
            return SL_ENOMEM;
        rc = advance(p);
        if (rc < 0)
            return rc;
        n = new_node(p, SL__X_FIELD, t.pos, t.pos);
        if (n == NULL)
            return SL_ENOMEM;
        n->u.path.segs = seg;
        n->u.path.n = 1;
        *out = n;
        return 0;
    }
    case SL__T_DOLLAR:
        rc = advance(p);
        if (rc < 0)
            return rc;
        n = new_node(p, SL__X_FIELD, t.pos, t.pos);
        if (n == NULL)
            return SL_ENOMEM;
        *out = n;
        return 0;
    default:
        return unexpected(p, " (expected a value)");
    }
}

/* ------------------------------------------------------------------ */
/* Postfix: field paths and indexing                                   */
/* ------------------------------------------------------------------ */

/*
 * The static segments of a field path being built: a few on the stack,
 * more on the heap. Each parse_postfix call has its own, so an index
 * expression with paths of its own (a[b.c]) cannot disturb it.
 */
typedef struct sl__xpath {
    sl__xseg *segs;
    size_t n;
    size_t cap;
    bool heap;
    sl__xseg inline_[8];
} sl__xpath;

static int push_seg(sl__xpath *b, const char *key, size_t key_len,
                    int64_t index)
{
    if (b->n == b->cap) {
        size_t cap = b->cap * 2;
        sl__xseg *s = b->heap ? realloc(b->segs, cap * sizeof(*s))
                              : malloc(cap * sizeof(*s));
        if (s == NULL)
            return SL_ENOMEM;
        if (!b->heap)
            memcpy(s, b->segs, b->n * sizeof(*s));
        b->segs = s;
        b->cap = cap;
        b->heap = true;
    }
    b->segs[b->n].key = key;
    b->segs[b->n].key_len = key_len;
    b->segs[b->n].index = index;
    b->n++;
    return 0;
}

/* Give the FIELD node n an arena copy of the segments built. */
static int finish_path(sl__xparser *p, sl__xnode *n, const sl__xpath *b)
{
    n->u.path.n = (uint32_t)b->n;
    n->u.path.segs = NULL;
    if (b->n > 0) {
        sl__xseg *s = sl__xarena_alloc(&p->e->arena, b->n * sizeof(*s));
        if (s == NULL)
            return SL_ENOMEM;
        memcpy(s, b->segs, b->n * sizeof(*s));
        n->u.path.segs = s;
    }
    n->src_len = (uint32_t)(p->prev_end - n->src_pos);
    return 0;
}

/*
 * A primary followed by '.name' and '[index]'. While the base is a field
 * path and each index is a literal string or integer, segments are added
 * to the path; from the first computed index on, INDEX nodes are stacked.
 */
static int parse_postfix_(sl__xparser *p, sl__xpath *b, sl__xnode **out)
{
    sl__xnode *n = NULL;
    int rc = parse_primary(p, &n);
    if (rc < 0)
        return rc;
    bool building = n->op == SL__X_FIELD;
    for (uint32_t k = 0; building && k < n->u.path.n; k++) {
        rc = push_seg(b, n->u.path.segs[k].key, n->u.path.segs[k].key_len,
                      n->u.path.segs[k].index);
        if (rc < 0)
            return rc;
    }
    for (;;) {
        sl__xnode *idx = NULL;
        size_t at = p->tok.pos;
        if (p->tok.kind == SL__T_DOT) {
            rc = advance(p);
            if (rc < 0)
                return rc;
            sl__xtok t = p->tok;
            if (t.kind != SL__T_IDENT && t.kind != SL__T_TRUE &&
                t.kind != SL__T_FALSE && t.kind != SL__T_NULL)
                return unexpected(p, " after '.' (expected a field name)");
            char *key = arena_strndup(p, p->lx.src + t.pos, t.end - t.pos);
            if (key == NULL)
                return SL_ENOMEM;
            rc = advance(p);
            if (rc < 0)
                return rc;
            if (building) {
                rc = push_seg(b, key, t.end - t.pos, 0);
                if (rc < 0)
                    return rc;
                continue;
            }
            idx = new_node(p, SL__X_LIT, t.pos, t.pos);
            if (idx == NULL)
                return SL_ENOMEM;
            idx->u.lit.t = SL__XV_STRING;
            idx->u.lit.u.s.p = key;
            idx->u.lit.u.s.n = t.end - t.pos;
        } else if (p->tok.kind == SL__T_LBRACK) {
            rc = advance(p);
            if (rc < 0)
                return rc;
            rc = parse_expr(p, &idx);
            if (rc < 0)
                return rc;
            if (p->tok.kind != SL__T_RBRACK)
                return unexpected(p, " (expected ']' after the index)");
            rc = advance(p);
            if (rc < 0)
                return rc;
            if (building && idx->op == SL__X_LIT &&
                (idx->u.lit.t == SL__XV_STRING || idx->u.lit.t == SL__XV_INT)) {
                if (idx->u.lit.t == SL__XV_STRING) {
                    if (memchr(idx->u.lit.u.s.p, '\0', idx->u.lit.u.s.n))
                        return fail(p, idx->pos, "a field name cannot "
                                    "contain a NUL character");
                    rc = push_seg(b, idx->u.lit.u.s.p, idx->u.lit.u.s.n, 0);
                } else {
                    rc = push_seg(b, NULL, 0, idx->u.lit.u.i);
                }
                if (rc < 0)
                    return rc;
                continue;
            }
        } else {
            break;
        }
        if (building) {
            rc = finish_path(p, n, b);
            if (rc < 0)
                return rc;
            building = false;
        }
        sl__xnode *ix = new_node(p, SL__X_INDEX, at, n->src_pos);
        if (ix == NULL)
            return SL_ENOMEM;
        ix->u.kid[0] = n;
        ix->u.kid[1] = idx;
        rc = set_depth(p, ix, n, idx, NULL);
        if (rc < 0)
            return rc;
        n = ix;
    }
    if (building) {
        rc = finish_path(p, n, b);
        if (rc < 0)
            return rc;
    }
    *out = n;
    return 0;
}

/* parse_postfix_ with a path buffer of its own, released on every path. */
static int parse_postfix(sl__xparser *p, sl__xnode **out)
{
    sl__xpath b;
    b.segs = b.inline_;
    b.n = 0;
    b.cap = sizeof(b.inline_) / sizeof(b.inline_[0]);
    b.heap = false;
    int rc = parse_postfix_(p, &b, out);
    if (b.heap)
        free(b.segs);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Operators                                                           */
/* ------------------------------------------------------------------ */

/*
 * '!' and '-' prefixes (recursive, so counted against the depth limit).
 * A minus on a number literal is folded into the literal.
 */
static int parse_unary(sl__xparser *p, sl__xnode **out)
{
    sl__xtok t = p->tok;
    if (t.kind != SL__T_NOT && t.kind != SL__T_MINUS)
        return parse_postfix(p, out);
    if (++p->depth > SL__EXPR_MAX_DEPTH)
        return too_deep(p, t.pos);
    int rc = advance(p);
    sl__xnode *x = NULL;
    if (rc == 0)
        rc = parse_unary(p, &x);
    p->depth--;
    if (rc < 0)
        return rc;
    if (t.kind == SL__T_MINUS && x->op == SL__X_LIT) {
        /* Fold negative literals; -9223372036854775808 only exists so. */
        if (x == p->min_literal) {
            p->min_literal = NULL;
            x->pos = (uint32_t)t.pos;
            x->src_pos = (uint32_t)t.pos;
            x->src_len = (uint32_t)(p->prev_end - t.pos);
            *out = x;
            return 0;
        }
        if ((x->u.lit.t == SL__XV_INT && x->u.lit.u.i != INT64_MIN) ||
            x->u.lit.t == SL__XV_DOUBLE) {
            if (x->u.lit.t == SL__XV_INT)
                x->u.lit.u.i = -x->u.lit.u.i;
            else
                x->u.lit.u.d = -x->u.lit.u.d;
            x->pos = (uint32_t)t.pos;
            x->src_pos = (uint32_t)t.pos;
            x->src_len = (uint32_t)(p->prev_end - t.pos);
            *out = x;
            return 0;
        }
    }
    sl__xnode *n = new_node(p, t.kind == SL__T_NOT ? SL__X_NOT : SL__X_NEG,
                            t.pos, t.pos);
    if (n == NULL)
        return SL_ENOMEM;
    n->u.kid[0] = x;
    rc = set_depth(p, n, x, NULL, NULL);
    if (rc < 0)
        return rc;
    *out = n;
    return 0;
}

/* Left-associative chains of * / % (and + - below, && || further down). */
static int parse_mul(sl__xparser *p, sl__xnode **out)
{
    sl__xnode *l = NULL;
    int rc = parse_unary(p, &l);
    while (rc == 0) {
        sl__xop op;
        switch (p->tok.kind) {
        case SL__T_STAR: op = SL__X_MUL; break;
        case SL__T_SLASH: op = SL__X_DIV; break;
        case SL__T_PERCENT: op = SL__X_MOD; break;
        default:
            *out = l;
            return 0;
        }
        size_t pos = p->tok.pos;
        sl__xnode *r = NULL;
        rc = advance(p);
        if (rc == 0)
            rc = parse_unary(p, &r);
        if (rc == 0)
            rc = binary(p, op, pos, l, r, &l);
    }
    return rc;
}

static int parse_add(sl__xparser *p, sl__xnode **out)
{
    sl__xnode *l = NULL;
    int rc = parse_mul(p, &l);
    while (rc == 0) {
        sl__xop op;
        if (p->tok.kind == SL__T_PLUS)
            op = SL__X_ADD;
        else if (p->tok.kind == SL__T_MINUS)
            op = SL__X_SUB;
        else {
            *out = l;
            return 0;
        }
        size_t pos = p->tok.pos;
        sl__xnode *r = NULL;
        rc = advance(p);
        if (rc == 0)
            rc = parse_mul(p, &r);
        if (rc == 0)
            rc = binary(p, op, pos, l, r, &l);
    }
    return rc;
}

static bool is_cmp(sl__xtok_kind k, sl__xop *op)
{
    switch (k) {
    case SL__T_EQ: *op = SL__X_EQ; return true;
    case SL__T_NE: *op = SL__X_NE; return true;
    case SL__T_LT: *op = SL__X_LT; return true;
    case SL__T_LE: *op = SL__X_LE; return true;
    case SL__T_GT: *op = SL__X_GT; return true;
    case SL__T_GE: *op = SL__X_GE; return true;
    case SL__T_MATCH: *op = SL__X_MATCH; return true;
    case SL__T_NMATCH: *op = SL__X_MATCH; return true;
    default: return false;
    }
}

/*
 * At most one comparison: a second one right after is an error suggesting
 * &&. For =~ / !~ a literal pattern is compiled here; a computed one
 * becomes SL__X_MATCH_DYN; any other literal is an error.
 */
static int parse_cmp(sl__xparser *p, sl__xnode **out)
{
    sl__xnode *l = NULL, *r = NULL;
    int rc = parse_add(p, &l);
    if (rc < 0)
        return rc;
    sl__xop op;
    if (!is_cmp(p->tok.kind, &op)) {
        *out = l;
        return 0;
    }
    sl__xtok optok = p->tok;
    rc = advance(p);
    if (rc == 0)
        rc = parse_add(p, &r);
    if (rc < 0)
        return rc;
    sl__xop next;
    if (is_cmp(p->tok.kind, &next))
        return fail(p, p->tok.pos, "comparisons cannot be chained; join "
                    "them with && (a < b && b < c)");
    if (op != SL__X_MATCH)
        return binary(p, op, optok.pos, l, r, out);

    bool negate = optok.kind == SL__T_NMATCH;
    if (r->op == SL__X_LIT) {
        if (r->u.lit.t != SL__XV_STRING)
            return fail(p, r->pos, "the right side of %s must be a string "
                        "(a regular expression), not %s",
                        negate ? "!~" : "=~", sl__xtype_name(r->u.lit.t));
        const sl__xregex *re;
        rc = sl__xregex_compile(p->e, r->u.lit.u.s.p, r->u.lit.u.s.n, r->pos,
                                &re, p->err);
        if (rc < 0)
            return rc;
        sl__xnode *n = new_node(p, SL__X_MATCH, optok.pos, l->src_pos);
        if (n == NULL)
            return SL_ENOMEM;
        n->u.match.lhs = l;
        n->u.match.re = re;
        n->u.match.negate = negate;
        rc = set_depth(p, n, l, NULL, NULL);
        if (rc < 0)
            return rc;
        *out = n;
        return 0;
    }
    sl__xnode *n = new_node(p, SL__X_MATCH_DYN, optok.pos, l->src_pos);
    if (n == NULL)
        return SL_ENOMEM;
    n->u.dmatch.lhs = l;
    n->u.dmatch.rhs = r;
    n->u.dmatch.negate = negate;
    rc = set_depth(p, n, l, r, NULL);
    if (rc < 0)
        return rc;
    *out = n;
    return 0;
}

static int parse_and(sl__xparser *p, sl__xnode **out)
{
    sl__xnode *l = NULL;
    int rc = parse_cmp(p, &l);
    while (rc == 0 && p->tok.kind == SL__T_AND) {
        size_t pos = p->tok.pos;
        sl__xnode *r = NULL;
        rc = advance(p);
        if (rc == 0)
            rc = parse_cmp(p, &r);
        if (rc == 0)
            rc = binary(p, SL__X_AND, pos, l, r, &l);
    }
    if (rc == 0)
        *out = l;
    return rc;
}

static int parse_or(sl__xparser *p, sl__xnode **out)
{
    sl__xnode *l = NULL;
    int rc = parse_and(p, &l);
    while (rc == 0 && p->tok.kind == SL__T_OR) {
        size_t pos = p->tok.pos;
        sl__xnode *r = NULL;
        rc = advance(p);
        if (rc == 0)
            rc = parse_and(p, &r);
        if (rc == 0)
            rc = binary(p, SL__X_OR, pos, l, r, &l);
    }
    if (rc == 0)
        *out = l;
    return rc;
}

/* cond '?' expr ':' expr; the else branch recurses, so it nests right. */
static int parse_ternary(sl__xparser *p, sl__xnode **out)
{
    sl__xnode *c = NULL, *a = NULL, *b = NULL;
    int rc = parse_or(p, &c);
    if (rc < 0)
        return rc;
    if (p->tok.kind != SL__T_QUESTION) {
        *out = c;
        return 0;
    }
    size_t qpos = p->tok.pos;
    rc = advance(p);
    if (rc == 0)
        rc = parse_expr(p, &a);
    if (rc < 0)
        return rc;
    if (p->tok.kind != SL__T_COLON)
        return unexpected(p, " (expected ':' in cond ? a : b)");
    rc = advance(p);
    if (rc == 0)
        rc = parse_expr(p, &b);
    if (rc < 0)
        return rc;
    sl__xnode *n = new_node(p, SL__X_COND, qpos, c->src_pos);
    if (n == NULL)
        return SL_ENOMEM;
    n->u.kid[0] = c;
    n->u.kid[1] = a;
    n->u.kid[2] = b;
    rc = set_depth(p, n, c, a, b);
    if (rc < 0)
        return rc;
    *out = n;
    return 0;
}

/* A whole expression; every nested one (parentheses, indices, arguments,
 * branches) comes through here and counts one level of depth. */
static int parse_expr(sl__xparser *p, sl__xnode **out)
{
    if (++p->depth > SL__EXPR_MAX_DEPTH)
        return too_deep(p, p->tok.pos);
    int rc = parse_ternary(p, out);
    p->depth--;
    return rc;
}

/* The whole text must be one expression; sets e->root. */
int sl__xparse(sl_expr *e, sl_expr_error *err)
{
    sl__xparser p;
    memset(&p, 0, sizeof(p));
    p.e = e;
    p.err = err;
    p.lx.src = e->src;
    p.lx.len = e->src_len;
    p.lx.arena = &e->arena;
    p.lx.err = err;
    int rc = sl__xlex_next(&p.lx, &p.tok);
    if (rc < 0)
        goto out;
    if (p.tok.kind == SL__T_EOF) {
        rc = fail(&p, p.tok.pos, "empty expression");
        goto out;
    }
    sl__xnode *root = NULL;
    rc = parse_expr(&p, &root);
    if (rc < 0)
        goto out;
    if (p.tok.kind != SL__T_EOF) {
        if (p.tok.kind == SL__T_RPAREN)
            rc = fail(&p, p.tok.pos, "unexpected ')' (no '(' to close)");
        else if (p.tok.kind == SL__T_COLON)
            rc = fail(&p, p.tok.pos, "unexpected ':' (no '?' before it)");
        else
            rc = unexpected(&p, " after a complete expression (missing an "
                                "operator?)");
        goto out;
    }
    if (p.min_literal != NULL) {
        rc = fail(&p, p.min_literal->pos, "integer literal is too large "
                  "(the limit is 9223372036854775807)");
        goto out;
    }
    e->root = root;
out:
    return rc;
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */
/* ------------------------------------------------------------------ */

/*
 * Copy src into a new expression's arena and parse it. The length check
 * looks at no more than the limit + 1 bytes of src. Thread: any.
 */
int sl_expr_compile(const char *src, sl_expr **out, sl_expr_error *err)
{
    sl_expr_error local;
    if (err == NULL)
        err = &local;
    err->column = 0;
    err->text[0] = '\0';
    if (src == NULL || out == NULL) {
        snprintf(err->text, sizeof(err->text), "no expression given");
        return SL_EINVAL;
    }
    size_t len = strnlen(src, (size_t)SL__EXPR_MAX_LEN + 1);
    if (len > SL__EXPR_MAX_LEN)
        return sl__xerror(err, src, len, SL__EXPR_MAX_LEN, SL_EPARSE,
                          "expression is too long (the limit is %d bytes)",
                          SL__EXPR_MAX_LEN);
    sl_expr *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return SL_ENOMEM;
    e->src = sl__xarena_alloc(&e->arena, len + 1);
    if (e->src == NULL)
        goto out_free;
    memcpy(e->src, src, len);
    e->src[len] = '\0';
    e->src_len = len;
    int rc = sl__xparse(e, err);
    if (rc < 0) {
        sl_expr_destroy(e);
        if (rc == SL_ENOMEM)
            snprintf(err->text, sizeof(err->text), "out of memory");
        return rc;
    }
    *out = e;
    return 0;
out_free:
    sl_expr_destroy(e);
    snprintf(err->text, sizeof(err->text), "out of memory");
    return SL_ENOMEM;
}

void sl_expr_destroy(sl_expr *e)
{
    if (e == NULL)
        return;
    sl__xregex_free_all(e->regexes);
    sl__xarena_free(&e->arena);
    free(e);
}

const char *sl_expr_source(const sl_expr *e)
{
    return e != NULL ? e->src : NULL;
}
