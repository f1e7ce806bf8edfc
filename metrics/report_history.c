/*
 * Reading a metrics.history file into the series the report draws: one
 * snapshot per line (metrics/snapshot_read.c reads each), split into runs,
 * one run kept. See metrics/report.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/report.h"
#include "sluice/error.h"

/* The series being filled, with room for cap points. */
typedef struct series_buf {
    sl__history h;
    size_t cap;
} series_buf;

/* Free the series and start them empty (n_stages is kept). */
static void series_free(series_buf *sb)
{
    free(sb->h.t);
    free(sb->h.line);
    free(sb->h.work);
    free(sb->h.errors);
    free(sb->h.retries);
    free(sb->h.queue_fill);
    free(sb->h.bottleneck);
    sb->h.t = NULL;
    sb->h.line = NULL;
    sb->h.work = NULL;
    sb->h.errors = NULL;
    sb->h.retries = NULL;
    sb->h.queue_fill = NULL;
    sb->h.bottleneck = NULL;
    sb->h.n_points = 0;
    sb->cap = 0;
}

/* Room for one more point of n_stages stages. 0 or SL_ENOMEM. */
static int series_reserve(series_buf *sb)
{
    if (sb->h.n_points < sb->cap)
        return 0;
    size_t cap = sb->cap != 0 ? sb->cap * 2 : 64;
    size_t ns = sb->h.n_stages > 0 ? sb->h.n_stages : 1;
    if (cap > SIZE_MAX / sizeof(double) / ns)
        return SL_ENOMEM;
    double *t = realloc(sb->h.t, cap * sizeof(*t));
    if (t == NULL)
        return SL_ENOMEM;
    sb->h.t = t;
    size_t *line = realloc(sb->h.line, cap * sizeof(*line));
    if (line == NULL)
        return SL_ENOMEM;
    sb->h.line = line;
    long *bn = realloc(sb->h.bottleneck, cap * sizeof(*bn));
    if (bn == NULL)
        return SL_ENOMEM;
    sb->h.bottleneck = bn;
    uint64_t *work = realloc(sb->h.work, cap * ns * sizeof(*work));
    if (work == NULL)
        return SL_ENOMEM;
    sb->h.work = work;
    uint64_t *errors = realloc(sb->h.errors, cap * ns * sizeof(*errors));
    if (errors == NULL)
        return SL_ENOMEM;
    sb->h.errors = errors;
    uint64_t *retries = realloc(sb->h.retries, cap * ns * sizeof(*retries));
    if (retries == NULL)
        return SL_ENOMEM;
    sb->h.retries = retries;
    double *fill = realloc(sb->h.queue_fill, cap * ns * sizeof(*fill));
    if (fill == NULL)
        return SL_ENOMEM;
    sb->h.queue_fill = fill;
    sb->cap = cap;
    return 0;
}

/* Add snapshot s as the next point, its bottleneck not yet known.
 * 0 or SL_ENOMEM. */
static int series_add(series_buf *sb, const sl__run_snapshot *s, size_t line)
{
    int rc = series_reserve(sb);
    if (rc != 0)
        return rc;
    sl__history *h = &sb->h;
    size_t p = h->n_points;
    h->t[p] = s->elapsed_s;
    h->line[p] = line;
    for (size_t i = 0; i < s->n_stages; i++) {
        const sl__stage_snapshot *t = &s->stages[i];
        bool source = t->kind == SL_STAGE_SOURCE;
        SL__HIST_AT(h, work, p, i) = source ? t->records_out : t->records_in;
        SL__HIST_AT(h, errors, p, i) = t->errors;
        SL__HIST_AT(h, retries, p, i) = t->retries;
        SL__HIST_AT(h, queue_fill, p, i) =
            source || t->queue_capacity == 0
                ? -1 : (double)t->queue_depth / (double)t->queue_capacity;
    }
    h->bottleneck[p] = SL__REPORT_NO_WINDOW;
    h->n_points++;
    return 0;
}

/*
 * The windows of the bottleneck over time. The snapshot that opened the
 * current window is kept as its text (anchor; NULL: the run's start) and
 * read again when the window closes, so no third snapshot stays parsed.
 */
typedef struct window_state {
    char *anchor;             /* owned: the line that opened the window */
    size_t anchor_len;
    double anchor_t;          /* its elapsed time (0: the start) */
} window_state;

/* Forget the window's anchor: the next window starts at the run's start. */
static void window_reset(window_state *ws)
{
    free(ws->anchor);
    memset(ws, 0, sizeof(*ws));
}

/*
 * Close the window at snapshot s (text: its line) as point p, when it is
 * long enough or `force`. 0 or SL_ENOMEM.
 */
static int window_close(window_state *ws, sl__history *h, size_t p,
                        const sl__run_snapshot *s, const char *text,
                        size_t len, bool force)
{
    if (!force && s->elapsed_s - ws->anchor_t < SL__REPORT_WINDOW_S)
        return 0;
    long bn = -1;
    if (ws->anchor == NULL) {
        bn = sl__metrics_bottleneck(s);   /* counted from the start */
    } else {
        sl__run_snapshot from, w;
        char err[64];
        int rc = sl__run_snapshot_read(ws->anchor, ws->anchor_len, &from, err,
                                       sizeof(err));
        if (rc == SL_ENOMEM)
            return rc;
        if (rc == 0) {
            rc = sl__run_snapshot_window(s, &from, &w);
            if (rc == 0) {
                bn = sl__metrics_bottleneck(&w);
                sl__run_snapshot_fini(&w);
            }
            sl__run_snapshot_fini(&from);
            if (rc == SL_ENOMEM)
                return rc;
        }
    }
    h->bottleneck[p] = bn;
    if (text == NULL)
        return 0;
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return SL_ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    free(ws->anchor);
    ws->anchor = copy;
    ws->anchor_len = len;
    ws->anchor_t = s->elapsed_s;
    return 0;
}

/* Does cur start a new run after prev? */
static bool new_run(const sl__run_snapshot *prev, const sl__run_snapshot *cur)
{
    if (prev->status != SL__RUN_RUNNING || cur->elapsed_s < prev->elapsed_s ||
        cur->n_stages != prev->n_stages || strcmp(cur->pipeline, prev->pipeline))
        return true;
    for (size_t i = 0; i < cur->n_stages; i++)
        if (strcmp(cur->stages[i].name, prev->stages[i].name) != 0)
            return true;
    return false;
}

/* Is the line only white space? */
static bool is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

/*
 * The reading loop keeps two snapshots: prev (the line before, for run
 * boundaries) and last (the chosen run's latest).
 * While the chosen run is being read they are the same snapshot
 * (prev_is_last), owned once.
 */
int sl__history_read(FILE *f, size_t run, sl__history *out, size_t *err_line,
                     char *err, size_t err_size)
{
    series_buf sb;
    memset(&sb, 0, sizeof(sb));
    sl__run_snapshot prev, last;
    memset(&prev, 0, sizeof(prev));
    memset(&last, 0, sizeof(last));
    bool have_prev = false, prev_is_last = false, have_last = false;
    size_t runs = 0, lineno = 0, first_line = 0;
    char *text = NULL;
    size_t text_cap = 0;
    window_state ws;
    memset(&ws, 0, sizeof(ws));
    int rc = 0;
    *err_line = 0;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&text, &text_cap, f);
        if (n < 0) {
            if (ferror(f)) {
                rc = errno == ENOMEM ? SL_ENOMEM : SL_EIO;
                goto out_fail;
            }
            break;
        }
        lineno++;
        if (is_blank(text, (size_t)n))
            continue;
        sl__run_snapshot cur;
        char why[256];
        rc = sl__run_snapshot_read(text, (size_t)n, &cur, why, sizeof(why));
        if (rc == SL_ENOMEM)
            goto out_fail;
        if (rc != 0) {
            if (text[n - 1] != '\n' && feof(f)) {
                /* the line being written when the file was read */
                sb.h.skipped_partial = true;
                rc = 0;
                break;
            }
            *err_line = lineno;
            snprintf(err, err_size, "%s", why);
            goto out_fail;
        }
        bool boundary = !have_prev || new_run(&prev, &cur);
        if (boundary)
            runs++;
        bool collecting = run == 0 || runs == run;
        if (collecting && boundary) {
            series_free(&sb);
            window_reset(&ws);
            sb.h.n_stages = cur.n_stages;
            first_line = lineno;
        }
        if (collecting) {
            rc = series_add(&sb, &cur, lineno);
            if (rc == 0)
                rc = window_close(&ws, &sb.h, sb.h.n_points - 1, &cur, text,
                                  (size_t)n, cur.status != SL__RUN_RUNNING);
            if (rc != 0) {
                sl__run_snapshot_fini(&cur);
                goto out_fail;
            }
        }
        if (have_prev && !prev_is_last)
            sl__run_snapshot_fini(&prev);
        if (collecting) {
            if (have_last)
                sl__run_snapshot_fini(&last);   /* it was prev */
            last = cur;
            have_last = true;
            prev_is_last = true;
        } else {
            prev_is_last = false;
        }
        prev = cur;
        have_prev = true;
    }
    rc = SL_EPARSE;
    if (runs == 0) {
        snprintf(err, err_size, "no snapshots (an empty history)");
        goto out_fail;
    }
    if (run > runs) {
        snprintf(err, err_size, "holds %zu run%s, not %zu", runs,
                 runs == 1 ? "" : "s", run);
        goto out_fail;
    }
    /* a history that ends while running: its last stretch, however short */
    if (sb.h.n_points > 0 &&
        sb.h.bottleneck[sb.h.n_points - 1] == SL__REPORT_NO_WINDOW) {
        rc = window_close(&ws, &sb.h, sb.h.n_points - 1, &last, NULL, 0, true);
        if (rc != 0)
            goto out_fail;
    }
    if (have_prev && !prev_is_last)
        sl__run_snapshot_fini(&prev);
    free(text);
    window_reset(&ws);
    sb.h.last = last;
    sb.h.n_runs = runs;
    sb.h.run = run == 0 ? runs : run;
    sb.h.first_line = first_line;
    *out = sb.h;
    return 0;
out_fail:
    window_reset(&ws);
    if (have_prev && !prev_is_last)
        sl__run_snapshot_fini(&prev);
    if (have_last)
        sl__run_snapshot_fini(&last);
    series_free(&sb);
    free(text);
    return rc;
}

/* The series and the last snapshot; the history is zeroed. */
void sl__history_fini(sl__history *h)
{
    if (h == NULL)
        return;
    series_buf sb = {.h = *h};
    series_free(&sb);
    sl__run_snapshot_fini(&h->last);
    memset(h, 0, sizeof(*h));
}
