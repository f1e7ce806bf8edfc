/*
 * The `http` fetch stage's URL list: `url` or `urls`, each entry a
 * template whose {M..N} ranges expand, generated one URL at a time so that
 * "{1..1000000}" costs no memory up front.
 *
 * file:// URLs: the URL standard reads "file://data/x.jsonl" as the file
 * /x.jsonl on host "data". Pipelines are easier to write and move with
 * paths relative to where sluice runs, so here "file://" followed by
 * anything but "/" or "localhost/" is a path relative to the working
 * directory at start: "file://pipelines/data/a.jsonl" reads
 * $PWD/pipelines/data/a.jsonl. "file:///abs/path" is absolute as usual.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http_common.h"

struct sl__url_part {
    bool range;            /* a {M..N} range, else literal text */
    char *text;            /* literal: owned, NUL-terminated */
    int64_t from, to;      /* range bounds as written */
    int width;             /* range: zero-pad to this many digits; 0 = none */
    int64_t count;         /* range: numbers in it */
};

/* Read 1..9 decimal digits at *p. */
static bool read_bound(const char **p, int64_t *v, int *digits, bool *lead0)
{
    const char *s = *p;
    int n = 0;
    int64_t x = 0;
    while (s[n] >= '0' && s[n] <= '9') {
        if (n == 9)
            return false;
        x = x * 10 + (s[n] - '0');
        n++;
    }
    if (n == 0)
        return false;
    *lead0 = n > 1 && s[0] == '0';
    *digits = n;
    *v = x;
    *p = s + n;
    return true;
}

/* A range "{M..N}" at s (s[0] == '{'): fills part, returns its length, or
 * 0 when s does not start a range. */
static size_t parse_range(const char *s, sl__url_part *part)
{
    const char *p = s + 1;
    int64_t a, b;
    int da, db;
    bool za, zb;
    if (!read_bound(&p, &a, &da, &za) || strncmp(p, "..", 2) != 0)
        return 0;
    p += 2;
    if (!read_bound(&p, &b, &db, &zb) || *p != '}')
        return 0;
    memset(part, 0, sizeof(*part));
    part->range = true;
    part->from = a;
    part->to = b;
    part->count = (a <= b ? b - a : a - b) + 1;
    part->width = (za || zb) ? (da > db ? da : db) : 0;
    return (size_t)(p + 1 - s);
}

static int add_literal(sl__url_template *t, const char *s, size_t len,
                       size_t *cap)
{
    if (len == 0)
        return 0;
    if (t->n_parts == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        sl__url_part *np = realloc(t->parts, nc * sizeof(*np));
        if (np == NULL)
            return SL_ENOMEM;
        t->parts = np;
        *cap = nc;
    }
    sl__url_part *part = &t->parts[t->n_parts];
    memset(part, 0, sizeof(*part));
    part->text = strndup(s, len);
    if (part->text == NULL)
        return SL_ENOMEM;
    part->count = 1;
    t->n_parts++;
    return 0;
}

static int add_range(sl__url_template *t, const sl__url_part *range,
                     size_t *cap)
{
    if (t->n_parts == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        sl__url_part *np = realloc(t->parts, nc * sizeof(*np));
        if (np == NULL)
            return SL_ENOMEM;
        t->parts = np;
        *cap = nc;
    }
    t->parts[t->n_parts++] = *range;
    return 0;
}

static void template_fini(sl__url_template *t)
{
    for (size_t i = 0; i < t->n_parts; i++)
        free(t->parts[i].text);
    free(t->parts);
    t->parts = NULL;
    t->n_parts = 0;
}

/* Split one URL template into parts; its count, capped at SL__URL_MAX + 1. */
static int parse_template(sl__url_template *t, const char *url)
{
    size_t cap = 0;
    memset(t, 0, sizeof(*t));
    t->count = 1;
    const char *lit = url;
    const char *p = url;
    while (*p != '\0') {
        sl__url_part range;
        size_t n = *p == '{' ? parse_range(p, &range) : 0;
        if (n == 0) {
            p++;
            continue;
        }
        int rc = add_literal(t, lit, (size_t)(p - lit), &cap);
        if (rc == 0)
            rc = add_range(t, &range, &cap);
        if (rc != 0)
            return rc;
        if (t->count > (SL__URL_MAX + 1) / range.count)
            t->count = SL__URL_MAX + 1;
        else
            t->count *= range.count;
        p += n;
        lit = p;
    }
    return add_literal(t, lit, (size_t)(p - lit), &cap);
}

/* The working directory, percent-encoded for a file:// URL; NULL on error. */
static char *encoded_cwd(void)
{
    char *cwd = getcwd(NULL, 0);
    if (cwd == NULL)
        return NULL;
    size_t n = strlen(cwd);
    char *out = malloc(n * 3 + 1);
    if (out != NULL) {
        static const char hex[] = "0123456789ABCDEF";
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)cwd[i];
            if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                (ch >= '0' && ch <= '9') || strchr("-._~/!$&'()*+,;=:@", ch)) {
                out[k++] = (char)ch;
            } else {
                out[k++] = '%';
                out[k++] = hex[ch >> 4];
                out[k++] = hex[ch & 15];
            }
        }
        out[k] = '\0';
    }
    free(cwd);
    return out;
}

/* "file://" + a relative path? */
static bool relative_file(const char *url)
{
    if (strncasecmp(url, "file://", 7) != 0)
        return false;
    const char *rest = url + 7;
    return *rest != '/' && strncasecmp(rest, "localhost/", 10) != 0;
}

int sl__url_set_init(sl__url_set *s, sl_stage_ctx *sc, const char *url,
                     const sl_strlist *urls)
{
    memset(s, 0, sizeof(*s));
    bool have_list = urls != NULL && urls->n > 0;
    if (url != NULL && have_list)
        return sl_stage_error(sc, SL_ECONFIG,
                              "give either 'url' or 'urls', not both");
    if (url == NULL && !have_list)
        return sl_stage_error(sc, SL_ECONFIG, "needs 'url' or 'urls'");
    size_t n = url != NULL ? 1 : urls->n;
    s->t = calloc(n, sizeof(*s->t));
    if (s->t == NULL)
        return sl_stage_error(sc, SL_ENOMEM, "out of memory");
    bool any_relative = false;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        const char *u = url != NULL ? url : urls->items[i];
        if (*u == '\0') {
            rc = sl_stage_error(sc, SL_ECONFIG, "an empty URL in '%s'",
                                url != NULL ? "url" : "urls");
            goto out_fail;
        }
        rc = parse_template(&s->t[i], u);
        s->n = i + 1;
        if (rc != 0) {
            rc = sl_stage_error(sc, rc, "out of memory");
            goto out_fail;
        }
        s->total += s->t[i].count;
        if (s->total > SL__URL_MAX) {
            rc = sl_stage_error(sc, SL_ECONFIG, "the URLs expand to more than "
                                "%" PRId64 " requests", SL__URL_MAX);
            goto out_fail;
        }
        any_relative = any_relative || relative_file(u);
    }
    if (any_relative) {
        s->cwd = encoded_cwd();
        if (s->cwd == NULL) {
            rc = sl_stage_error(sc, SL_EIO, "cannot resolve a relative file:// "
                                "URL: no working directory (%s)", strerror(errno));
            goto out_fail;
        }
    }
    return 0;

out_fail:
    sl__url_set_fini(s);
    return rc;
}

void sl__url_set_fini(sl__url_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        template_fini(&s->t[i]);
    free(s->t);
    free(s->cwd);
    memset(s, 0, sizeof(*s));
}

char *sl__url_set_get(const sl__url_set *s, int64_t k)
{
    size_t ti = 0;
    while (ti < s->n && k >= s->t[ti].count) {
        k -= s->t[ti].count;
        ti++;
    }
    if (ti == s->n)
        return NULL;
    const sl__url_template *t = &s->t[ti];

    /* The number each range takes: rightmost fastest. */
    int64_t *vals = calloc(t->n_parts > 0 ? t->n_parts : 1, sizeof(*vals));
    if (vals == NULL)
        return NULL;
    size_t len = 1;
    for (size_t i = t->n_parts; i-- > 0;) {
        const sl__url_part *p = &t->parts[i];
        if (!p->range) {
            len += strlen(p->text);
            continue;
        }
        int64_t idx = k % p->count;
        k /= p->count;
        vals[i] = p->from <= p->to ? p->from + idx : p->from - idx;
        len += 24;
    }
    char *out = malloc(len);
    if (out == NULL) {
        free(vals);
        return NULL;
    }
    size_t at = 0;
    for (size_t i = 0; i < t->n_parts; i++) {
        const sl__url_part *p = &t->parts[i];
        if (p->range)
            at += (size_t)snprintf(out + at, len - at, "%0*" PRId64,
                                   p->width, vals[i]);
        else
            at += (size_t)snprintf(out + at, len - at, "%s", p->text);
    }
    out[at] = '\0';
    free(vals);
    if (s->cwd == NULL || !relative_file(out))
        return out;
    size_t full_len = strlen(out) + strlen(s->cwd) + 2;
    char *full = malloc(full_len);
    if (full != NULL)
        snprintf(full, full_len, "file://%s/%s", s->cwd, out + 7);
    free(out);
    return full;
}
