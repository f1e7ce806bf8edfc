/*
 * Diagnostics: messages for people, each with its position, capped so that
 * hostile input cannot grow the list without bound.
 */
#include "engine/diag.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One capped list of formatted lines. */
typedef struct sl_diag_list {
    char *msgs[SL_DIAG_MAX + 1]; /* formatted lines; the last slot is "too many" */
    size_t n;                    /* lines kept, including the "too many" line */
    size_t total;                /* lines ever added, kept or not */
} sl_diag_list;

struct sl_diag {
    sl_diag_list errors;    /* what makes the input invalid */
    sl_diag_list warnings;  /* what is merely worth saying */
};

/* Longest single message kept; longer ones are cut with "...". */
#define SL_DIAG_LINE_MAX 2048

sl_diag *sl__diag_create(void)
{
    return calloc(1, sizeof(sl_diag));
}

static void list_clear(sl_diag_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->msgs[i]);
    l->n = 0;
    l->total = 0;
}

void sl__diag_destroy(sl_diag *d)
{
    if (d == NULL)
        return;
    list_clear(&d->errors);
    list_clear(&d->warnings);
    free(d);
}

void sl__diag_clear(sl_diag *d)
{
    list_clear(&d->errors);
    list_clear(&d->warnings);
}

/*
 * Format "file:line:col: text" into a new string. Position parts that are
 * unknown are left out ("file: text", "file:line: text", "text").
 * Returns NULL on out of memory.
 */
static char *format_line(const char *file, int line, int col,
                         const char *fmt, va_list ap)
{
    char buf[SL_DIAG_LINE_MAX];
    size_t off = 0;
    int k = 0;

    if (file != NULL && line > 0 && col > 0)
        k = snprintf(buf, sizeof(buf), "%s:%d:%d: ", file, line, col);
    else if (file != NULL && line > 0)
        k = snprintf(buf, sizeof(buf), "%s:%d: ", file, line);
    else if (file != NULL)
        k = snprintf(buf, sizeof(buf), "%s: ", file);
    if (k > 0)
        off = (size_t)k < sizeof(buf) ? (size_t)k : sizeof(buf) - 1;
    k = vsnprintf(buf + off, sizeof(buf) - off, fmt, ap);
    if (k > 0 && (size_t)k >= sizeof(buf) - off)
        memcpy(buf + sizeof(buf) - 4, "...", 4);
    return strdup(buf);
}

static void list_add(sl_diag_list *l, const char *kind, const char *file,
                     int line, int col, const char *fmt, va_list ap)
{
    l->total++;
    if (l->n < SL_DIAG_MAX) {
        char *m = format_line(file, line, col, fmt, ap);
        if (m != NULL)
            l->msgs[l->n++] = m;
        return;
    }
    if (l->n == SL_DIAG_MAX) {
        char buf[96];
        snprintf(buf, sizeof(buf), "too many %s; only the first %d are shown",
                 kind, SL_DIAG_MAX);
        char *m = strdup(buf);
        if (m != NULL)
            l->msgs[l->n++] = m;
    }
}

void sl__diag_vadd(sl_diag *d, const char *file, int line, int col,
                   const char *fmt, va_list ap)
{
    list_add(&d->errors, "errors", file, line, col, fmt, ap);
}

void sl__diag_add(sl_diag *d, const char *file, int line, int col,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl__diag_vadd(d, file, line, col, fmt, ap);
    va_end(ap);
}

void sl__diag_warn(sl_diag *d, const char *file, int line, int col,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    list_add(&d->warnings, "warnings", file, line, col, fmt, ap);
    va_end(ap);
}

size_t sl__diag_count(const sl_diag *d)
{
    return d->errors.n;
}

const char *sl__diag_message(const sl_diag *d, size_t i)
{
    return i < d->errors.n ? d->errors.msgs[i] : NULL;
}

size_t sl__diag_errors(const sl_diag *d)
{
    return d->errors.total;
}

size_t sl__diag_warning_count(const sl_diag *d)
{
    return d->warnings.n;
}

const char *sl__diag_warning(const sl_diag *d, size_t i)
{
    return i < d->warnings.n ? d->warnings.msgs[i] : NULL;
}

void sl__diag_print(const sl_diag *d, FILE *out)
{
    for (size_t i = 0; i < d->errors.n; i++)
        fprintf(out, "error: %s\n", d->errors.msgs[i]);
    for (size_t i = 0; i < d->warnings.n; i++)
        fprintf(out, "warning: %s\n", d->warnings.msgs[i]);
}

/* ------------------------------------------------------------------ */
/* Suggestions                                                         */
/* ------------------------------------------------------------------ */

/* Words longer than this get no suggestion (and cost nothing). */
#define SL_SUGGEST_MAX_LEN 64

/*
 * Optimal string alignment distance between a and b (both at most
 * SL_SUGGEST_MAX_LEN long): insertions, deletions, substitutions and swaps
 * of adjacent characters each cost one.
 */
static size_t osa_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t d[SL_SUGGEST_MAX_LEN + 1][SL_SUGGEST_MAX_LEN + 1];

    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]
                && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *sl__diag_suggest(const char *word, const char *const *candidates,
                             size_t n_max)
{
    if (word == NULL || candidates == NULL)
        return NULL;
    size_t lw = strlen(word);
    if (lw == 0 || lw > SL_SUGGEST_MAX_LEN)
        return NULL;
    size_t limit = lw <= 3 ? 1 : 2;
    const char *best = NULL;
    size_t best_d = SIZE_MAX;

    for (size_t i = 0; i < n_max && candidates[i] != NULL; i++) {
        const char *c = candidates[i];
        size_t lc = strlen(c);
        if (lc > SL_SUGGEST_MAX_LEN || lc == 0)
            continue;
        size_t diff = lc > lw ? lc - lw : lw - lc;
        if (diff > limit)
            continue;
        size_t dist = osa_distance(word, lw, c, lc);
        if (dist <= limit && dist < best_d && dist > 0) {
            best = c;
            best_d = dist;
        }
    }
    return best;
}
