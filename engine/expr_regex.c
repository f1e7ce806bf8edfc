/*
 * Regular expressions for =~ and !~: POSIX extended (regex.h), compiled
 * once when the pattern is a literal.
 *
 * Many patterns in practice are plain text, maybe anchored ("^/api/",
 * "error", "\.json$"). Those are still checked by regcomp — so what is
 * accepted never depends on the shortcut — and then matched with memcmp /
 * memmem, which gives the same answer as regexec for such patterns without
 * its cost (or the lock glibc takes inside regexec). Everything else goes
 * to regexec, with REG_STARTEND where available so a subject holding NUL
 * bytes is matched over its whole length, as the shortcut does.
 *
 * Before regcomp sees a pattern, a small scan estimates what it will build:
 * glibc expands every `+` and `{n,m}` by copying the repeated part, so
 * "a++++++++..." or "((a{100}){100}){100}" would take memory exponential in
 * the pattern's length. Patterns over a budget are refused, as are
 * back-references (\1..\9, which make matching exponential in time).
 */
#include <stdlib.h>
#include <string.h>

#include "engine/expr_internal.h"
#include "sluice/error.h"

/* ------------------------------------------------------------------ */
/* Complexity check                                                    */
/* ------------------------------------------------------------------ */

#define SL__RE_BUDGET 2000      /* estimated regcomp tree nodes */
#define SL__RE_MAX_GROUPS 100   /* nesting of ( ) */

typedef struct sl__recost {
    const char *p;          /* the pattern */
    size_t len;
    size_t i;               /* next byte */
    int depth;              /* open groups */
    const char *why;        /* set when refused */
} sl__recost;

static uint64_t cap_add(uint64_t a, uint64_t b)
{
    return a + b > SL__RE_BUDGET + 1 ? SL__RE_BUDGET + 1 : a + b;
}

static uint64_t cap_mul(uint64_t a, uint64_t b)
{
    if (a != 0 && b > (SL__RE_BUDGET + 1) / a)
        return SL__RE_BUDGET + 1;
    return cap_add(a * b, 0);
}

/* A {n}, {n,} or {n,m} bound at rc->i (the '{'): the copies it makes, or 0
 * when it is not a valid bound (regcomp then decides what it means). */
static uint64_t bound_copies(sl__recost *rc)
{
    size_t i = rc->i + 1;
    uint64_t n = 0, m = 0;
    bool digits = false, comma = false, mdigits = false;
    while (i < rc->len && rc->p[i] >= '0' && rc->p[i] <= '9') {
        n = cap_add(cap_mul(n, 10), (uint64_t)(rc->p[i] - '0'));
        digits = true;
        i++;
    }
    if (i < rc->len && rc->p[i] == ',') {
        comma = true;
        i++;
        while (i < rc->len && rc->p[i] >= '0' && rc->p[i] <= '9') {
            m = cap_add(cap_mul(m, 10), (uint64_t)(rc->p[i] - '0'));
            mdigits = true;
            i++;
        }
    }
    if (!digits || i >= rc->len || rc->p[i] != '}')
        return 0;
    rc->i = i + 1;
    uint64_t copies = comma && mdigits ? (m > n ? m : n) : n;
    return cap_add(copies, 1);
}

/* Skip a bracket expression starting at rc->i ('['). */
static void skip_bracket(sl__recost *rc)
{
    size_t i = rc->i + 1;
    if (i < rc->len && rc->p[i] == '^')
        i++;
    if (i < rc->len && rc->p[i] == ']')
        i++;                                /* a leading ']' is literal */
    while (i < rc->len && rc->p[i] != ']') {
        if (rc->p[i] == '[' && i + 1 < rc->len &&
            (rc->p[i + 1] == ':' || rc->p[i + 1] == '.' || rc->p[i + 1] == '=')) {
            char close = rc->p[i + 1];
            i += 2;
            while (i + 1 < rc->len && !(rc->p[i] == close && rc->p[i + 1] == ']'))
                i++;
            i += 2;
            continue;
        }
        i++;
    }
    rc->i = i < rc->len ? i + 1 : rc->len;
}

static uint64_t cost_alt(sl__recost *rc);

/* One atom and the repetition operators after it. */
static uint64_t cost_piece(sl__recost *rc)
{
    uint64_t w = 1;
    char c = rc->p[rc->i];
    if (c == '(') {
        if (++rc->depth > SL__RE_MAX_GROUPS) {
            rc->why = "too many nested groups";
            return SL__RE_BUDGET + 1;
        }
        rc->i++;
        w = cap_add(cost_alt(rc), 1);
        rc->depth--;
        if (rc->i < rc->len && rc->p[rc->i] == ')')
            rc->i++;
    } else if (c == '[') {
        skip_bracket(rc);
    } else if (c == '\\') {
        if (rc->i + 1 < rc->len && rc->p[rc->i + 1] >= '1' &&
            rc->p[rc->i + 1] <= '9') {
            rc->why = "back-references are not supported";
            return SL__RE_BUDGET + 1;
        }
        rc->i += rc->i + 1 < rc->len ? 2 : 1;
    } else {
        rc->i++;
    }
    while (rc->i < rc->len && w <= SL__RE_BUDGET) {
        c = rc->p[rc->i];
        if (c == '*' || c == '?') {
            w = cap_add(w, 1);
            rc->i++;
        } else if (c == '+') {
            w = cap_add(cap_mul(w, 2), 1);  /* x+ is built as x x* */
            rc->i++;
        } else if (c == '{') {
            uint64_t copies = bound_copies(rc);
            if (copies == 0)
                break;
            w = cap_mul(w, copies);
        } else {
            break;
        }
    }
    return w;
}

static uint64_t cost_alt(sl__recost *rc)
{
    uint64_t total = 0;
    while (rc->i < rc->len && total <= SL__RE_BUDGET) {
        char c = rc->p[rc->i];
        if (c == ')' && rc->depth > 0)
            break;
        if (c == '|') {
            total = cap_add(total, 1);
            rc->i++;
            continue;
        }
        total = cap_add(total, cost_piece(rc));
    }
    return total;
}

bool sl__xregex_check(const char *pattern, size_t len, const char **why)
{
    sl__recost rc = {pattern, len, 0, 0, NULL};
    uint64_t cost = cost_alt(&rc);
    while (rc.i < len && cost <= SL__RE_BUDGET) {   /* stray ')': go on */
        rc.i++;
        cost = cap_add(cost, cost_alt(&rc));
    }
    if (rc.why != NULL) {
        *why = rc.why;
        return false;
    }
    if (cost > SL__RE_BUDGET) {
        *why = "too complex (repetitions multiply beyond the limit)";
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Compilation and matching                                            */
/* ------------------------------------------------------------------ */

static bool is_meta(char c)
{
    return strchr(".[]()*+?{}|^$\\", c) != NULL;
}

/*
 * If pattern is literal text with optional ^ and $ anchors, write the
 * literal (escapes removed) to lit, its length to *lit_len, and return the
 * kind; otherwise SL__RE_POSIX. lit must have room for len bytes.
 */
static sl__xre_kind literal_kind(const char *pat, size_t len, char *lit,
                                 size_t *lit_len)
{
    size_t i = 0, n = 0;
    bool start = false, end = false;
    if (i < len && pat[i] == '^') {
        start = true;
        i++;
    }
    while (i < len) {
        char c = pat[i];
        if (c == '$' && i + 1 == len) {
            end = true;
            i++;
            break;
        }
        if (c == '\\') {
            if (i + 1 < len && is_meta(pat[i + 1])) {
                lit[n++] = pat[i + 1];
                i += 2;
                continue;
            }
            return SL__RE_POSIX;   /* \w, \<, a trailing '\': regcomp's call */
        }
        if (is_meta(c))
            return SL__RE_POSIX;
        lit[n++] = c;
        i++;
    }
    *lit_len = n;
    if (start && end)
        return SL__RE_EXACT;
    if (start)
        return n == 0 ? SL__RE_ANY : SL__RE_PREFIX;
    if (end)
        return n == 0 ? SL__RE_ANY : SL__RE_SUFFIX;
    return n == 0 ? SL__RE_ANY : SL__RE_SUBSTR;
}

int sl__xregex_compile(sl_expr *e, const char *pattern, size_t len,
                       size_t pos, const sl__xregex **out, sl_expr_error *err)
{
    if (memchr(pattern, '\0', len) != NULL)
        return sl__xerror(err, e->src, e->src_len, pos, SL_EPARSE,
                          "a regular expression cannot contain a NUL "
                          "character");
    sl__xregex *re = sl__xarena_alloc(&e->arena, sizeof(*re));
    char *lit = sl__xarena_alloc(&e->arena, len + 1);
    if (re == NULL || lit == NULL)
        return SL_ENOMEM;
    memset(re, 0, sizeof(*re));
    const char *refusal;
    if (!sl__xregex_check(pattern, len, &refusal))
        return sl__xerror(err, e->src, e->src_len, pos, SL_EPARSE,
                          "invalid regular expression: %s", refusal);
    /* pattern is NUL-terminated (a decoded string literal). */
    int rc = regcomp(&re->re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[100];
        regerror(rc, &re->re, why, sizeof(why));
        if (rc == REG_ESPACE)
            return SL_ENOMEM;
        return sl__xerror(err, e->src, e->src_len, pos, SL_EPARSE,
                          "invalid regular expression: %s", why);
    }
    re->compiled = true;
    re->next = e->regexes;
    e->regexes = re;
    re->kind = literal_kind(pattern, len, lit, &re->lit_len);
    if (re->kind != SL__RE_POSIX) {
        lit[re->lit_len] = '\0';
        re->lit = lit;
        regfree(&re->re);
        re->compiled = false;
    }
    *out = re;
    return 0;
}

void sl__xregex_free_all(sl__xregex *list)
{
    for (sl__xregex *re = list; re != NULL; re = re->next)
        if (re->compiled) {
            regfree(&re->re);
            re->compiled = false;
        }
}

bool sl__xregex_match(const sl__xregex *re, const char *s, size_t n)
{
    switch (re->kind) {
    case SL__RE_ANY:
        return true;
    case SL__RE_PREFIX:
        return n >= re->lit_len && memcmp(s, re->lit, re->lit_len) == 0;
    case SL__RE_SUFFIX:
        return n >= re->lit_len &&
               memcmp(s + n - re->lit_len, re->lit, re->lit_len) == 0;
    case SL__RE_EXACT:
        return n == re->lit_len && memcmp(s, re->lit, n) == 0;
    case SL__RE_SUBSTR:
        return memmem(s, n, re->lit, re->lit_len) != NULL;
    case SL__RE_POSIX:
        break;
    }
#ifdef REG_STARTEND
    regmatch_t m[1];
    m[0].rm_so = 0;
    m[0].rm_eo = (regoff_t)n;
    return regexec(&re->re, s, 1, m, REG_STARTEND) == 0;
#else
    return regexec(&re->re, s, 0, NULL, 0) == 0;
#endif
}
