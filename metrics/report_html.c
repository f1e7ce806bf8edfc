/*
 * The HTML run report: one self-contained page (inline CSS and SVG, no
 * script, nothing fetched) drawn from a history's series. Sections: the
 * run, the bottleneck, the stage graph, a stage table, throughput and
 * queue fill over time, time use, latency, errors and retries. See
 * metrics/report.h and docs/report.md.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/report.h"
#include "metrics/text.h"
#include "sluice/error.h"

#define DEFAULT_MAX_POINTS 600

static const char page_css[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,"
    "Arial,sans-serif;margin:0 auto;max-width:1100px;padding:16px 24px;"
    "color:#222;background:#fff}"
    "h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.6em 0 .3em;"
    "border-bottom:1px solid #ddd;padding-bottom:.2em}"
    "p.note{color:#555;margin:.3em 0 .6em;font-size:.92em}"
    ".meta{color:#444}.hot{color:#c62828;font-weight:bold}"
    ".callout{border-left:5px solid #888;background:#f5f5f5;padding:.6em 1em;"
    "margin:1em 0}.callout.hot{border-color:#c62828;background:#fdecea;"
    "font-weight:normal;color:#222}"
    ".cause{color:#c62828}"
    "table{border-collapse:collapse;font-size:.8em;margin:.4em 0}"
    "th,td{padding:3px 5px;border-bottom:1px solid #e3e3e3;text-align:right;"
    "white-space:nowrap}th{background:#f3f3f3}"
    "td.l,th.l{text-align:left}tr.hot td{background:#fdecea}"
    ".scroll{overflow-x:auto}"
    "svg.chart{display:block;max-width:100%;height:auto;font-size:12px}"
    "svg.graph.wide{max-width:none}"
    "svg text{fill:#333}svg text.hot{fill:#c62828;font-weight:bold}"
    ".grid{stroke:#e6e6e6}.tick,.frame{stroke:#999}"
    ".node rect{fill:#f4f6fa;stroke:#4e79a7;stroke-width:1.5}"
    ".node.hot rect{fill:#fdecea;stroke:#c62828;stroke-width:3}"
    ".node .name{font-weight:bold;font-size:13px}.node .sub{fill:#555}"
    ".edge{fill:none;stroke:#888;stroke-width:1.5}#arrow path{fill:#888}"
    ".bar-bg{fill:#f3f3f3}text.in-bar{fill:#fff;font-size:11px}"
    ".range{stroke:#bbb;stroke-width:2}text.none{fill:#888}"
    "ul.bn{margin:.3em 0}footer{margin-top:2em;color:#777;font-size:.85em}";

/* ------------------------------------------------------------------ */
/* Points shown: the whole history, or windows of it                   */
/* ------------------------------------------------------------------ */

/*
 * The points drawn: pick[j] is the last history point of window j. With
 * more points than max, consecutive points are merged into windows of
 * equal size (the last one may be shorter); rates are then averages over
 * the window and queue fill its highest value.
 */
typedef struct picks {
    size_t *pick;
    size_t n;
    double *x;                /* [n] elapsed time at each */
    double *y;                /* [n] scratch for one series */
} picks;

/* Choose the windows for at most max points, and room for one series per
 * stage. 0 or SL_ENOMEM (pk is freed by picks_fini either way). */
static int picks_make(const sl__history *h, size_t max, picks *pk)
{
    size_t per = h->n_points > max ? (h->n_points + max - 1) / max : 1;
    size_t n = (h->n_points + per - 1) / per;
    pk->pick = calloc(n > 0 ? n : 1, sizeof(*pk->pick));
    pk->x = calloc(n > 0 ? n : 1, sizeof(*pk->x));
    pk->y = calloc((n > 0 ? n : 1) * (h->n_stages > 0 ? h->n_stages : 1),
                   sizeof(*pk->y));
    if (pk->pick == NULL || pk->x == NULL || pk->y == NULL)
        return SL_ENOMEM;
    for (size_t j = 0; j < n; j++) {
        size_t p = (j + 1) * per - 1;
        pk->pick[j] = p < h->n_points ? p : h->n_points - 1;
        pk->x[j] = h->t[pk->pick[j]];
    }
    pk->n = n;
    return 0;
}

/* Free what picks_make allocated. */
static void picks_fini(picks *pk)
{
    free(pk->pick);
    free(pk->x);
    free(pk->y);
}

/* The y values of stage s's series, in pk->y + s * pk->n. */
static double *series_y(picks *pk, size_t s)
{
    return pk->y + s * pk->n;
}

/* Records per second over each window, stage s. */
static void fill_rates(const sl__history *h, picks *pk, size_t s)
{
    double *y = series_y(pk, s);
    for (size_t j = 0; j < pk->n; j++) {
        size_t p = pk->pick[j];
        double t0 = j > 0 ? h->t[pk->pick[j - 1]] : 0;
        uint64_t w0 = j > 0 ? SL__HIST_AT(h, work, pk->pick[j - 1], s) : 0;
        uint64_t w1 = SL__HIST_AT(h, work, p, s);
        double dt = h->t[p] - t0;
        y[j] = dt > 0 ? (double)(w1 > w0 ? w1 - w0 : 0) / dt : NAN;
    }
}

/* Input queue fill over each window (its highest), stage s. */
static void fill_queue(const sl__history *h, picks *pk, size_t s)
{
    double *y = series_y(pk, s);
    for (size_t j = 0; j < pk->n; j++) {
        size_t from = j > 0 ? pk->pick[j - 1] + 1 : 0;
        double best = -1;
        for (size_t p = from; p <= pk->pick[j]; p++) {
            double f = SL__HIST_AT(h, queue_fill, p, s);
            if (f > best)
                best = f;
        }
        y[j] = best >= 0 ? best : NAN;
    }
}

/* Cumulative errors (or retries) at the end of each window, stage s. */
static void fill_count(const sl__history *h, picks *pk, size_t s, bool retries)
{
    double *y = series_y(pk, s);
    for (size_t j = 0; j < pk->n; j++)
        y[j] = (double)(retries ? SL__HIST_AT(h, retries, pk->pick[j], s)
                                : SL__HIST_AT(h, errors, pk->pick[j], s));
}

/* ------------------------------------------------------------------ */
/* Sections                                                            */
/* ------------------------------------------------------------------ */

typedef enum chart_kind {
    CHART_RATE,
    CHART_QUEUE,
    CHART_ERRORS,
    CHART_RETRIES,
} chart_kind;

/* A line chart with one series per stage (for queue fill: per stage with
 * an input queue). 0 or SL_ENOMEM. */
static int line_section(sl_buf *b, const sl__history *h, picks *pk,
                        long bottleneck, chart_kind kind)
{
    const sl__run_snapshot *s = &h->last;
    sl__svg_series *series = calloc(s->n_stages > 0 ? s->n_stages : 1,
                                    sizeof(*series));
    if (series == NULL)
        return SL_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < s->n_stages; i++) {
        if (kind == CHART_QUEUE && SL__HIST_AT(h, queue_fill, 0, i) < 0)
            continue;
        /* counts only for the stages that have any */
        size_t lastp = h->n_points - 1;
        if (kind == CHART_ERRORS && SL__HIST_AT(h, errors, lastp, i) == 0)
            continue;
        if (kind == CHART_RETRIES && SL__HIST_AT(h, retries, lastp, i) == 0)
            continue;
        if (kind == CHART_RATE)
            fill_rates(h, pk, i);
        else if (kind == CHART_QUEUE)
            fill_queue(h, pk, i);
        else
            fill_count(h, pk, i, kind == CHART_RETRIES);
        series[n++] = (sl__svg_series){.name = s->stages[i].name, .color = i,
                                       .y = series_y(pk, i),
                                       .emphasis = (long)i == bottleneck};
    }
    static const char *const ids[] = {"throughput", "queue-fill", "errors",
                                      "retries"};
    static const char *const units[] = {"records/s", "input queue fill",
                                        "errors (total)", "retries (total)"};
    sl__svg_line_chart c = {.id = ids[kind], .y_unit = units[kind],
                            .x = pk->x, .n = pk->n, .series = series,
                            .n_series = n, .percent = kind == CHART_QUEUE,
                            .integer = kind == CHART_ERRORS ||
                                       kind == CHART_RETRIES};
    static const char *const none[] = {
        "", "<p class=\"note\">No stage has an input queue.</p>",
        "<p class=\"note\" id=\"no-errors\">No errors in this run.</p>",
        "<p class=\"note\" id=\"no-retries\">No retries in this run.</p>"};
    int rc = 0;
    if (n == 0)
        rc = sl__mput(b, none[kind]);
    else
        rc = sl__svg_line_chart_write(b, &c);
    free(series);
    return rc;
}

/* Busy, blocked and idle shares per stage over the whole run (the same
 * figures as `sluice metrics`). 0 or SL_ENOMEM. */
static int share_section(sl_buf *b, const sl__run_snapshot *s, long bottleneck)
{
    sl__svg_bar_row *rows = calloc(s->n_stages > 0 ? s->n_stages : 1,
                                   sizeof(*rows));
    if (rows == NULL)
        return SL_ENOMEM;
    for (size_t i = 0; i < s->n_stages; i++) {
        sl__stage_load l;
        sl__stage_load_of(s, i, &l);
        rows[i] = (sl__svg_bar_row){.label = s->stages[i].name,
                                    .parts = {l.busy, l.blocked, l.idle},
                                    .emphasis = (long)i == bottleneck};
    }
    static const char *const names[3] = {"busy", "blocked (output full)",
                                         "idle (no input)"};
    static const char *const colors[3] = {"#4e79a7", "#e15759", "#bab0ac"};
    int rc = sl__svg_share_bars_write(b, "time-use", rows, s->n_stages, names,
                                      colors);
    free(rows);
    return rc;
}

/* Latency quantiles of every stage but the sources. 0 or SL_ENOMEM. */
static int latency_section(sl_buf *b, const sl__run_snapshot *s,
                           long bottleneck)
{
    sl__svg_quantile_row *rows = calloc(s->n_stages > 0 ? s->n_stages : 1,
                                        sizeof(*rows));
    if (rows == NULL)
        return SL_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < s->n_stages; i++) {
        const sl__stage_snapshot *t = &s->stages[i];
        if (t->kind == SL_STAGE_SOURCE)
            continue;
        rows[n++] = (sl__svg_quantile_row){
            .label = t->name,
            .q = {t->latency_p50_us, t->latency_p90_us, t->latency_p99_us,
                  t->latency_max_us},
            .emphasis = (long)i == bottleneck};
    }
    int rc = n > 0 ? sl__svg_quantiles_write(b, "latency", rows, n)
                   : sl__mput(b, "<p class=\"note\">Only sources: no "
                                 "per-record latency.</p>");
    free(rows);
    return rc;
}

/* A table cell with a short number. */
static int td_num(sl_buf *b, double v)
{
    char t[32];
    sl__svg_num(v, t, sizeof(t));
    return sl__mputf(b, "<td>%s</td>", t);
}

/* A table cell with a duration, "-" when there is none. */
static int td_us(sl_buf *b, double us)
{
    char t[32];
    if (!(us > 0))
        return sl__mput(b, "<td>-</td>");
    sl__svg_duration_us(us, t, sizeof(t));
    return sl__mputf(b, "<td>%s</td>", t);
}

/* The stage table at the last snapshot, the bottleneck's row marked; a
 * breaker column only when a stage has a breaker. 0 or SL_ENOMEM. */
static int table_section(sl_buf *b, const sl__run_snapshot *s, long bottleneck)
{
    bool breakers = false;
    for (size_t i = 0; i < s->n_stages; i++)
        breakers |= s->stages[i].has_breaker;
    int rc = sl__mput(b, "<div class=\"scroll\"><table id=\"stage-table\">"
                      "<tr><th class=\"l\">stage</th><th class=\"l\">type</th>"
                      "<th class=\"l\">state</th><th>workers</th><th>in</th>"
                      "<th>out</th><th>errors</th><th>dropped</th>"
                      "<th>retries</th><th>rec/s</th><th>queue max</th>"
                      "<th>busy</th><th>blocked</th><th>idle</th>"
                      "<th>input full</th><th>p50</th><th>p99</th>"
                      "<th>max</th>");
    if (breakers)
        rc |= sl__mput(b, "<th class=\"l\">breaker</th>");
    rc |= sl__mput(b, "</tr>");
    for (size_t i = 0; i < s->n_stages && rc == 0; i++) {
        const sl__stage_snapshot *t = &s->stages[i];
        sl__stage_load l;
        sl__stage_load_of(s, i, &l);
        bool source = t->kind == SL_STAGE_SOURCE;
        rc |= sl__mputf(b, "<tr%s data-stage=\"",
                        (long)i == bottleneck ? " class=\"hot\"" : "");
        rc |= sl__mput_html(b, t->name);
        rc |= sl__mput(b, "\"><td class=\"l\">");
        rc |= sl__mput_html(b, t->name);
        rc |= sl__mput(b, "</td><td class=\"l\">");
        rc |= sl__mput_html(b, t->type);
        rc |= sl__mput(b, "</td><td class=\"l\">");
        rc |= sl__mput_html(b, t->state);
        rc |= sl__mputf(b, "</td><td>%d</td>", t->workers);
        if (source)
            rc |= sl__mput(b, "<td>-</td>");
        else
            rc |= td_num(b, (double)t->records_in);
        rc |= td_num(b, (double)t->records_out);
        rc |= td_num(b, (double)t->errors);
        rc |= td_num(b, (double)t->dropped);
        rc |= td_num(b, (double)t->retries);
        rc |= td_num(b, t->throughput_rps);
        if (source)
            rc |= sl__mput(b, "<td>-</td>");
        else
            rc |= sl__mputf(b, "<td title=\"now %zu\">%zu/%zu</td>",
                            t->queue_depth, t->queue_max_depth,
                            t->queue_capacity);
        rc |= sl__mputf(b, "<td>%.0f%%</td><td>%.0f%%</td>", l.busy * 100,
                        l.blocked * 100);
        if (source)
            rc |= sl__mput(b, "<td>-</td><td>-</td>");
        else
            rc |= sl__mputf(b, "<td>%.0f%%</td><td>%.0f%%</td>", l.idle * 100,
                            l.input_full * 100);
        rc |= td_us(b, t->latency_p50_us);
        rc |= td_us(b, t->latency_p99_us);
        rc |= td_us(b, t->latency_max_us);
        if (breakers)
            rc |= sl__mput(b, "<td class=\"l\">");
        if (!breakers) {
            /* no column */
        } else if (t->has_breaker) {
            rc |= sl__mput_html(b, t->breaker_state);
            rc |= sl__mputf(b, ", opened %llu, refused %llu",
                            (unsigned long long)t->breaker_opens,
                            (unsigned long long)t->breaker_rejections);
        } else {
            rc |= sl__mput(b, "-");
        }
        rc |= sl__mput(b, breakers ? "</td></tr>" : "</tr>");
    }
    rc |= sl__mput(b, "</table></div>");
    return rc != 0 ? SL_ENOMEM : 0;
}

/* The bottleneck line `sluice metrics` prints, as the page's callout. */
static int bottleneck_section(sl_buf *b, const sl__run_snapshot *s,
                              long bottleneck)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (m == NULL)
        return SL_ENOMEM;
    sl__metrics_print_bottleneck(s, m);
    if (fclose(m) != 0) {
        free(text);
        return SL_ENOMEM;
    }
    while (len > 0 && text[len - 1] == '\n')
        text[--len] = '\0';
    int rc = sl__mputf(b, "<div class=\"callout%s\" id=\"bottleneck\">",
                       bottleneck >= 0 ? " hot" : "");
    rc |= sl__mput_html(b, text);
    rc |= sl__mput(b, "</div>");
    free(text);
    return rc != 0 ? SL_ENOMEM : 0;
}

/* Which stage was the bottleneck, window by window: each stage named at
 * least once, with its share of the run's time. */
static int intervals_section(sl_buf *b, const sl__history *h)
{
    const sl__run_snapshot *s = &h->last;
    double *time = calloc(s->n_stages + 1, sizeof(*time));
    if (time == NULL)
        return SL_ENOMEM;
    double total = 0, from = 0;
    size_t windows = 0;
    for (size_t p = 0; p < h->n_points; p++) {
        long bn = h->bottleneck[p];
        if (bn == SL__REPORT_NO_WINDOW)
            continue;
        double dt = h->t[p] - from;
        from = h->t[p];
        if (!(dt > 0))
            continue;
        time[bn >= 0 && (size_t)bn < s->n_stages ? (size_t)bn : s->n_stages] += dt;
        total += dt;
        windows++;
    }
    int rc = 0;
    if (windows < 2) {
        rc = sl__mputf(b, "<p class=\"note\" id=\"bottleneck-intervals\">"
                       "The run is too short to compare stretches of it: "
                       "the bottleneck is named per %.0f s or more.</p>",
                       SL__REPORT_WINDOW_S);
        free(time);
        return rc != 0 ? SL_ENOMEM : 0;
    }
    rc |= sl__mputf(b, "<p class=\"note\">The bottleneck of each stretch of "
                    "%.0f s or more between snapshots, by the same rule, as a "
                    "share of the run's time:</p><ul class=\"bn\" "
                    "id=\"bottleneck-intervals\">", SL__REPORT_WINDOW_S);
    for (size_t i = 0; i <= s->n_stages; i++) {
        if (!(time[i] > 0))
            continue;
        rc |= sl__mput(b, "<li>");
        if (i < s->n_stages)
            rc |= sl__mput_html(b, s->stages[i].name);
        else
            rc |= sl__mput(b, "none found");
        rc |= sl__mputf(b, ": %.0f%% of the time</li>", time[i] / total * 100);
    }
    rc |= sl__mput(b, "</ul>");
    free(time);
    return rc != 0 ? SL_ENOMEM : 0;
}

/* The document head with the styles, the title, and the run's line
 * (status, duration, snapshots, where they came from, the cause). A
 * history without points ends here with a note. 0 or SL_ENOMEM. */
static int head_write(sl_buf *b, const sl__history *h,
                      const sl__report_opts *o)
{
    const char *name = h->n_points > 0 ? h->last.pipeline : NULL;
    int rc = sl__mput(b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
                      "<meta charset=\"utf-8\"><meta name=\"viewport\" "
                      "content=\"width=device-width,initial-scale=1\">"
                      "<title>sluice report");
    if (name != NULL) {
        rc |= sl__mput(b, ": ");
        rc |= sl__mput_html(b, name);
    }
    rc |= sl__mput(b, "</title><style>");
    rc |= sl__mput(b, page_css);
    rc |= sl__mput(b, "</style></head>\n<body>\n");
    if (name == NULL) {
        rc |= sl__mput(b, "<h1>sluice report</h1><p class=\"note\" "
                       "id=\"empty\">The history ");
        rc |= sl__mput_html(b, o->source != NULL ? o->source : "");
        rc |= sl__mput(b, " holds no snapshots.</p>");
        return rc != 0 ? SL_ENOMEM : 0;
    }
    const sl__run_snapshot *s = &h->last;
    rc |= sl__mput(b, "<h1>pipeline ");
    rc |= sl__mput_html(b, s->pipeline);
    rc |= sl__mputf(b, "</h1><p class=\"meta\" id=\"run\"><b>%s</b>%s after "
                    "%.2fs &middot; %zu snapshot%s",
                    sl__run_status_name(s->status),
                    s->status == SL__RUN_RUNNING ? " (still running at the "
                                                   "last snapshot)" : "",
                    s->elapsed_s, h->n_points, h->n_points == 1 ? "" : "s");
    if (o->source != NULL) {
        rc |= sl__mputf(b, " &middot; lines %zu&ndash;%zu of ",
                        h->first_line, h->line[h->n_points - 1]);
        rc |= sl__mput_html(b, o->source);
    }
    if (h->n_runs > 1)
        rc |= sl__mputf(b, " (run %zu of the %zu it holds)", h->run,
                        h->n_runs);
    rc |= sl__mput(b, "</p>");
    if (h->skipped_partial)
        rc |= sl__mput(b, "<p class=\"note\">The file's last line was "
                       "unfinished (still being written) and is left "
                       "out.</p>");
    if (s->cause != NULL && s->cause[0] != '\0') {
        rc |= sl__mput(b, "<p class=\"cause\" id=\"cause\">cause: ");
        rc |= sl__mput_html(b, s->cause);
        rc |= sl__mput(b, "</p>");
    }
    return rc != 0 ? SL_ENOMEM : 0;
}

/* The sections in reading order; the bottleneck over the whole run is
 * what every chart marks. */
int sl__report_html(const sl__history *h, const sl__report_opts *opts,
                    sl_buf *b)
{
    sl__report_opts o = opts != NULL ? *opts : (sl__report_opts){0};
    if (o.max_points == 0)
        o.max_points = DEFAULT_MAX_POINTS;
    int rc = head_write(b, h, &o);
    if (rc != 0 || h->n_points == 0)
        goto out_end;
    const sl__run_snapshot *s = &h->last;
    long bn = sl__metrics_bottleneck(s);
    picks pk;
    memset(&pk, 0, sizeof(pk));
    rc = picks_make(h, o.max_points, &pk);
    if (rc != 0)
        goto out_picks;
    rc = bottleneck_section(b, s, bn);
    if (rc == 0)
        rc = sl__mput(b, "\n<h2>Stage graph</h2><div class=\"scroll\">");
    if (rc == 0)
        rc = sl__report_graph_write(b, s, bn);
    if (rc == 0)
        rc = sl__mput(b, "</div>\n<h2>Stages</h2><p class=\"note\">At the "
                      "last snapshot. queue max: the most records the input "
                      "queue held, of its capacity. rec/s: in the final snapshot over the "
                      "whole run, else over the last interval. busy, blocked "
                      "and idle: shares of the stage's worker time; input "
                      "full: share of its upstream's time spent waiting on "
                      "its full input queue.</p>");
    if (rc == 0)
        rc = table_section(b, s, bn);
    if (rc == 0)
        rc = sl__mput(b, "\n<h2>Throughput</h2><p class=\"note\">Records per "
                      "second each stage worked through (took in; a source: "
                      "emitted), between snapshots.</p>");
    if (rc == 0)
        rc = line_section(b, h, &pk, bn, CHART_RATE);
    if (rc == 0)
        rc = sl__mput(b, "\n<h2>Queue fill</h2><p class=\"note\">How full "
                      "each stage's input queue was at each snapshot (the "
                      "highest, where snapshots are merged). A full queue "
                      "holds back the stages before it.</p>");
    if (rc == 0)
        rc = line_section(b, h, &pk, bn, CHART_QUEUE);
    if (rc == 0)
        rc = sl__mput(b, "\n<h2>Time use</h2><p class=\"note\">How each "
                      "stage's workers spent the run: working, waiting on a "
                      "full output (held back by a later stage) or waiting "
                      "for input.</p>");
    if (rc == 0)
        rc = share_section(b, s, bn);
    if (rc == 0)
        rc = sl__mput(b, "\n<h2>Bottleneck over time</h2>");
    if (rc == 0)
        rc = intervals_section(b, h);
    if (rc == 0)
        rc = sl__mput(b, "\n<h2>Latency</h2><p class=\"note\">Time per "
                      "record in the stage (per call of process()), over the "
                      "run: p50, p90, p99 and max, logarithmic scale.</p>");
    if (rc == 0)
        rc = latency_section(b, s, bn);
    if (rc == 0)
        rc = sl__mput(b, "\n<h2>Errors and retries</h2><p class=\"note\">"
                      "Records that failed in each stage, and calls retried, "
                      "counted since the start; stages with none are left "
                      "out.</p>");
    if (rc == 0)
        rc = line_section(b, h, &pk, bn, CHART_ERRORS);
    if (rc == 0)
        rc = line_section(b, h, &pk, bn, CHART_RETRIES);
out_picks:
    picks_fini(&pk);
out_end:
    if (rc == 0)
        rc = sl__mput(b, "\n<footer>Written by <code>sluice report</code>. "
                      "docs/report.md explains each chart.</footer>\n"
                      "</body></html>\n");
    return rc != 0 ? SL_ENOMEM : 0;
}
