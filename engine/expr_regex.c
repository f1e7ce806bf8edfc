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
 */
#include <stdlib.h>
#include <string.h>

#include "engine/expr_internal.h"
#include "sluice/error.h"

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
